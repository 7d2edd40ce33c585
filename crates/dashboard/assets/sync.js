// Sync: how far this peer is behind the heights other peers announced
// (GET /history/sync: lag in deltas and seconds, a progress bar), and its
// view of the signed history (GET /history/heads): heads and height,
// state hash, writers, forks, the checkpoint it serves and its floor.

import { getJson } from "./api.js";
import { every, fmtTime, h, say, shortId, tableWrap } from "./dom.js";

function lagCard(sync) {
  if (!sync) return h("div", { class: "card" }, h("h3", {}, "Lag"), h("p", { class: "muted" }, "Not served by this peer."));
  const pct = sync.seen_height ? Math.min(100, Math.round((100 * sync.height) / sync.seen_height)) : 100;
  const level = sync.lag_deltas === 0;
  return h("div", { class: "card", id: "sync-lag" }, h("h3", {}, "Lag behind other peers"),
    h("p", { id: "sync-lag-text", class: level ? "ok" : "warn" },
      level ? "In sync" : `${sync.lag_deltas} delta(s), ${sync.lag_seconds} s behind`),
    h("label", { for: "sync-progress" }, `Height ${sync.height} of ${sync.seen_height} seen`),
    h("progress", { id: "sync-progress", max: 100, value: pct }, `${pct}%`),
    h("p", {}, sync.syncing ? `Syncing: ${sync.wanted_heads} head(s) wanted` : "Not syncing"),
    h("p", { class: "muted" },
      `Since start: ${sync.applied} deltas applied from peers, ${sync.bulk_requests} bulk requests (${sync.bulk_blocks} blocks), ${sync.walk_fetches} single fetches, ${sync.gossip_blocks ?? 0} blocks inside announcements.`));
}

function checkpoint(title, c) {
  if (!c) return h("div", { class: "card" }, h("h3", {}, title), h("p", { class: "muted" }, "None."));
  return h("div", { class: "card" }, h("h3", {}, title), h("dl", {},
    h("dt", {}, "Block"), h("dd", { class: "mono" }, c.cid),
    h("dt", {}, "Signed by"), h("dd", { class: "mono", title: c.signer }, shortId(c.signer)),
    h("dt", {}, "At"), h("dd", {}, fmtTime(c.time)),
    h("dt", {}, "Height / pins / deltas"), h("dd", {}, `${c.height} / ${c.pins} / ${c.deltas}`)));
}

export function render(root, { signal }) {
  const body = h("div");
  root.append(h("h2", {}, "Sync"), body);
  every(3000, signal, async () => {
    const [heads, sync] = await Promise.all([
      getJson("/history/heads", { signal }),
      getJson("/history/sync", { signal }).catch(() => null),
    ]);
    const writers = heads.writers || [];
    body.replaceChildren(
      h("div", { class: "cards" },
        h("div", { class: "card", id: "sync-summary" }, h("h3", {}, "This peer"), h("dl", {},
          h("dt", {}, "Cluster"), h("dd", {}, heads.cluster_name),
          h("dt", {}, "Height (highest head priority)"), h("dd", { id: "sync-height" }, heads.height),
          h("dt", {}, "Pins / deltas applied"), h("dd", {}, `${heads.pins} / ${heads.deltas}`),
          h("dt", {}, "State hash"), h("dd", { class: "mono" }, heads.state_hash),
          h("dt", {}, "Trust policy"), h("dd", { class: "mono" }, (heads.trusted_peers || []).join(", ")))),
        lagCard(sync),
        checkpoint("Checkpoint served", heads.checkpoint),
        checkpoint("Floor (history starts here)", heads.floor)),
      h("h3", {}, "Heads"),
      h("ul", {}, (heads.heads || []).map((x) =>
        h("li", {}, h("span", { class: "mono" }, x.cid), ` priority ${x.priority}`))),
      h("h3", {}, "Writers"),
      tableWrap("Writers", h("table", {},
        h("thead", {}, h("tr", {}, ["Writer", "Sequence", "Latest delta", "Trusted"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, writers.map((w) => h("tr", { class: w.trusted ? null : "bad" },
          h("td", { class: "mono", title: w.peer }, shortId(w.peer)),
          h("td", {}, w.seq),
          h("td", { class: "mono", title: w.latest }, shortId(w.latest)),
          h("td", {}, w.trusted ? "yes" : "no")))))),
      // replaceChildren writes a null as text: no node at all instead.
      ...((heads.forks || []).length
        ? [h("div", {}, h("h3", { class: "bad" }, "Forks"), h("ul", { class: "alerts" }, heads.forks.map((f) =>
          h("li", {}, `${shortId(f.peer)} signed ${f.deltas.length} deltas with sequence ${f.seq}`))))]
        : []));
    say(`Updated ${new Date().toLocaleTimeString()}`);
  });
}
