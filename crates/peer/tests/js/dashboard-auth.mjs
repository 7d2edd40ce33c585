// The dashboard's login and long pin list in headless Chromium, run by
// crates/peer/tests/dashboard.rs against one daemon whose REST API takes
// Basic credentials. Env: DASHBOARD_URL, USER, PASSWORD, PINS (how many
// pins the daemon has), FIRST_CID and LAST_CID (the first and last in CID
// byte order), SCREENSHOTS, CHROMIUM. Also renders an untrusted and a
// forked writer in the history. Prints "dashboard-auth: ok" at the
// end; any failure exits 1.

import { WAIT, audit, openPage, step } from "./browser.mjs";

const url = process.env.DASHBOARD_URL;
const pins = Number(process.env.PINS);
/** Rows a 60vh list can show in a 900 px window, with room to spare. */
const MAX_ROWS_IN_DOM = 40;

async function rowsInDom(page) {
  const n = await page.locator(".vrow").count();
  if (n > MAX_ROWS_IN_DOM) throw new Error(`${n} rows in the DOM: the list is not virtual`);
  return n;
}

const { browser, page } = await openPage();
try {

  step("the page loads without credentials, the API asks for them");
  await page.goto(`${url}#/pins`);
  await page.locator("#login[open]").waitFor(WAIT);
  await page.fill("#login-user", process.env.USER);
  await page.fill("#login-password", "wrong");
  await page.click('#login-form button[type="submit"]');
  await page.locator("#login-error", { hasText: "refused" }).waitFor(WAIT);
  await page.screenshot({ path: `${process.env.SCREENSHOTS}/login.png` });
  await page.fill("#login-password", process.env.PASSWORD);
  await page.click('#login-form button[type="submit"]');

  step("the first page of pins");
  await page.locator(`.vrow[data-cid="${process.env.FIRST_CID}"]`).waitFor(WAIT);
  // The page in view and the next one (read ahead), not all three.
  await page.locator("#pin-count", { hasText: /^400\+ pin\(s\)$/ }).waitFor(WAIT);
  await rowsInDom(page);
  await page.screenshot({ path: `${process.env.SCREENSHOTS}/pins-long.png` });

  step("scrolled to the end, page by page");
  const last = page.locator(`.vrow[data-cid="${process.env.LAST_CID}"]`);
  for (let i = 0; i < 50 && !(await last.count()); i++) {
    await page.locator("#pin-list").evaluate((el) => { el.scrollTop = el.scrollHeight; });
    await page.waitForTimeout(200);
    await rowsInDom(page);
  }
  await last.waitFor(WAIT);
  await page.locator("#pin-count", { hasText: new RegExp(`^${pins} pin\\(s\\)$`) }).waitFor(WAIT);
  if (await page.locator(`.vrow[data-cid="${process.env.FIRST_CID}"]`).count()) {
    throw new Error("the first row is still in the DOM at the end of the list");
  }

  step("search on the server");
  await page.fill("#pin-search", "p-04");
  await page.locator("#pin-count", { hasText: new RegExp(`^${pins - 400} pin\\(s\\)$`) }).waitFor(WAIT);
  await rowsInDom(page);

  // The server's marking of untrusted and forked writers is tested in
  // Rust; here the page's rendering of it, on /history/heads answers
  // rewritten in the browser.
  step("an untrusted, then a forked writer is red in the history");
  for (const [mark, expected] of [["untrusted", "(untrusted)"], ["forked", "(forked)"]]) {
    await page.route("**/history/heads", async (route) => {
      const resp = await route.fetch();
      const heads = await resp.json();
      const w = heads.writers[0];
      w.trusted = mark !== "untrusted";
      if (mark === "forked") heads.forks = [{ peer: w.peer, seq: 1, deltas: [] }];
      await route.fulfill({ response: resp, json: heads });
    });
    await page.click('nav a[href="#/peers"]');
    await page.click('nav a[href="#/history"]');
    const bad = page.locator("#history-log tbody tr.bad");
    await bad.first().waitFor(WAIT);
    const text = await bad.first().locator("td").nth(1).textContent();
    if (!text.endsWith(expected)) throw new Error(`a ${mark} writer's row says ${text}`);
    if (await page.locator("#history-log tbody tr:not(.bad)").count()) throw new Error(`rows of the ${mark} writer not red`);
    await page.screenshot({ path: `${process.env.SCREENSHOTS}/history-${mark}.png` });
    await page.unroute("**/history/heads");
  }

  step("on a phone");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click('nav a[href="#/peers"]');
  await page.locator("tbody tr[data-peer]").first().waitFor(WAIT);
  await page.screenshot({ path: `${process.env.SCREENSHOTS}/peers-phone.png`, fullPage: true });
  await audit(page, "peers on a phone");
  for (const [hash, ready] of [["#/pins", ".vrow"], ["#/history", "#history-log tbody tr"], ["#/sync", "#sync-height"]]) {
    await page.click(`nav a[href="${hash}"]`);
    await page.locator(ready).first().waitFor(WAIT);
    await audit(page, `${hash} on a phone`);
  }
  console.log("dashboard-auth: ok");
} catch (e) {
  console.error(`dashboard-auth.mjs failed: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
