// Pins: the pinset a page at a time (GET /allocations?limit=&after=&search=,
// our cursor paging), drawn as a virtual list: only the rows in view are in
// the DOM and only pages near the view are kept, so a million pins cost a
// few pages of memory. Statuses of the rows in view come from
// GET /pins?cids=. A status filter reads GET /pins?filter= as a stream and
// keeps its first matches. #/pins/<cid>: one pin per peer, recover, unpin.

import { getJson, ndjson, withQuery } from "./api.js";
import { errorText, every, fmtTime, h, say, shortId, tableWrap } from "./dom.js";

const PAGE = 200;
const ROW = 32;
/** Pages kept on each side of the view; farther ones are dropped. */
const KEEP = 3;
/** A status filter keeps at most this many matches. */
const STATUS_CAP = 5000;
const STATUSES = ["", "pinned", "pinning", "queued", "error", "pin_error", "unpin_error",
  "unexpectedly_unpinned", "cluster_error", "remote", "unpinning"];

export function render(root, ctx) {
  if (ctx.arg) renderOne(root, ctx);
  else renderList(root, ctx);
}

/** The worst status over the peers of a GlobalPinInfo. */
function summary(info) {
  const all = Object.values(info.peer_map || {}).map((p) => p.status);
  if (all.length === 0) return "unknown";
  const bad = all.find((s) => s.includes("error") || s === "unexpectedly_unpinned");
  if (bad) return bad;
  const busy = all.find((s) => s !== "pinned" && s !== "remote");
  return busy || "pinned";
}

function pinForm() {
  const out = h("p", { role: "alert" });
  const form = h("form", { class: "inline", id: "pin-form" },
    h("label", {}, "CID", h("input", { id: "pin-cid", name: "cid", required: true, size: 40, autocomplete: "off" })),
    h("label", {}, "Name", h("input", { id: "pin-name", name: "name", autocomplete: "off" })),
    h("button", { type: "submit" }, "Pin"), out);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const cid = form.elements.cid.value.trim();
    try {
      await getJson(withQuery(`/pins/${encodeURIComponent(cid)}`, { name: form.elements.name.value }),
        { method: "POST" });
      location.hash = `#/pins/${encodeURIComponent(cid)}`;
    } catch (err) {
      out.className = "error";
      out.textContent = errorText(err);
    }
  });
  return form;
}

function renderList(root, { signal }) {
  const search = h("input", { id: "pin-search", type: "search", placeholder: "CID, name or peer ID", autocomplete: "off" });
  const status = h("select", { id: "pin-status-filter" },
    STATUSES.map((s) => h("option", { value: s }, s || "any status")));
  const count = h("span", { class: "muted", id: "pin-count" });
  const spacer = h("div", { class: "spacer" });
  const list = h("div", { class: "vlist", id: "pin-list", tabindex: 0, role: "list", "aria-label": "Pins" }, spacer);
  root.append(
    h("h2", {}, "Pins"),
    pinForm(),
    h("form", { class: "inline", role: "search", onsubmit: (e) => e.preventDefault() },
      h("label", {}, "Search", search), h("label", {}, "Status", status), count),
    h("div", { class: "vhead", "aria-hidden": "true" },
      h("span", {}, "CID"), h("span", {}, "Name"), h("span", {}, "Status"), h("span", {}, "Allocations")),
    list);

  let view = null;
  const restart = () => {
    view?.abort();
    view = new AbortController();
    signal.addEventListener("abort", () => view.abort(), { once: true });
    list.scrollTop = 0;
    const source = status.value
      ? statusSource(status.value, search.value.trim().toLowerCase(), view.signal)
      : pageSource(search.value.trim(), view.signal);
    virtualList(list, spacer, count, source, view.signal);
  };
  let debounce = null;
  search.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(restart, 250);
  });
  status.addEventListener("change", restart);
  restart();
}

/**
 * Pages of GET /allocations from cursors: `cursors[i]` is the `after` of
 * page i (known once page i-1 is read), `lengths[i]` its row count.
 */
