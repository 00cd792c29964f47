// Home: what needs attention now, grouped by customer and site. Tickets nearest their SLA breach,
// red and orange devices nobody acknowledged, offline devices and predictive warnings, from one call
// (GET /attention); reloaded when the live stream says tickets or devices changed.
import { api } from "../api.js";
import { ago, fill, h, healthName, when } from "../dom.js";
import { formatNumber, t } from "../i18n.js";
import { subscribe } from "../live.js";
import { ticketRow } from "./queue.js";

// [{key, label, items}] in the order the items come (the server sorts by urgency).
function grouped(items, customerOf, siteOf) {
  const groups = new Map();
  for (const item of items) {
    const label = [customerOf(item) || t("fleet.no_customer"), siteOf(item)].filter(Boolean).join(" · ");
    if (!groups.has(label)) groups.set(label, []);
    groups.get(label).push(item);
  }
  return [...groups].map(([label, list]) => ({ label, items: list }));
}

function section(id, title, total, shown, groups, row, listClass, more) {
  return h("section", { class: "card attention", id },
    h("h2", {}, title, " ", h("span", { class: "count-badge" }, formatNumber(total, 0))),
    total ? groups.map((g) => [h("h3", {}, g.label), h("ul", { class: listClass }, g.items.map(row))])
      : h("p", { class: "muted" }, t("home.nothing")),
    total > shown && more ? h("p", {}, h("a", { href: more }, t("home.all", { n: formatNumber(total, 0) }))) : null);
}

function deviceLink(d) {
  return h("a", { href: `#/devices/${encodeURIComponent(d.id)}` }, d.name ? `${d.name} (${d.id})` : d.id);
}

export async function render(view, params, ctx) {
  const body = h("div", { id: "home" });
  view.append(h("h1", {}, t("home.title")), body);

  async function load() {
    const a = await api("/attention", { query: { limit: 50 } });
    if (ctx.stale()) return;
    const summary = h("p", { class: "summary-line" },
      t("home.summary", { tickets: formatNumber(a.tickets_total, 0), devices: formatNumber(a.unacknowledged_total, 0),
                          offline: formatNumber(a.offline_total, 0), predictive: formatNumber(a.predictive_total, 0) }));
    fill(body, summary,
      section("home-tickets", t("home.tickets"), a.tickets_total, a.tickets.length,
        grouped(a.tickets, (x) => x.customer_name, (x) => x.device_site), ticketRow, "queue", "#/queue"),
      section("home-unacknowledged", t("home.unacknowledged"), a.unacknowledged_total, a.unacknowledged.length,
        grouped(a.unacknowledged, (x) => x.device.customer_name, (x) => x.device.site), (p) =>
          h("li", { class: p.device.health === "red" ? "red" : "yellow", dataset: { device: p.device.id } },
            h("span", { class: `pill ${p.device.health}` }, healthName(p.device.health)), " ", deviceLink(p.device), " · ",
            p.ticket_id ? h("a", { href: `#/tickets/${p.ticket_id}` }, t("home.waiting_ticket", { id: p.ticket_id }))
              : h("span", { class: "muted" }, t("home.no_ticket"))),
        "records", "#/fleet?health=red&health=orange"),
      section("home-offline", t("home.offline"), a.offline_total, a.offline.length,
        grouped(a.offline, (x) => x.customer_name, (x) => x.site), (d) =>
          h("li", { dataset: { device: d.id } }, deviceLink(d),
            h("div", { class: "meta" }, t("home.offline_since", { at: when(d.offline_since || d.last_seen_at),
                                                                 ago: ago(d.offline_since || d.last_seen_at) }),
              d.open_tickets ? ` · ${t("fleet.open_tickets", { n: d.open_tickets })}` : "")),
        "records", "#/fleet?health=offline"),
      section("home-predictive", t("home.predictive"), a.predictive_total, a.predictive.length,
        grouped(a.predictive, (x) => x.customer_name, (x) => x.device_site), ticketRow, "queue", null));
  }

  let pending = 0;
  const later = () => { clearTimeout(pending); pending = setTimeout(load, 500); };
  subscribe(ctx, { tickets: later, devices: later, reset: later });
  await load();
  return null;
}
