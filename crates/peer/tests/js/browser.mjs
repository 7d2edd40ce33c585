// What the dashboard scripts share: Debian's Chromium (CHROMIUM) launched
// headless through playwright-core, one 1200x900 page that reports its
// script errors, a step logger, and an accessibility audit (axe-core).

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
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
    // rebound.test plays a name an attacker points at 127.0.0.1 (DNS
    // rebinding).
    args: ["--no-sandbox", "--host-resolver-rules=MAP rebound.test 127.0.0.1"],
  });
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  return { browser, page };
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/**
 * Runs axe-core on the page as it is: WCAG 2.1 A and AA, the AAA text
 * contrast the spec promises (7:1) and axe's best practices. Any
 * violation fails the run, named with the elements it found.
 */
export async function audit(page, name) {
  // Evaluated through the DevTools protocol: the page's CSP allows only
  // its own scripts, and rightly so.
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag2aaa", "best-practice"] },
    });
    return result.violations.map((v) => ({
      rule: v.id, impact: v.impact, help: v.help,
      at: v.nodes.slice(0, 3).map((n) => `${n.target.join(" ")}: ${n.failureSummary}`),
    }));
  });
  if (violations.length) {
    throw new Error(`accessibility of ${name}: ${JSON.stringify(violations, null, 1)}`);
  }
  console.log(`audit: ${name}: no violations`);
}
