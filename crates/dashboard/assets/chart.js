// Small SVG line charts drawn from samples [{t, v}] (t in ms).

import { h } from "./dom.js";

const W = 320;
const H = 120;
const PAD = 28;

/** A line chart of `points` with its title and latest value. */
export function lineChart(title, points, format = String) {
  const last = points.at(-1);
  const svg = h("svg", {
    class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `${title}: ${last ? format(last.v) : "no data yet"}`,
  });
  svg.append(h("title", {}, title));
  if (points.length === 0) {
    svg.append(h("text", { x: PAD, y: H / 2 }, "waiting for samples…"));
    return svg;
  }
  const t0 = points[0].t;
  const t1 = Math.max(last.t, t0 + 1);
  let lo = Math.min(...points.map((p) => p.v));
  let hi = Math.max(...points.map((p) => p.v));
  if (hi === lo) {
    hi += 1;
    lo = Math.max(0, lo - 1);
  }
  const x = (t) => PAD + ((t - t0) / (t1 - t0)) * (W - PAD - 4);
  const y = (v) => H - 16 - ((v - lo) / (hi - lo)) * (H - 30);
  svg.append(
    h("line", { x1: PAD, y1: H - 16, x2: W - 4, y2: H - 16, stroke: "#6b6b6b" }),
    h("line", { x1: PAD, y1: 8, x2: PAD, y2: H - 16, stroke: "#6b6b6b" }),
    h("text", { x: 2, y: 14 }, format(hi)),
    h("text", { x: 2, y: H - 18 }, format(lo)),
    h("text", { x: PAD, y: H - 2 }, new Date(t0).toLocaleTimeString()),
    h("polyline", {
      fill: "none", stroke: "#0a5782", "stroke-width": 2,
      points: points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" "),
    }),
  );
  return svg;
}
