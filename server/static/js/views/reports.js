// The monthly SLA and efficiency report, per customer (a customer sees its own), with CSV and PDF downloads.
import { api } from "../api.js";
import { clockName, duration, fill, h, kindName, pct } from "../dom.js";
import { formatNumber, lang, t } from "../i18n.js";
import { catalogue, metricName } from "../metrics.js";

function lastMonth() {
  const now = new Date();
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  return d.toISOString().slice(0, 7);
}

export async function render(view, params, ctx) {
  const staff = ctx.me.role !== "customer";
  const cat = await catalogue();
  const month = h("input", { type: "month", value: lastMonth(), "aria-label": t("reports.month"), id: "report-month" });
  const customer = h("select", { "aria-label": t("reports.customer"), id: "report-customer", hidden: !staff },
    h("option", { value: "" }, t("reports.all_customers")));
  if (staff) {
    const customers = await api("/customers", { query: { limit: 500 } });
    customer.append(...customers.items.map((c) => h("option", { value: c.id }, c.name)));
  }
  const download = h("a", { class: "button secondary", id: "report-csv", download: "" }, t("reports.csv"));
  const pdf = h("a", { class: "button secondary", id: "report-pdf", download: "" }, t("reports.pdf"));
  const body = h("div", { id: "report" });
  view.append(h("h1", {}, t("reports.title")),
    h("div", { class: "toolbar" }, h("label", { for: "report-month" }, t("reports.month")), month,
      staff ? customer : null, download, pdf), body);

  async function load() {
    const query = { month: month.value, customer_id: customer.value || undefined };
    const given = Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined));
    download.href = "api/v1/reports/monthly?" + new URLSearchParams({ ...given, format: "csv" }).toString();
    pdf.href = "api/v1/reports/monthly?" + new URLSearchParams({ ...given, format: "pdf", lang: lang() }).toString();
    const r = await api("/reports/monthly", { query });
    if (ctx.stale()) return;
    const k = r.totals;
    const minutes = (s) => (s === null || s === undefined ? "—" : duration(s));
    const row = (label, value) => h("tr", {}, h("th", { scope: "row" }, label), h("td", {}, value));
    fill(body,
      h("p", { class: "muted" }, t("reports.for", { month: r.month, customer: r.customer_name || t("reports.all_customers") })),
      h("section", { class: "card" }, h("h2", {}, t("reports.efficiency")), h("table", { id: "report-efficiency" }, h("tbody", {},
        row(t("reports.opened"), formatNumber(k.opened, 0)), row(t("reports.resolved"), formatNumber(k.resolved, 0)),
        row(t("reports.resolution_rate"), pct(k.resolution_rate)),
        row(t("reports.first_response_p50"), minutes(k.first_response_p50_s)),
        row(t("reports.first_response_p90"), minutes(k.first_response_p90_s)),
        row(t("reports.mtta"), minutes(k.mtta_s)), row(t("reports.mttr"), minutes(k.mttr_s)),
        row(t("reports.satisfaction"), k.satisfaction === null ? "—" : formatNumber(k.satisfaction, 0))))),
      h("section", { class: "card" }, h("h2", {}, t("reports.sla")), h("table", { id: "report-sla" },
        h("thead", {}, h("tr", {}, h("th", {}, t("reports.clock")), h("th", {}, t("reports.settled")), h("th", {}, t("reports.met")),
          h("th", {}, t("reports.rate")))),
        h("tbody", {}, k.sla.map((s) => h("tr", {}, h("td", {}, clockName(s.clock)), h("td", {}, s.settled), h("td", {}, s.met),
          h("td", {}, pct(s.rate))))))),
      h("section", { class: "card" }, h("h2", {}, t("reports.problems")), h("table", {}, h("tbody", {},
        Object.entries(r.by_kind).map(([kind, n]) => row(kindName(kind), n)),
        Object.entries(r.by_metric).map(([m, n]) => row(metricName(cat, m), n)))),
      r.top_devices.length ? [h("h3", {}, t("reports.top_devices")), h("ol", {}, r.top_devices.map(([d, n]) =>
        h("li", {}, h("a", { href: `#/devices/${encodeURIComponent(d)}` }, d), ` — ${n}`)))] : null));
  }
  month.addEventListener("change", load);
  customer.addEventListener("change", load);
  await load();
  return null;
}
