// The Pins page against a large pinset, measured in headless Chromium; run
// by crates/peer/benches/dashboard.rs. Env: DASHBOARD_URL, PINS, ONE_NAME
// and ONE_CID (a name that matches one pin, and that pin), HUNDRED_PREFIX
// (a name prefix that matches a hundred), CHROMIUM. Prints one
// "figure: ..." line per measurement; any failure exits 1.

import { openPage } from "./browser.mjs";

const url = process.env.DASHBOARD_URL;
const pins = Number(process.env.PINS);
/** How deep the scroll goes: 100 cursor pages of 200. */
const DEEP = Math.min(pins, 20_000);
const LONG = { timeout: 600_000 };

const { browser, page } = await openPage();
const cdp = await page.context().newCDPSession(page);
await cdp.send("Performance.enable");

/** The page's JS heap (after a collection) and DOM size. */
async function footprint() {
  await cdp.send("HeapProfiler.collectGarbage");
  const { metrics } = await cdp.send("Performance.getMetrics");
  const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
  return `JS heap ${(m.JSHeapUsedSize / 2 ** 20).toFixed(1)} MiB, ${m.Nodes} DOM nodes, ` +
    `${await page.locator(".vrow").count()} rows in the DOM`;
}

/** The number in "#pin-count" ("12,000+ pin(s)" reads 12000). */
const counted = () => page.evaluate(() => parseInt(document.getElementById("pin-count").textContent, 10) || 0);

function figure(text) {
  console.log(`figure: ${text}`);
}

try {
  figure(`pinset: ${pins} pins`);
  let t = performance.now();
  await page.goto(`${url}#/pins`);
  await page.locator(".vrow").first().waitFor(LONG);
  figure(`first rows: ${(performance.now() - t).toFixed(0)} ms after navigation`);
  await page.waitForFunction(() => /^400\+/.test(document.getElementById("pin-count").textContent), null, LONG);
  figure(`at load: ${await footprint()}`);

  t = performance.now();
  let most = 0;
  while ((await counted()) < DEEP) {
    const before = await counted();
    await page.locator("#pin-list").evaluate((el) => { el.scrollTop = el.scrollHeight; });
    await page.waitForFunction((n) => parseInt(document.getElementById("pin-count").textContent, 10) > n,
      before, { ...LONG, polling: "raf" });
    most = Math.max(most, await page.locator(".vrow").count());
  }
  const deepMs = performance.now() - t;
  const rows = await counted();
  figure(`scrolled to row ${rows}: ${deepMs.toFixed(0)} ms (${(rows / (deepMs / 1000)).toFixed(0)} rows/s, ` +
    `${(deepMs / (rows / 200)).toFixed(0)} ms a page); at most ${most} rows in the DOM meanwhile`);
  figure(`deep in the list: ${await footprint()}`);

  t = performance.now();
  await page.fill("#pin-search", process.env.ONE_NAME);
  await page.locator(`.vrow[data-cid="${process.env.ONE_CID}"]`).waitFor(LONG);
  await page.waitForFunction(() => document.getElementById("pin-count").textContent === "1 pin(s)", null, LONG);
  figure(`search for one name among ${pins}: ${(performance.now() - t).toFixed(0)} ms (250 ms of it the input's debounce)`);

  t = performance.now();
  await page.fill("#pin-search", process.env.HUNDRED_PREFIX);
  await page.waitForFunction(() => document.getElementById("pin-count").textContent === "100 pin(s)", null, LONG);
  figure(`search matching 100 names: ${(performance.now() - t).toFixed(0)} ms`);

  t = performance.now();
  await page.fill("#pin-search", "");
  await page.waitForFunction(() => /^400\+/.test(document.getElementById("pin-count").textContent), null, LONG);
  figure(`search cleared, first two pages again: ${(performance.now() - t).toFixed(0)} ms`);
  figure(`at the end: ${await footprint()}`);
} catch (e) {
  console.error(`dashboard-bench.mjs failed: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
