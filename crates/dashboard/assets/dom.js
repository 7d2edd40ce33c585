// Small DOM and formatting helpers shared by the pages.

/** An element: `h("td", { class: "x" }, "text", child)`. */
export function h(tag, attrs = {}, ...children) {
  const el = tag === "svg" || SVG_TAGS.has(tag)
    ? document.createElementNS("http://www.w3.org/2000/svg", tag)
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    // Through the CSSOM: the page's CSP refuses style attributes.
    else if (k === "style") el.style.cssText = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const SVG_TAGS = new Set(["circle", "line", "path", "polyline", "text", "g", "rect", "title"]);

/** A status line for screen readers and everyone else. */
export function say(text) {
  document.getElementById("status").textContent = text;
}

/** The first and last characters of an ID, the whole in a tooltip. */
export function shortId(id) {
  if (!id) return "";
  return id.length > 14 ? `${id.slice(0, 6)}…${id.slice(-6)}` : id;
}

export function fmtBytes(n) {
  const v = Number(n);
  if (!Number.isFinite(v)) return String(n ?? "");
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  let x = v;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i += 1;
  }
  return `${x.toFixed(i ? 1 : 0)} ${units[i]}`;
}

/** "12 s ago" from a time in milliseconds since the epoch. */
export function ago(ms) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

/** Go's zero time ("0001-01-01...") and absent times are "". */
export function fmtTime(t) {
  if (!t || t.startsWith("0001-")) return "";
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? t : d.toLocaleString();
}

/** Calls `fn` now and every `ms` until `signal` aborts. */
export function every(ms, signal, fn) {
  let timer = null;
  const tick = async () => {
    try {
      await fn();
    } catch (e) {
      if (e.name !== "AbortError") say(`Error: ${e.message}`);
    }
    if (!signal.aborted) timer = setTimeout(tick, ms);
  };
  signal.addEventListener("abort", () => clearTimeout(timer));
  tick();
}

export function errorText(e) {
  return e.status ? `${e.status}: ${e.message}` : e.message;
}

/**
 * A table that scrolls sideways on a narrow screen: a labelled region
 * that takes keyboard focus, so arrow keys can scroll it.
 */
export function tableWrap(label, table) {
  return h("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": label }, table);
}
