// What the dashboard scripts share: Debian's Chromium (CHROMIUM) launched
// headless through playwright-core, one 1200x900 page that reports its
// script errors, and a step logger.

import { chromium } from "playwright-core";

/** Waits long enough for a loaded 2-core machine. */
export const WAIT = { timeout: 60_000 };

export function step(text) {
  console.log(`step: ${text}`);
}

/** The browser and a page on it. */
export async function openPage() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM,
    headless: true,
    args: ["--no-sandbox"],
  });
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  return { browser, page };
}
