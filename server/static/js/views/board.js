// The service-efficiency board: daily KPIs as charts, and the period's totals.
import { api } from "../api.js";
import { dayChart } from "../charts.js";
import { clear, clockName, duration, fill, h, num, pct } from "../dom.js";
import { drawKnowledgeBoard, knowledgeBoard } from "./board_knowledge.js";

const minutes = (s) => (s === null || s === undefined ? null : s / 60);

export async function render(view) {
  const days = h("select", { "aria-label": "Period" },
    [7, 14, 30, 90].map((n) => h("option", { value: n, selected: n === 14 }, `last ${n} days`)));
  const level = h("select", { "aria-label": "Level" }, h("option", { value: "" }, "All levels"),
    ["red", "yellow", "blue"].map((l) => h("option", { value: l }, l)));
  const totals = h("section", { class: "card", id: "kpi-totals" });
  const charts = h("div", { class: "charts" });
  const known = knowledgeBoard();
  view.append(h("h1", {}, "Service efficiency"), h("div", { class: "toolbar" }, days, level), totals, charts, known);

  async function draw() {
    const end = new Date();
    const start = new Date(end.getTime() - (Number(days.value) - 1) * 86400000);
    const k = await api("/kpis", { query: { start: start.toISOString().slice(0, 10), end: end.toISOString().slice(0, 10),
                                             level: level.value || undefined } });
    const t = k.totals;
    fill(totals, h("h2", {}, `${k.start} – ${k.end}`), h("div", { class: "scroll" }, h("table", {},
      h("thead", {}, h("tr", {}, ["Opened", "First response p50", "p90", "MTTA", "MTTR", "Resolved", "Satisfaction", "Backlog"]
        .map((x) => h("th", {}, x)))),
      h("tbody", {}, h("tr", {},
        h("td", {}, t.opened), h("td", {}, duration(t.first_response_p50_s)), h("td", {}, duration(t.first_response_p90_s)),
        h("td", {}, duration(t.mtta_s)), h("td", {}, duration(t.mttr_s)), h("td", {}, pct(t.resolution_rate)),
        h("td", {}, t.satisfaction === null ? "—" : `${num(t.satisfaction)} / 100`), h("td", {}, t.backlog))))),
      h("h2", {}, "SLA attainment"), h("div", { class: "scroll" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "Clock"), h("th", {}, "Met"), h("th", {}, "Settled"), h("th", {}, "Rate"))),
        h("tbody", {}, t.sla.map((s) => h("tr", {}, h("td", {}, clockName(s.clock)), h("td", {}, s.met),
          h("td", {}, s.settled), h("td", {}, pct(s.rate))))))));
    drawKnowledgeBoard(known, k);
    const labels = k.days.map((d) => d.day);
    clear(charts);
    dayChart(charts, "First response (minutes)", labels, [
      { label: "p50", values: k.days.map((d) => minutes(d.first_response_p50_s)) },
      { label: "p90", values: k.days.map((d) => minutes(d.first_response_p90_s)) }], "min");
    dayChart(charts, "MTTA / MTTR (minutes)", labels, [
      { label: "MTTA", values: k.days.map((d) => minutes(d.mtta_s)) },
      { label: "MTTR", values: k.days.map((d) => minutes(d.mttr_s)) }], "min");
    dayChart(charts, "Resolution rate and first-response SLA (%)", labels, [
      { label: "resolved", values: k.days.map((d) => (d.resolution_rate === null ? null : d.resolution_rate * 100)) },
      { label: "first response met", values: k.days.map((d) => {
        const s = d.sla.find((x) => x.clock === "first_response");
        return s && s.rate !== null ? s.rate * 100 : null;
      }) }], "%");
    dayChart(charts, "Satisfaction (0-100)", labels, [{ label: "satisfaction", values: k.days.map((d) => d.satisfaction) }]);
    dayChart(charts, "Opened and backlog", labels, [
      { label: "backlog", values: k.days.map((d) => d.backlog), fill: true },
      { label: "opened", values: k.days.map((d) => d.opened) }]);
  }
  days.addEventListener("change", draw);
  level.addEventListener("change", draw);
  await draw();
  return null; // daily figures: no need to poll
}
