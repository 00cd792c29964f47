// One device: its facts, latest values, and a chart per metric with its threshold and red levels and,
// where the collector has one, the forecast line (dashed) from the latest sample to the horizon.
import { api } from "../api.js";
import { timeChart } from "../charts.js";
import { ago, clear, fill, h, num, toast, when } from "../dom.js";
import { catalogue, describe } from "../metrics.js";
import { ticketRow } from "./queue.js";

const SPANS = { "1 h": 3600, "6 h": 6 * 3600, "24 h": 86400, "7 d": 7 * 86400 };

export async function render(view, [id], ctx) {
  const manager = ["admin", "supervisor"].includes(ctx.me.role);
  let span = 6 * 3600;
  const head = h("div");
  const charts = h("div", { class: "charts", id: "device-charts" });
  const tickets = h("ul", { class: "queue" });
  const picker = h("select", { "aria-label": "Period" },
    Object.entries(SPANS).map(([label, s]) => h("option", { value: s, selected: s === span }, label)));
  picker.addEventListener("change", () => { span = Number(picker.value); drawCharts(); });
  view.append(head, h("div", { class: "toolbar" }, h("label", {}, "Period"), picker), charts,
    h("h2", {}, "Open tickets"), tickets);
  const cat = await catalogue();
  // With a thresholds file, per-device thresholds are the file's: shown, not edited here.
  const source = manager ? (await api("/thresholds")).source : null;

  async function drawHead() {
    const d = await api(`/devices/${encodeURIComponent(id)}`);
    const latest = Object.entries(d.latest || {}).map(([k, v]) => {
      const m = cat.byName.get(k);
      return h("div", {}, h("dt", { title: k }, m ? m.label : k), h("dd", {}, m && m.unit ? `${num(v)} ${m.unit}` : num(v)));
    });
    fill(head, 
      h("h1", {}, d.name || d.id, " ", d.name ? h("span", { class: "muted" }, d.id) : null, " ",
        h("span", { class: `pill ${d.health}`, id: "device-health" }, d.health),
        d.decommissioned_at ? h("span", { class: "pill offline" }, "decommissioned") : null),
      h("section", { class: "card" }, h("dl", { class: "facts" },
        h("dt", {}, "Class"), h("dd", {}, d.device_class || "—"),
        h("dt", {}, "Customer"), h("dd", { id: "device-customer" }, d.customer_name || "—"),
        d.site ? [h("dt", {}, "Site"), h("dd", {}, d.site)] : null,
        d.address ? [h("dt", {}, "Address"), h("dd", {}, d.address)] : null,
        d.tags ? [h("dt", {}, "Tags"), h("dd", {}, d.tags.join(", "))] : null,
        d.parent_id ? [h("dt", {}, "Behind"), h("dd", {}, h("a", { href: `#/devices/${encodeURIComponent(d.parent_id)}` }, d.parent_id))] : null,
        h("dt", {}, "State"), h("dd", {}, d.state),
        h("dt", {}, "Last seen"), h("dd", {}, `${when(d.last_seen_at)} (${ago(d.last_seen_at)})`),
        h("dt", {}, "Agent"), h("dd", {}, d.agent_version || "—"),
        latest.map((el) => [...el.childNodes]),
        h("dt", {}, "Overrides"), h("dd", {}, d.thresholds ? JSON.stringify(d.thresholds) : "none"))),
      manager ? overrideForm(d) : null,
    );
    const open = await api("/tickets", { query: { device_id: id, open: "true", limit: 50 } });
    fill(tickets, ...open.items.map(ticketRow));
    if (!open.items.length) tickets.append(h("li", {}, h("span", { class: "muted" }, "No open tickets.")));
  }

  function overrideForm(d) {
    const fromFile = source && source.kind === "file";
    const text = h("input", { value: d.thresholds ? JSON.stringify(d.thresholds) : "", disabled: fromFile,
                              placeholder: '{"cpu_percent": {"threshold": 80, "red": 95}}',
                              "aria-label": "Threshold overrides (JSON)" });
    const cls = h("select", { "aria-label": "Device class" }, ["", "gateway", "router"].map((c) =>
      h("option", { value: c, selected: (d.device_class || "") === c }, c || "(none)")));
    return h("section", { class: "card" }, h("h2", {}, "Per-device settings"),
      h("form", { onsubmit: async (e) => {
        e.preventDefault();
        const body = { device_class: cls.value || null };
        if (!fromFile) {
          try { body.thresholds = text.value.trim() ? JSON.parse(text.value) : null; } catch { toast("Overrides must be JSON", true); return; }
        }
        try {
          await api(`/devices/${encodeURIComponent(id)}`, { method: "PUT", body });
          toast("Saved; the collector applies it within seconds");
          await drawHead(); await drawCharts();
        } catch (error) { toast(error.message, true); }
      } }, h("div", { class: "row" }, h("div", {}, h("label", {}, "Class"), cls),
        h("div", {}, h("label", {}, "Threshold overrides"), text)),
        fromFile ? h("p", { class: "muted", id: "device-thresholds-source" }, "Thresholds managed in file ",
                     h("code", {}, source.path), ": edit its [devices.\"", id, "\"] table.") : null,
        h("button", { type: "submit", id: "device-save" }, "Save")));
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
    clear(charts);
    if (!hist.available) charts.append(h("p", { class: "muted" }, "History is not available from this telemetry store."));
    for (const m of hist.metrics) {
      const lines = m.threshold ? [
        { label: "threshold", value: m.threshold.threshold, colour: "#e07b00" },
        { label: "red", value: m.threshold.red_level, colour: "#d0312d" },
      ] : [];
      const series = [{ label: m.metric, points: m.points.map((p) => [p.ts, p.value]) }];
      const f = forecasts.get(m.metric);
      if (f && f.points.length) {
        series.push({ label: "forecast", colour: "#2f6fb5", dash: [4, 4], points: f.points.map((p) => [p.ts, p.value]) });
      }
      timeChart(charts, describe(cat, m.metric), series, lines, m.unit);
      const soon = f && f.eta_s !== null && f.eta_s <= f.horizon_s && f.reliable;
      if (f && (f.warning || soon)) {
        const note = f.warning ? f.warning.message
          : `Forecast to pass ${num(f.threshold)} ${m.unit} in about ${(f.eta_s / 3600).toFixed(1)} h (confidence ${Math.round(f.confidence * 100)} %)`;
        charts.lastElementChild.append(h("p", { class: f.warning ? "forecast-warning" : "muted",
                                               dataset: { forecast: m.metric } }, note));
      }
    }
  }

  await drawHead();
  await drawCharts();
  return async () => {
    const focused = document.activeElement;
    if (focused && view.contains(focused) && ["INPUT", "TEXTAREA", "SELECT"].includes(focused.tagName)) return;
    await drawHead();
    await drawCharts();
  };
}