function pageSource(text, signal) {
  const cursors = [""];
  const lengths = [];
  const pages = new Map();
  let done = false;
  const loading = new Set();
  return {
    kind: "pages",
    get rows() { return lengths.reduce((a, b) => a + b, 0); },
    get done() { return done; },
    row(i) {
      const p = Math.floor(i / PAGE);
      return pages.get(p)?.[i - p * PAGE];
    },
    async want(first, last) {
      const lo = Math.floor(first / PAGE);
      const hi = Math.floor(last / PAGE) + 1;
      for (const p of pages.keys()) if (p < lo - KEEP || p > hi + KEEP) pages.delete(p);
      for (let p = lo; p <= hi; p++) {
        if (pages.has(p) || loading.has(p) || cursors[p] === undefined) continue;
        if (p >= lengths.length && done) continue;
        loading.add(p);
        const rows = [];
        const path = withQuery("/allocations", { limit: PAGE, after: cursors[p], search: text });
        for await (const pin of ndjson(path, { signal })) rows.push(pin);
        loading.delete(p);
        pages.set(p, rows);
        lengths[p] = rows.length;
        if (rows.length === PAGE) cursors[p + 1] = rows.at(-1).cid;
        else done = true;
        return true;
      }
      return false;
    },
  };
}

/** The first matches of GET /pins?filter=, read as they stream. */
function statusSource(filter, text, signal) {
  const rows = [];
  let done = false;
  let started = false;
  const matches = (g) => !text || g.cid.toLowerCase().includes(text) ||
    (g.name || "").toLowerCase().includes(text) || (g.allocations || []).some((a) => a.toLowerCase().includes(text));
  return {
    get rows() { return rows.length; },
    get done() { return done; },
    capped: false,
    row(i) { return rows[i]; },
    async want(_first, _last, redraw) {
      if (started) return false;
      started = true;
      let n = 0;
      for await (const g of ndjson(withQuery("/pins", { filter }), { signal })) {
        if (!matches(g)) continue;
        rows.push({ ...g, status: summary(g) });
        if (++n % 100 === 0) redraw();
        if (rows.length >= STATUS_CAP) {
          this.capped = true;
          break;
        }
      }
      done = true;
      return true;
    },
  };
}

/** Draws the rows of `source` in view in `list`, loading as it scrolls. */
function virtualList(list, spacer, count, source, signal) {
  const statuses = new Map();
  let busy = false;
  let statusTimer = null;
  const draw = () => {
    if (signal.aborted) return;
    const total = source.rows;
    spacer.style.height = `${(total + (source.done ? 0 : 1)) * ROW}px`;
    const first = Math.floor(list.scrollTop / ROW);
    const last = Math.min(total, first + Math.ceil(list.clientHeight / ROW) + 1);
    const rows = [];
    for (let i = first; i < last; i++) {
      const pin = source.row(i);
      if (!pin) continue;
      const st = pin.status || statuses.get(pin.cid) || "…";
      const allocs = pin.allocations?.length ? pin.allocations.map(shortId).join(", ") : "everywhere";
      rows.push(h("div", { class: "vrow", role: "listitem", "data-cid": pin.cid, style: `top:${i * ROW}px` },
        h("a", { class: "mono", href: `#/pins/${encodeURIComponent(pin.cid)}`, title: pin.cid }, pin.cid),
        h("span", { title: pin.name || "" }, pin.name || ""),
        h("span", { class: `status status-${st}` }, st),
        h("span", { class: "mono", title: (pin.allocations || []).join(" ") }, allocs)));
    }
    spacer.replaceChildren(...rows);
    count.textContent = `${total}${source.done ? "" : "+"} pin(s)${source.capped ? ` (first ${STATUS_CAP} shown)` : ""}`;
    clearTimeout(statusTimer);
    statusTimer = setTimeout(() => fetchStatuses(rows.map((r) => r.dataset.cid)), 200);
    load(first, last);
  };
  let refreshAll = false;
  const fetchStatuses = async (cids) => {
    if (source.kind !== "pages") return;
    const missing = refreshAll ? cids : cids.filter((c) => !statuses.has(c));
    refreshAll = false;
    if (missing.length === 0) return;
    if (statuses.size > 10 * PAGE) statuses.clear();
    try {
      for await (const g of ndjson(withQuery("/pins", { cids: missing.join(",") }), { signal })) {
        statuses.set(g.cid, summary(g));
      }
    } catch (e) {
      if (e.name !== "AbortError") say(`Statuses: ${errorText(e)}`);
    }
    for (const el of spacer.querySelectorAll(".vrow")) {
      const st = statuses.get(el.dataset.cid);
      if (st) {
        el.children[2].textContent = st;
        el.children[2].className = `status status-${st}`;
      }
    }
  };
  const load = async (first, last) => {
    if (busy) return;
    busy = true;
    try {
      const more = await source.want(first, last + 1, () => draw());
      busy = false;
      if (more) draw();
    } catch (e) {
      busy = false;
      if (e.name !== "AbortError") say(`Pins: ${errorText(e)}`);
    }
  };
  list.addEventListener("scroll", () => requestAnimationFrame(draw), { signal });
  // Statuses change: look again every few seconds.
  every(5000, signal, async () => {
    refreshAll = true;
    draw();
  });
}

