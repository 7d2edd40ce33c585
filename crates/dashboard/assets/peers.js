// Peers: every peer (GET /peers, NDJSON), trusted or not (the policy of
// GET /history/heads), last seen and metrics (GET /monitor/metrics/*),
// alerts (GET /health/alerts) and the peer graph (GET /health/graph).

import { getJson, ndjson } from "./api.js";
import { ago, every, fmtBytes, fmtTime, h, say, shortId, tableWrap } from "./dom.js";

async function orNull(promise) {
  try {
    return await promise;
  } catch {
    return null;
  }
}

/** The latest metric of each peer, by peer ID. */
async function metricByPeer(name) {
  const list = (await orNull(getJson(`/monitor/metrics/${name}`))) || [];
  return new Map(list.map((m) => [m.peer, m]));
}

function trustOf(policy, id) {
  if (!policy) return "unknown";
  return policy.includes("*") || policy.includes(id) ? "trusted" : "follower";
}

export function render(root, { signal }) {
  const table = h("table", {},
    h("caption", { class: "muted" }, "Peers the cluster knows; a stopped peer stays listed with its alert."),
    h("thead", {}, h("tr", {},
      ["Name", "Peer ID", "Version", "Role", "Last seen", "Free space", "Pin queue", "State"]
        .map((c) => h("th", { scope: "col" }, c)))),
    h("tbody"));
  const alerts = h("ul", { class: "alerts", id: "alerts" });
  const graph = h("div", { id: "graph" });
  root.append(
    h("h2", {}, "Peers"),
    tableWrap("Peers", table),
    h("h3", {}, "Alerts"), alerts,
    h("h3", {}, "Peer graph"), graph);

  every(4000, signal, async () => {
    const [heads, alertList, ping, freespace, pinqueue, links] = await Promise.all([
      orNull(getJson("/history/heads", { signal })),
      orNull(getJson("/health/alerts", { signal })),
      metricByPeer("ping"), metricByPeer("freespace"), metricByPeer("pinqueue"),
      orNull(getJson("/health/graph", { signal })),
    ]);
    const live = [];
    for await (const id of ndjson("/peers", { signal })) live.push(id);
    if (signal.aborted) return;
    const down = new Map();
    for (const a of alertList || []) {
      if (!live.some((p) => p.id === a.peer) && !down.has(a.peer)) down.set(a.peer, a);
    }
    const names = links?.id_to_peername || {};
    const rows = live.map((p) => {
      const alert = p.error ? p.error : "";
      return h("tr", { "data-peer": p.id, class: alert ? "bad" : null },
        h("td", {}, p.peername || names[p.id] || ""),
        h("td", { class: "mono", title: p.id }, shortId(p.id)),
        h("td", {}, p.version || ""),
        h("td", {}, trustOf(heads?.trusted_peers, p.id)),
        h("td", {}, ago((ping.get(p.id)?.received_at || 0) / 1e6)),
        h("td", {}, freespace.has(p.id) ? fmtBytes(freespace.get(p.id).value) : "—"),
        h("td", {}, pinqueue.get(p.id)?.value ?? "—"),
        h("td", { class: alert ? "bad" : "ok" }, alert || "up"));
    });
    for (const [id, a] of down) {
      rows.push(h("tr", { "data-peer": id, class: "bad" },
        h("td", {}, names[id] || ""),
        h("td", { class: "mono", title: id }, shortId(id)),
        h("td", {}, ""), h("td", {}, trustOf(heads?.trusted_peers, id)),
        h("td", {}, ago((a.received_at || 0) / 1e6)), h("td", {}, "—"), h("td", {}, "—"),
        h("td", { class: "bad" }, `alert: ${a.name} expired`)));
    }
    table.tBodies[0].replaceChildren(...rows);
    alerts.replaceChildren(...(alertList || []).map((a) =>
      h("li", { "data-peer": a.peer },
        h("span", { class: "mono", title: a.peer }, names[a.peer] || shortId(a.peer)),
        `: ${a.name} ${a.name === "fork" ? "(two deltas with one sequence number)" : "expired"} at ${fmtTime(a.triggered_at)}`)));
    if (!alertList?.length) alerts.replaceChildren(h("li", { class: "ok" }, "No alerts."));
    graph.replaceChildren(drawGraph(links, new Set(down.keys())));
    say(`${live.length} live peer(s), ${down.size} down; updated ${new Date().toLocaleTimeString()}`);
  });
}

/** The cluster links as a circle of nodes; down peers in red. */
function drawGraph(g, down) {
  if (!g) return h("p", { class: "muted" }, "No graph.");
  const ids = new Set(Object.keys(g.cluster_links || {}));
  for (const to of Object.values(g.cluster_links || {})) to.forEach((id) => ids.add(id));
  down.forEach((id) => ids.add(id));
  const nodes = [...ids].sort();
  const size = 320;
  // Room for the labels under the nodes at the edges.
  const r = nodes.length > 1 ? 100 : 0;
  const pos = new Map(nodes.map((id, i) => {
    const a = (2 * Math.PI * i) / nodes.length - Math.PI / 2;
    return [id, [size / 2 + r * Math.cos(a), size / 2 + r * Math.sin(a)]];
  }));
  const svg = h("svg", {
    class: "graph", viewBox: `0 0 ${size} ${size}`, role: "img",
    "aria-label": `Peer graph: ${nodes.length} peers`,
  });
  for (const [from, tos] of Object.entries(g.cluster_links || {})) {
    for (const to of tos) {
      const [x1, y1] = pos.get(from);
      const [x2, y2] = pos.get(to);
      svg.append(h("line", { x1, y1, x2, y2, stroke: "#6b6b6b" }));
    }
  }
  for (const id of nodes) {
    const [x, y] = pos.get(id);
    const name = g.id_to_peername?.[id] || shortId(id);
    svg.append(h("g", {},
      h("title", {}, id),
      h("circle", {
        cx: x, cy: y, r: 12, fill: down.has(id) ? "#961418" : id === g.cluster_id ? "#0a5782" : "#085a2a",
      }),
      h("text", { x, y: y + 26, "text-anchor": "middle" }, name.slice(0, 14))));
  }
  return svg;
}
