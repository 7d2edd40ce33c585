// The dashboard's shell: hash routing (#/peers, #/pins, #/pins/<cid>,
// #/history, #/add, #/sync, #/metrics); each page renders into <main>
// and stops its polls and streams when the route changes.

import { getJson } from "./api.js";
import { say } from "./dom.js";
import * as peers from "./peers.js";
import * as pins from "./pins.js";
import * as history from "./history.js";
import * as add from "./add.js";
import * as sync from "./sync.js";
import * as metrics from "./metrics.js";

const PAGES = { peers, pins, history, add, sync, metrics };

let current = null;

function route() {
  const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const page = PAGES[name] ? name : "peers";
  current?.abort();
  current = new AbortController();
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === `#/${page}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const main = document.getElementById("main");
  main.replaceChildren();
  say("");
  document.title = `${page[0].toUpperCase()}${page.slice(1)} · IPFS Cluster`;
  PAGES[page].render(main, {
    signal: current.signal,
    arg: rest.map(decodeURIComponent).join("/"),
  });
  main.focus();
}

async function whoami() {
  try {
    const id = await getJson("/id");
    document.getElementById("whoami").textContent = `· ${id.peername || id.id}`;
  } catch {
    // Shown by the pages that need it.
  }
}

window.addEventListener("hashchange", route);
route();
whoami();
// Samples start with the page so the charts have a past when opened.
metrics.startSampling();
