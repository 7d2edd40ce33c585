// The dashboard in headless Chromium (Debian's, driven by playwright-core),
// run by crates/peer/tests/dashboard.rs against a 3-peer cluster. Env:
// DASHBOARD_URL (http://host:port/ui), PEER_IDS (comma-separated),
// STOP_PEER (the peer the test stops when this prints "stop-peer"; it
// answers "stopped" on stdin), CAR_FILE and CAR_ROOT (a CAR to import and
// its root), SCREENSHOTS (a folder), CHROMIUM. Prints "history-car <file>
// <delta CID>" once it downloaded the history (the test reads the CAR),
// and "dashboard: ok" at the end; any failure exits 1. Every page is
// audited for accessibility (browser.mjs).

import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { WAIT, audit, openPage, step } from "./browser.mjs";

const url = process.env.DASHBOARD_URL;
const api = new URL(url).origin;
const peers = process.env.PEER_IDS.split(",");
const stopPeer = process.env.STOP_PEER;
const shots = process.env.SCREENSHOTS;

const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function shot(page, name) {
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

/** Content added through the REST API without a pin, so the page pins it. */
async function addUnpinned(text) {
  const form = new FormData();
  form.append("file", new Blob([text]), "unpinned.txt");
  const resp = await fetch(`${api}/add?no-pin=true&stream-channels=false`, { method: "POST", body: form });
  if (!resp.ok) throw new Error(`add: ${resp.status} ${await resp.text()}`);
  return (await resp.json()).at(-1).cid;
}

const { browser, page } = await openPage();
try {

  step("peers");
  await page.goto(`${url}#/peers`);
  for (const id of peers) {
    await page.locator(`tbody tr[data-peer="${id}"] td:last-child`).filter({ hasText: "up" }).waitFor(WAIT);
  }
  await page.locator("#graph svg circle").nth(2).waitFor(WAIT);
  await shot(page, "peers");
  await audit(page, "peers");

  step("add a file on the Add page");
  await page.click('nav a[href="#/add"]');
  await page.fill("#add-name", "dash-added");
  await page.setInputFiles("#add-files", {
    name: "hello.txt", mimeType: "text/plain", buffer: Buffer.from(`hello from the dashboard test ${Date.now()}\n`),
  });
  await page.locator("#add-status", { hasText: "pinned" }).waitFor(WAIT);
  const added = await page.textContent("#add-cid");
  await shot(page, "add");
  await audit(page, "add");

  step("pin a CID with the Pin form");
  const unpinned = await addUnpinned(`content pinned from the page ${Date.now()}\n`);
  await page.click('nav a[href="#/pins"]');
  await page.fill("#pin-cid", unpinned);
  await page.fill("#pin-name", "dash-pinned");
  await page.click('#pin-form button[type="submit"]');
  await page.waitForURL((u) => u.hash === `#/pins/${unpinned}`);
  await page.locator("#pin-summary", { hasText: "pinned" }).waitFor(WAIT);
  await page.locator("#pin-peers tbody tr").nth(2).waitFor(WAIT);
  await shot(page, "pin");
  await audit(page, "pin");

  step("the pin list, then filtered");
  await page.click('nav a[href="#/pins"]');
  for (const cid of [added, unpinned]) {
    await page.locator(`.vrow[data-cid="${cid}"] .status`, { hasText: "pinned" }).waitFor(WAIT);
  }
  await shot(page, "pins");
  await audit(page, "pins");
  await page.fill("#pin-search", "dash-pinned");
  await page.locator(`.vrow[data-cid="${added}"]`).waitFor({ state: "detached", ...WAIT });
  await page.locator(`.vrow[data-cid="${unpinned}"]`).waitFor(WAIT);
  if ((await page.locator(".vrow").count()) !== 1) throw new Error("the filter left other pins");
  await shot(page, "pins-filtered");

  step("the status filter");
  await page.fill("#pin-search", "");
  await page.selectOption("#pin-status-filter", "pinned");
  for (const cid of [added, unpinned]) {
    await page.locator(`.vrow[data-cid="${cid}"] .status`, { hasText: "pinned" }).waitFor(WAIT);
  }
  await page.locator("#pin-count", { hasText: /^2 pin\(s\)$/ }).waitFor(WAIT);
  await shot(page, "pins-status");
  await page.selectOption("#pin-status-filter", "pin_error");
  await page.locator("#pin-count", { hasText: /^0 pin\(s\)$/ }).waitFor(WAIT);
  if (await page.locator(".vrow").count()) throw new Error("pins listed as pin_error");

  step("the signed delta in the history");
  await page.click('nav a[href="#/history"]');
  const delta = page.locator("#history-log tbody tr").filter({ has: page.locator(`li[data-op-cid="${unpinned}"]`) });
  await delta.waitFor(WAIT);
  const signature = await delta.locator("td").nth(4).textContent();
  if (signature !== "valid") throw new Error(`signature cell: ${signature}`);
  await shot(page, "history");
  await audit(page, "history");

  step("download the history as CAR");
  const deltaCid = await delta.getAttribute("data-cid");
  const [download] = await Promise.all([page.waitForEvent("download", WAIT), page.click("#history-car")]);
  const carPath = `${shots}/history.car`;
  await download.saveAs(carPath);
  console.log(`history-car ${carPath} ${deltaCid}`);

  step("recover and unpin on the pin's page");
  await page.click(`li[data-op-cid="${unpinned}"] a`);
  await page.waitForURL((u) => u.hash === `#/pins/${unpinned}`);
  await page.locator("#pin-summary", { hasText: "pinned" }).waitFor(WAIT);
  await page.getByRole("button", { name: "Recover" }).click();
  await page.locator("#pin-action", { hasText: "Recover: done" }).waitFor(WAIT);
  await page.getByRole("button", { name: "Unpin" }).click();
  await page.locator("#pin-action", { hasText: "Unpin: done" }).waitFor(WAIT);
  await page.locator("#pin-in-pinset", { hasText: /^no$/ }).waitFor(WAIT);
  await shot(page, "unpinned");
  await page.click('nav a[href="#/pins"]');
  await page.locator(`.vrow[data-cid="${added}"]`).waitFor(WAIT);
  if (await page.locator(`.vrow[data-cid="${unpinned}"]`).count()) throw new Error("the unpinned CID is still listed");

  step("drop a CAR on the Add page");
  await page.click('nav a[href="#/add"]');
  await page.fill("#add-name", "dash-car");
  // Dropped on the drop zone, as a user drags it from a file manager.
  const dropped = await page.evaluateHandle((b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], "import.car"));
    return dt;
  }, readFileSync(process.env.CAR_FILE).toString("base64"));
  await page.dispatchEvent("#add-drop", "dragover", { dataTransfer: dropped });
  await page.dispatchEvent("#add-drop", "drop", { dataTransfer: dropped });
  await page.locator("#add-status", { hasText: "pinned" }).waitFor(WAIT);
  const carRoot = await page.textContent("#add-cid");
  if (carRoot !== process.env.CAR_ROOT) throw new Error(`the CAR's root is ${process.env.CAR_ROOT}, the page says ${carRoot}`);
  await shot(page, "add-car");

  step("sync and metrics");
  await page.click('nav a[href="#/sync"]');
  await page.locator("#sync-height").waitFor(WAIT);
  await page.locator("#sync-lag-text", { hasText: "In sync" }).waitFor(WAIT);
  await shot(page, "sync");
  await audit(page, "sync");
  await page.click('nav a[href="#/metrics"]');
  await page.locator("#metric-charts polyline").first().waitFor(WAIT);
  await shot(page, "metrics");
  await audit(page, "metrics");

  step("another web page can't pin through the API (CSRF)");
  const target = await addUnpinned(`content a foreign page tries to pin ${Date.now()}\n`);
  const foreign = await browser.newPage();
  await foreign.goto("about:blank");
  await foreign.evaluate(async (u) => {
    // Opaque to the page either way; what counts is whether it pinned.
    await fetch(u, { method: "POST", mode: "no-cors" }).catch(() => {});
    const form = document.createElement("form");
    form.method = "POST";
    form.action = u;
    document.body.append(form);
    form.submit();
  }, `${api}/pins/${target}`);
  await foreign.waitForLoadState();
  await foreign.close();
  const probe = await fetch(`${api}/allocations/${target}`);
  if (probe.status !== 404) throw new Error(`a foreign page's POST pinned ${target}: ${probe.status}`);

  step("nor can a page whose name is rebound to 127.0.0.1 (DNS rebinding)");
  const rebound = await browser.newPage();
  await rebound.goto(`http://rebound.test:${new URL(api).port}/version`);
  const status = await rebound.evaluate(async (path) => (await fetch(path, { method: "POST" })).status, `/pins/${target}`);
  await rebound.close();
  if (status !== 403) throw new Error(`a same-origin POST from rebound.test answered ${status}`);
  const again = await fetch(`${api}/allocations/${target}`);
  if (again.status !== 404) throw new Error(`a rebound page pinned ${target}: ${again.status}`);

  step("a stopped peer turns into an alert");
  console.log("stop-peer");
  const answer = await stdinLines.next();
  if (answer.value !== "stopped") throw new Error(`expected "stopped", got ${answer.value}`);
  await page.click('nav a[href="#/peers"]');
  await page.locator(`#alerts li[data-peer="${stopPeer}"]`).waitFor(WAIT);
  await page.locator(`tbody tr.bad[data-peer="${stopPeer}"]`).waitFor(WAIT);
  await shot(page, "alert");
  await audit(page, "peers with an alert");
  console.log("dashboard: ok");
} catch (e) {
  console.error(`dashboard.mjs failed: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  process.stdin.destroy();
}