function renderOne(root, { signal, arg: cid }) {
  const out = h("p", { role: "alert", id: "pin-action" });
  const meta = h("dl");
  const body = h("tbody");
  const act = (label, method, path, cls) => h("button", {
    type: "button", class: cls,
    onclick: async () => {
      try {
        await getJson(path, { method });
        out.className = "ok";
        out.textContent = `${label}: done`;
      } catch (e) {
        out.className = "error";
        out.textContent = `${label}: ${errorText(e)}`;
      }
    },
  }, label);
  root.append(
    h("p", {}, h("a", { href: "#/pins" }, "← All pins")),
    h("h2", {}, "Pin ", h("span", { class: "mono" }, cid)),
    meta,
    h("p", { class: "inline" },
      act("Recover", "POST", `/pins/${encodeURIComponent(cid)}/recover`),
      " ",
      act("Unpin", "DELETE", `/pins/${encodeURIComponent(cid)}`, "danger")),
    out,
    tableWrap("Status per peer", h("table", { id: "pin-peers" },
      h("thead", {}, h("tr", {}, ["Peer", "Status", "Since", "Error"].map((c) => h("th", { scope: "col" }, c)))),
      body)));
  every(2000, signal, async () => {
    const [info, pin] = await Promise.all([
      getJson(`/pins/${encodeURIComponent(cid)}`, { signal }),
      getJson(`/allocations/${encodeURIComponent(cid)}`, { signal }).catch(() => null),
    ]);
    meta.replaceChildren(
      h("dt", {}, "Name"), h("dd", {}, info.name || "—"),
      h("dt", {}, "Allocations"), h("dd", { class: "mono" }, (info.allocations || []).join(", ") || "every peer"),
      h("dt", {}, "In the pinset"), h("dd", { id: "pin-in-pinset" }, pin ? `yes (replication ${pin.replication_factor_min}..${pin.replication_factor_max})` : "no"),
      h("dt", {}, "Overall"), h("dd", { id: "pin-summary", class: `status-${summary(info)}` }, summary(info)));
    body.replaceChildren(...Object.entries(info.peer_map || {}).map(([peer, p]) =>
      h("tr", { "data-peer": peer },
        h("td", { class: "mono", title: peer }, p.peername || shortId(peer)),
        h("td", { class: `status-${p.status}` }, p.status),
        h("td", {}, fmtTime(p.timestamp)),
        h("td", { class: "error" }, p.error || ""))));
  });
}

// The Add page shows the status of the pin it made.
export { summary };
