// Charts with the vendored uPlot: time series with horizontal threshold lines (and a forecast with its
// uncertainty band), and daily KPI bars/lines.
import uPlot from "../vendor/uPlot.esm.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";

const COLOURS = ["#1f6feb", "#8250df", "#1f9d55", "#bf8700", "#d0312d"];

// The box is already in its grid cell, so its own width is the room the chart has.
function width(box) {
  return Math.max(240, (box.clientWidth || 600) - 26);
}

// series: [{label, points: [[unixSeconds, value|null], ...], colour?, dash?, band?: [[ts, low, high], ...]}];
// lines: [{label, value, colour, dash}]. A series with `dash` (a forecast line) spans the gaps left by
// the other series' timestamps; its `band` is drawn as a shaded range around it.
export function timeChart(container, title, series, lines = [], unit = "") {
  const box = h("div", { class: "chart card" }, h("h3", {}, title));
  container.append(box);
  const xs = [...new Set(series.flatMap((s) => [...s.points.map((p) => p[0]), ...(s.band || []).map((b) => b[0])]))]
    .sort((a, b) => a - b);
  if (!xs.length) {
    box.append(h("p", { class: "muted" }, t("chart.no_samples")));
    return null;
  }
  box.dataset.from = xs[0]; // the time axis' ends, Unix seconds (what the tests check)
  box.dataset.until = xs[xs.length - 1];
  const data = [xs];
  const opts = { width: width(box), height: 200, series: [{}], scales: { x: { time: true } },
                 axes: [{}, { label: unit, size: 50 }], legend: { live: false } };
  series.forEach((s, i) => {
    const byX = new Map(s.points);
    data.push(xs.map((x) => (byX.has(x) ? byX.get(x) : null)));
    opts.series.push({ label: s.label, stroke: s.colour || COLOURS[i % COLOURS.length], width: 2,
                       dash: s.dash, spanGaps: Boolean(s.dash), points: s.dash ? { show: false } : undefined });
  });
  const bands = [];
  series.forEach((s, i) => {
    if (!s.band || !s.band.length) return;
    const low = new Map(s.band.map((b) => [b[0], b[1]]));
    const high = new Map(s.band.map((b) => [b[0], b[2]]));
    const colour = s.colour || COLOURS[i % COLOURS.length];
    data.push(xs.map((x) => (high.has(x) ? high.get(x) : null)));
    opts.series.push({ label: t("chart.band_high"), stroke: colour + "55", width: 1, spanGaps: true, points: { show: false } });
    data.push(xs.map((x) => (low.has(x) ? low.get(x) : null)));
    opts.series.push({ label: t("chart.band_low"), stroke: colour + "55", width: 1, spanGaps: true, points: { show: false } });
    bands.push({ series: [opts.series.length - 2, opts.series.length - 1], fill: colour + "22" });
  });
  if (bands.length) opts.bands = bands;
  for (const line of lines) {
    data.push(xs.map(() => line.value));
    opts.series.push({ label: line.label, stroke: line.colour, dash: line.dash || [6, 4], width: 1.5, points: { show: false } });
  }
  return new uPlot(opts, data, box);
}

// days: ["2026-01-05", ...]; series: [{label, values: [...]}]
export function dayChart(container, title, days, series, unit = "") {
  const box = h("div", { class: "chart card" }, h("h3", {}, title));
  container.append(box);
  const xs = days.map((d) => Date.parse(d + "T12:00:00Z") / 1000);
  const opts = { width: width(box), height: 180, series: [{}], scales: { x: { time: true } },
                 axes: [{}, { label: unit, size: 50 }], legend: { live: false } };
  const data = [xs];
  series.forEach((s, i) => {
    data.push(s.values);
    opts.series.push({ label: s.label, stroke: COLOURS[i % COLOURS.length], width: 2,
                       fill: i === 0 && s.fill ? COLOURS[0] + "22" : undefined, points: { size: 6 } });
  });
  return new uPlot(opts, data, box);
}
