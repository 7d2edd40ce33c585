// The dashboard of a REST API with Basic credentials and `public_read`,
// in headless Chromium, run by crates/peer/tests/dashboard.rs: the pages
// read without signing in; a write (Unpin) asks for credentials, can be
// cancelled (its error shown), and goes through once signed in. Env:
// DASHBOARD_URL, USER, PASSWORD, CID (a pinned CID to unpin),
// SCREENSHOTS, CHROMIUM. Prints "dashboard-public: ok" at the end; any
// failure exits 1.

import { WAIT, audit, openPage, step } from "./browser.mjs";

const url = process.env.DASHBOARD_URL;
const cid = process.env.CID;

const { browser, page } = await openPage();
try {

  step("reads need no credentials");
  await page.goto(`${url}#/pins`);
  await page.locator(`.vrow[data-cid="${cid}"]`).waitFor(WAIT);
  await page.click('nav a[href="#/peers"]');
  await page.locator("tbody tr[data-peer]").first().waitFor(WAIT);
  if (await page.locator("#login[open]").count()) throw new Error("the page asked for credentials to read");

  step("a write asks for them; cancelled, it fails");
  await page.goto(`${url}#/pins/${cid}`);
  await page.locator("#pin-summary").waitFor(WAIT);
  await page.getByRole("button", { name: "Unpin" }).click();
  await page.locator("#login[open]").waitFor(WAIT);
  await page.screenshot({ path: `${process.env.SCREENSHOTS}/login-write.png` });
  await audit(page, "the sign-in form");
  await page.keyboard.press("Escape");
  await page.locator("#pin-action", { hasText: "Unpin: 401: not signed in" }).waitFor(WAIT);
  if (await page.locator("#login[open]").count()) throw new Error("the sign-in form stayed open");

  step("signed in, the write goes through");
  await page.getByRole("button", { name: "Unpin" }).click();
  await page.locator("#login[open]").waitFor(WAIT);
  await page.fill("#login-user", process.env.USER);
  await page.fill("#login-password", process.env.PASSWORD);
  await page.click('#login-form button[type="submit"]');
  await page.locator("#pin-action", { hasText: "Unpin: done" }).waitFor(WAIT);
  await page.locator("#pin-in-pinset", { hasText: /^no$/ }).waitFor(WAIT);
  console.log("dashboard-public: ok");
} catch (e) {
  console.error(`dashboard-public.mjs failed: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
