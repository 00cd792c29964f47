// The service-efficiency board: daily KPIs as charts, and the period's totals.
import { api } from "../api.js";
import { dayChart } from "../charts.js";
import { clear, clockName, duration, fill, h, levelName, num, pct } from "../dom.js";
import { t } from "../i18n.js";
import { drawKnowledgeBoard, knowledgeBoard } from "./board_knowledge.js";

// i18n-keys: board.col.opened board.col.first_response_p50 board.col.p90 board.col.mtta board.col.mttr
// i18n-keys: board.col.resolved board.col.satisfaction board.col.backlog
// i18n-keys: board.sla.clock board.sla.met board.sla.settled board.sla.rate
const minutes = (s) => (s === null || s === undefined ? null : s / 60);

export async function render(view) {
  const days = h("select", { "aria-label": t("board.period") },
    [7, 14, 30, 90].map((n) => h("option", { value: n, selected: n === 14 }, t("board.last_days", { n }))));
  const level = h("select", { "aria-label": t("board.level") }, h("option", { value: "" }, t("board.all_levels")),
    ["red", "yellow", "blue"].map((l) => h("option", { value: l }, levelName(l))));
  const totals = h("section", { class: "card", id: "kpi-totals" });
  const charts = h("div", { class: "charts" });
  const known = knowledgeBoard();
  view.append(h("h1", {}, t("board.title")), h("div", { class: "toolbar" }, days, level), totals, charts, known);

  async function draw() {
    const end = new Date();
    const start = new Date(end.getTime() - (Number(days.value) - 1) * 86400000);
    const k = await api("/kpis", { query: { start: start.toISOString().slice(0, 10), end: end.toISOString().slice(0, 10),
                                             level: level.value || undefined } });
    const tot = k.totals;
    fill(totals, h("h2", {}, `${k.start} – ${k.end}`), h("div", { class: "scroll" }, h("table", {},
      h("thead", {}, h("tr", {}, ["opened", "first_response_p50", "p90", "mtta", "mttr", "resolved", "satisfaction",
                                  "backlog"].map((x) => h("th", {}, t(`board.col.${x}`))))),
      h("tbody", {}, h("tr", {},
        h("td", {}, tot.opened), h("td", {}, duration(tot.first_response_p50_s)),
        h("td", {}, duration(tot.first_response_p90_s)), h("td", {}, duration(tot.mtta_s)), h("td", {}, duration(tot.mttr_s)),
        h("td", {}, pct(tot.resolution_rate)),
        h("td", {}, tot.satisfaction === null ? "—" : `${num(tot.satisfaction)} / 100`), h("td", {}, tot.backlog))))),
      h("h2", {}, t("board.sla")), h("div", { class: "scroll" }, h("table", {},
        h("thead", {}, h("tr", {}, ["clock", "met", "settled", "rate"].map((x) => h("th", {}, t(`board.sla.${x}`))))),
        h("tbody", {}, tot.sla.map((s) => h("tr", {}, h("td", {}, clockName(s.clock)), h("td", {}, s.met),
          h("td", {}, s.settled), h("td", {}, pct(s.rate))))))));
    drawKnowledgeBoard(known, k);
    const labels = k.days.map((d) => d.day);
    clear(charts);
    dayChart(charts, t("board.chart.first_response"), labels, [
      { label: "p50", values: k.days.map((d) => minutes(d.first_response_p50_s)) },
      { label: "p90", values: k.days.map((d) => minutes(d.first_response_p90_s)) }], "min");
    dayChart(charts, t("board.chart.mtta_mttr"), labels, [
      { label: t("board.col.mtta"), values: k.days.map((d) => minutes(d.mtta_s)) },
      { label: t("board.col.mttr"), values: k.days.map((d) => minutes(d.mttr_s)) }], "min");
    dayChart(charts, t("board.chart.resolution"), labels, [
      { label: t("board.series.resolved"), values: k.days.map((d) => (d.resolution_rate === null ? null : d.resolution_rate * 100)) },
      { label: t("board.series.first_response_met"), values: k.days.map((d) => {
        const s = d.sla.find((x) => x.clock === "first_response");
        return s && s.rate !== null ? s.rate * 100 : null;
      }) }], "%");
    dayChart(charts, t("board.chart.satisfaction"), labels, [{ label: t("board.series.satisfaction"), values: k.days.map((d) => d.satisfaction) }]);
    dayChart(charts, t("board.chart.opened_backlog"), labels, [
      { label: t("board.series.backlog"), values: k.days.map((d) => d.backlog), fill: true },
      { label: t("board.series.opened"), values: k.days.map((d) => d.opened) }]);
  }
  days.addEventListener("change", draw);
  level.addEventListener("change", draw);
  await draw();
  return null; // daily figures: no need to poll
}
