// The knowledge that fits one ticket, shown on the ticket to staff: published entries and past
// resolved tickets of the same metric and device class with similar text, and "Used this" to mark
// the entry applied (it counts in the board's knowledge reuse rate).
import { api } from "../api.js";
import { fill, h, toast } from "../dom.js";
import { formatTime, t } from "../i18n.js";

const cache = new Map(); // ticket id -> {at, matches}: the ticket view redraws every few seconds
const FRESH_MS = 60_000;

async function matches(ticketId, fresh) {
  const known = cache.get(ticketId);
  if (!fresh && known && Date.now() - known.at < FRESH_MS) return known.matches;
  const found = await api(`/tickets/${ticketId}/knowledge`);
  cache.set(ticketId, { at: Date.now(), matches: found });
  return found;
}

// A card that fills itself in; `null` for customers.
export function knowledgeSection(ticketId, staff) {
  if (!staff) return null;
  const card = h("section", { class: "card", id: "ticket-knowledge" }, h("h2", {}, t("knowledge.matches.title")));

  async function use(entryId) {
    try {
      await api(`/knowledge/${entryId}/used`, { method: "POST", body: { ticket_id: Number(ticketId) } });
      toast(t("knowledge.used.done"));
      await draw(true);
    } catch (error) {
      toast(error.message, true);
    }
  }

  async function draw(fresh = false) {
    let found;
    try {
      found = await matches(ticketId, fresh);
    } catch (error) {
      fill(card, h("h2", {}, t("knowledge.matches.title")), h("p", { class: "error" }, error.message));
      return;
    }
    const entries = found.entries.map((m) => {
      const used = m.entry.used_on.includes(Number(ticketId));
      return h("li", { dataset: { entry: m.entry.id } },
        h("a", { href: `#/knowledge/${m.entry.id}` }, m.entry.title), " ",
        m.entry.state === "review_due" ? h("span", { class: "muted" }, t("knowledge.state.review_due")) : null, " ",
        used ? h("span", { class: "pill status" }, t("knowledge.used.yes"))
          : h("button", { class: "secondary", dataset: { useEntry: m.entry.id }, onclick: () => use(m.entry.id) },
            t("knowledge.used.mark")));
    });
    const tickets = found.tickets.map((m) => h("li", {},
      h("a", { href: `#/tickets/${m.id}` }, `#${m.id} ${m.title}`), " ",
      h("span", { class: "muted" }, m.resolved_at ? t("knowledge.matches.resolved", { at: formatTime(m.resolved_at) }) : m.status)));
    fill(card, h("h2", {}, t("knowledge.matches.title")),
      entries.length ? h("ul", { class: "plain" }, entries) : h("p", { class: "muted" }, t("knowledge.matches.none")),
      h("h3", {}, t("knowledge.matches.tickets")),
      tickets.length ? h("ul", { class: "plain" }, tickets) : h("p", { class: "muted" }, t("knowledge.matches.no_tickets")));
  }
  draw();
  return card;
}
