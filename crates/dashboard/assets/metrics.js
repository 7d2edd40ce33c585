// Metrics over time: a few numbers of the REST API sampled every few
// seconds from page load (pins and deltas of GET /history/heads, the
// pinqueue and freespace metrics, this peer's statuses in error or in
// progress from GET /pins?local=true&filter=...), drawn as line charts.

import { getJson, ndjson, withQuery } from "./api.js";
import { every, fmtBytes, h, say } from "./dom.js";
import { lineChart } from "./chart.js";

const PERIOD = 5000;
/** Samples kept per series: 15 minutes. */
const KEEP = 180;
/** Statuses counted at most per sample (a big import can queue many). */
const COUNT_CAP = 10000;

const SERIES = [
  ["pins", "Pins in the pinset", String],
  ["deltas", "Deltas applied", String],
  ["pinqueue", "Pin queue (all peers)", String],
  ["freespace", "Free space (lowest peer)", fmtBytes],
  ["pin_error", "Pins in error here", String],
  ["in_progress", "Pins queued or pinning here", String],
];

const samples = new Map(SERIES.map(([k]) => [k, []]));
let started = false;

function push(key, v) {
  if (v === null || v === undefined || Number.isNaN(v)) return;
  const list = samples.get(key);
  list.push({ t: Date.now(), v });
  if (list.length > KEEP) list.shift();
}

async function metricValues(name) {
  try {
    return (await getJson(`/monitor/metrics/${name}`)).map((m) => Number(m.value));
  } catch {
    return [];
  }
}

async function sample() {
  const heads = await getJson("/history/heads").catch(() => null);
  push("pins", heads?.pins);
  push("deltas", heads?.deltas);
  const queues = await metricValues("pinqueue");
  push("pinqueue", queues.length ? queues.reduce((a, b) => a + b, 0) : null);
  const free = await metricValues("freespace");
  push("freespace", free.length ? Math.min(...free) : null);
  let errors = 0;
  let busy = 0;
  let seen = 0;
  const path = withQuery("/pins", { local: "true", filter: "pin_error,queued,pinning" });
  try {
    for await (const g of ndjson(path)) {
      for (const p of Object.values(g.peer_map || {})) {
        if (p.status === "pin_error") errors += 1;
        else busy += 1;
      }
      if (++seen >= COUNT_CAP) break;
    }
  } catch {
    // A peer without a tracker: no status series.
    return;
  }
  push("pin_error", errors);
  push("in_progress", busy);
}

/** Starts the sampler once, for the life of the page. */
export function startSampling() {
  if (started) return;
  started = true;
  every(PERIOD, new AbortController().signal, sample);
}

export function render(root, { signal }) {
  const grid = h("div", { class: "cards", id: "metric-charts" });
  root.append(h("h2", {}, "Metrics"),
    h("p", { class: "muted" }, `Sampled every ${PERIOD / 1000} s since this page was loaded.`), grid);
  every(PERIOD, signal, () => {
    grid.replaceChildren(...SERIES.map(([key, title, format]) => {
      const points = samples.get(key);
      const last = points.at(-1);
      return h("div", { class: "card" }, h("h3", {}, title),
        h("p", {}, last ? format(last.v) : "—"), lineChart(title, points, format));
    }));
    say(`Updated ${new Date().toLocaleTimeString()}`);
  });
}
