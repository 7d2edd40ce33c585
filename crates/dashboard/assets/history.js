// History: the signed deltas newest first (GET /history/log, NDJSON),
// filtered by writer; a writer the trust policy does not trust, or one that
// forked (GET /history/heads), in red; the history as CAR (GET /history/car).

import { authHeaders, getJson, ndjson, request, withQuery } from "./api.js";
import { errorText, fmtTime, h, say, shortId, tableWrap } from "./dom.js";

/** Deltas shown at most: the log of a big cluster is long. */
const SHOWN = 500;

export function render(root, { signal }) {
  const writer = h("select", { id: "history-writer" }, h("option", { value: "" }, "every writer"));
  const body = h("tbody");
  const note = h("p", { class: "muted" });
  const car = h("a", { href: "/history/car", download: "history.car", id: "history-car" }, "Download the history (CAR)");
  car.addEventListener("click", (e) => downloadWithAuth(e, car));
  root.append(
    h("h2", {}, "History"),
    h("form", { class: "inline", onsubmit: (e) => e.preventDefault() },
      h("label", {}, "Writer", writer), car),
    note,
    tableWrap("Deltas", h("table", { id: "history-log" },
      h("caption", { class: "muted" },
        "Every delta listed was applied, so its signature was verified; red: an untrusted or forked writer."),
      h("thead", {}, h("tr", {}, ["Time", "Writer", "Seq", "Operations", "Signature", "Delta"]
        .map((c) => h("th", { scope: "col" }, c)))),
      body)));

  let heads = null;
  let run = null;
  const load = async () => {
    run?.abort();
    run = new AbortController();
    signal.addEventListener("abort", () => run.abort(), { once: true });
    body.replaceChildren();
    const trusted = new Map((heads?.writers || []).map((w) => [w.peer, w.trusted]));
    const forked = new Set((heads?.forks || []).map((f) => f.peer));
    let n = 0;
    try {
      for await (const d of ndjson(withQuery("/history/log", { writer: writer.value, limit: SHOWN }), { signal: run.signal })) {
        const bad = trusted.get(d.writer) === false || forked.has(d.writer);
        body.append(h("tr", { class: bad ? "bad" : null, "data-writer": d.writer, "data-cid": d.cid },
          h("td", {}, fmtTime(d.time)),
          h("td", { class: "mono", title: d.writer }, shortId(d.writer),
            forked.has(d.writer) ? " (forked)" : trusted.get(d.writer) === false ? " (untrusted)" : ""),
          h("td", {}, d.seq),
          h("td", {}, h("ul", {}, d.ops.map((o) => h("li", { "data-op-cid": o.cid },
            `${o.op} `, h("a", { class: "mono", href: `#/pins/${encodeURIComponent(o.cid)}` }, shortId(o.cid)),
            o.pin?.name ? ` “${o.pin.name}”` : "", o.tombs ? ` (${o.tombs} removed)` : "")))),
          h("td", { class: bad ? "bad" : "ok" }, "valid"),
          h("td", { class: "mono", title: d.cid }, shortId(d.cid))));
        n += 1;
      }
      note.textContent = n >= SHOWN ? `The newest ${SHOWN} deltas.` : `${n} delta(s).`;
    } catch (e) {
      if (e.name !== "AbortError") note.textContent = errorText(e);
    }
  };
  writer.addEventListener("change", load);
  (async () => {
    try {
      heads = await getJson("/history/heads", { signal });
      for (const w of heads.writers || []) {
        writer.append(h("option", { value: w.peer }, `${shortId(w.peer)}${w.trusted ? "" : " (untrusted)"}`));
      }
    } catch (e) {
      if (e.name !== "AbortError") say(`Heads: ${errorText(e)}`);
    }
    await load();
  })();
}

/** With credentials a link can't send them: fetch the CAR, then save it. */
async function downloadWithAuth(e, link) {
  if (!authHeaders().Authorization) return;
  e.preventDefault();
  say("Downloading the history…");
  try {
    const resp = await request("GET", "/history/car");
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const url = URL.createObjectURL(await resp.blob());
    const a = h("a", { href: url, download: link.getAttribute("download") });
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    say("History downloaded.");
  } catch (err) {
    say(`History: ${errorText(err)}`);
  }
}
