// One device: its facts, latest values, and a chart per metric with its orange and red levels and,
// where the collector has a reliable one, the forecast (dashed) with its uncertainty band. The forecast
// is drawn over at most a quarter of the chosen period past now, so it never squeezes the samples.
import { api } from "../api.js";
import { timeChart } from "../charts.js";
import { ago, clear, fill, h, healthName, toast, when } from "../dom.js";
import { formatNumber, t } from "../i18n.js";
import { subscribe } from "../live.js";
import { catalogue, describe, metricName, withUnit } from "../metrics.js";
import { ticketRow } from "./queue.js";

// i18n-keys: device.span.1h device.span.6h device.span.24h device.span.7d
const SPANS = { "1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400 };
const FORECAST_SHARE = 0.25; // of the period shown, the most the forecast may add to the time axis
const CORE = ["cpu_percent", "mem_percent", "latency_ms"];

// A device's own thresholds as {metric: {threshold, red}} (the file and the API accept a bare number too).
function overrides(thresholds) {
  const out = {};
  for (const [metric, value] of Object.entries(thresholds || {})) {
    if (typeof value === "number") out[metric] = { threshold: value, red: null };
    else if (value && typeof value === "object") out[metric] = { threshold: value.threshold ?? null, red: value.red ?? null };
  }
  return out;
}

export async function render(view, [id], ctx) {
  const manager = ["admin", "supervisor"].includes(ctx.me.role);
  let span = 6 * 3600;
  const head = h("div");
  const charts = h("div", { class: "charts", id: "device-charts" });
  const tickets = h("ul", { class: "queue" });
  const picker = h("select", { "aria-label": t("device.period"), id: "device-period" },
    Object.entries(SPANS).map(([label, s]) => h("option", { value: s, selected: s === span }, t(`device.span.${label}`))));
  picker.addEventListener("change", () => { span = Number(picker.value); drawCharts(); });
  const settings = h("div");
  view.append(head, h("div", { class: "toolbar" }, h("label", { for: "device-period" }, t("device.period")), picker),
    charts, h("h2", {}, t("device.open_tickets")), tickets, settings);
  const cat = await catalogue();
  // With a thresholds file, per-device thresholds are the file's: shown, not edited here.
  const source = manager ? (await api("/thresholds")).source : null;
  let levels = new Map(); // metric -> the levels in force, from the history answer

  async function drawHead(withSettings = false) {
    const d = await api(`/devices/${encodeURIComponent(id)}`);
    const latest = Object.entries(d.latest || {}).map(([k, v]) => [
      h("dt", { title: k }, metricName(cat, k)), h("dd", {}, withUnit(cat, k, v, 1))]);
    fill(head,
      h("h1", {}, d.name || d.id, " ", d.name ? h("span", { class: "muted" }, d.id) : null, " ",
        h("span", { class: `pill ${d.health}`, id: "device-health", dataset: { health: d.health } }, healthName(d.health)),
        d.decommissioned_at ? h("span", { class: "pill offline" }, t("device.decommissioned")) : null),
      h("section", { class: "card" }, h("dl", { class: "facts" },
        h("dt", {}, t("device.class")), h("dd", {}, d.device_class ? t(`device.class.${d.device_class}`) : "—"),
        h("dt", {}, t("device.customer")), h("dd", { id: "device-customer" }, d.customer_name || "—"),
        d.site ? [h("dt", {}, t("device.site")), h("dd", {}, d.site)] : null,
        d.address ? [h("dt", {}, t("device.address")), h("dd", {}, d.address)] : null,
        d.tags && d.tags.length ? [h("dt", {}, t("device.tags")), h("dd", {}, d.tags.join(", "))] : null,
        d.parent_id ? [h("dt", {}, t("device.behind")),
          h("dd", {}, h("a", { href: `#/devices/${encodeURIComponent(d.parent_id)}` }, d.parent_id))] : null,
        h("dt", {}, t("device.last_seen")), h("dd", {}, `${when(d.last_seen_at)} (${ago(d.last_seen_at)})`),
        h("dt", {}, t("device.agent")), h("dd", {}, d.agent_version || "—"),
        latest)));
    if (manager && withSettings) fill(settings, settingsForm(d)); // not redrawn under someone's typing
    const open = await api("/tickets", { query: { device_id: id, open: "true", limit: 50 } });
    fill(tickets, ...open.items.map(ticketRow));
    if (!open.items.length) tickets.append(h("li", {}, h("span", { class: "muted" }, t("device.no_tickets"))));
  }

  // i18n-keys: device.class.gateway device.class.router
  function settingsForm(d) {
    const fromFile = source && source.kind === "file";
    const own = overrides(d.thresholds);
    const metrics = [...new Set([...CORE, ...Object.keys(own)])];
    const cls = h("select", { "aria-label": t("device.class_label"), id: "device-class" }, ["", "gateway", "router"].map((c) =>
      h("option", { value: c, selected: (d.device_class || "") === c }, c ? t(`device.class.${c}`) : t("device.class.none"))));
    const inputs = new Map();
    const errors = new Map();
    const rows = metrics.map((metric) => {
      const inForce = levels.get(metric);
      const input = (which, value, placeholder) => h("input", {
        type: "number", step: "any", min: "0", value: value ?? "", disabled: fromFile, inputmode: "decimal",
        placeholder: placeholder === undefined || placeholder === null ? "" : formatNumber(placeholder, 0),
        "aria-label": `${metricName(cat, metric)} ${t(which === "threshold" ? "device.orange_level" : "device.red_level")}`,
        dataset: { metric, which } });
      const threshold = input("threshold", own[metric] && own[metric].threshold, inForce && inForce.threshold);
      const red = input("red", own[metric] && own[metric].red, inForce && inForce.red_level);
      const error = h("span", { class: "error field-error", role: "alert", dataset: { errorFor: metric } });
      inputs.set(metric, { threshold, red });
      errors.set(metric, error);
      return h("tr", { dataset: { metric } }, h("th", { scope: "row" }, describe(cat, metric)),
        h("td", {}, threshold), h("td", {}, red), h("td", {}, error));
    });
    const formError = h("p", { class: "error", id: "device-settings-error", role: "alert" });
    return h("section", { class: "card", id: "device-settings" }, h("h2", {}, t("device.settings")),
      h("form", { onsubmit: async (e) => {
        e.preventDefault();
        errors.forEach((el) => { el.textContent = ""; });
        formError.textContent = "";
        const body = { device_class: cls.value || null };
        if (!fromFile) {
          const thresholds = {};
          for (const [metric, { threshold, red }] of inputs) {
            if (threshold.value === "" && red.value === "") continue;
            if (threshold.value === "") { errors.get(metric).textContent = t("device.need_threshold"); return; }
            thresholds[metric] = red.value === "" ? Number(threshold.value)
              : { threshold: Number(threshold.value), red: Number(red.value) };
          }
          body.thresholds = Object.keys(thresholds).length ? thresholds : null;
        }
        try {
          await api(`/devices/${encodeURIComponent(id)}`, { method: "PUT", body });
          toast(t("device.saved"));
          await drawCharts(); await drawHead();
        } catch (error) {
          // "thresholds.cpu_percent.red: ..." goes next to that metric's fields.
          const found = /^thresholds\.([a-z0-9_]+)/.exec(error.message);
          if (found && errors.has(found[1])) errors.get(found[1]).textContent = error.message;
          else formError.textContent = error.message;
        }
      } },
      h("label", { for: "device-class" }, t("device.class_label")), cls,
      h("div", { class: "scroll" }, h("table", { id: "device-thresholds" },
        h("thead", {}, h("tr", {}, h("th", {}, t("device.metric")), h("th", {}, t("device.orange_level")),
          h("th", {}, t("device.red_level")), h("th", {}, ""))),
        h("tbody", {}, rows))),
      h("p", { class: "muted" }, t("device.thresholds_hint")),
      fromFile ? h("p", { class: "muted", id: "device-thresholds-source" },
        t("device.thresholds_file", { path: source.path, id })) : null,
      formError,
      h("button", { type: "submit", id: "device-save" }, t("device.save"))));
  }

  async function drawCharts() {
    const end = new Date();
    const start = new Date(end.getTime() - span * 1000);
    const [hist, forecast] = await Promise.all([
      api(`/devices/${encodeURIComponent(id)}/history`,
        { query: { start: start.toISOString(), end: end.toISOString(), points: 300 } }),
      api(`/devices/${encodeURIComponent(id)}/forecast`).catch(() => ({ metrics: [] })),
    ]);
    const forecasts = new Map(forecast.metrics.map((f) => [f.metric, f]));
    levels = new Map(hist.metrics.filter((m) => m.threshold).map((m) => [m.metric, m.threshold]));
    const until = end.getTime() / 1000 + FORECAST_SHARE * span;
    clear(charts);
    if (!hist.available) charts.append(h("p", { class: "muted" }, t("device.no_history")));
    for (const m of hist.metrics) {
      const lines = m.threshold ? [
        { label: t("chart.orange_level"), value: m.threshold.threshold, colour: "#e07b00" },
        { label: t("chart.red_level"), value: m.threshold.red_level, colour: "#d0312d" },
      ] : [];
      const series = [{ label: metricName(cat, m.metric), points: m.points.map((p) => [p.ts, p.value]) }];
      const f = forecasts.get(m.metric);
      if (f && f.reliable && f.points.length) {
        series.push({ label: t("chart.forecast"), colour: "#2f6fb5", dash: [4, 4],
                      points: f.points.filter((p) => p.ts <= until).map((p) => [p.ts, p.value]),
                      band: (f.band || []).filter((b) => b.ts <= until).map((b) => [b.ts, b.low, b.high]) });
      }
      timeChart(charts, describe(cat, m.metric), series, lines, m.unit);
      const soon = f && f.reliable && f.eta_s !== null && f.eta_s <= f.horizon_s;
      if (f && (f.warning || soon)) {
        const note = f.warning ? f.warning.message : t("device.forecast_note", {
          level: withUnit(cat, m.metric, f.threshold), hours: formatNumber(f.eta_s / 3600, 1),
          at: when(f.eta_at), confidence: Math.round(f.confidence * 100) });
        charts.lastElementChild.append(h("p", { class: f.warning ? "forecast-warning" : "muted",
                                               dataset: { forecast: m.metric } }, note));
      }
    }
  }

  subscribe(ctx, { devices(data) { if (data.items.some((d) => d.id === id)) drawHead(); } });
  await drawCharts();
  await drawHead(true);
  return async () => {
    const focused = document.activeElement;
    if (focused && view.contains(focused) && ["INPUT", "TEXTAREA", "SELECT"].includes(focused.tagName)) return;
    await drawCharts();
    await drawHead();
  };
}
