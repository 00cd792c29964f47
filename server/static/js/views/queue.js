// The ticket queue: open tickets, most urgent first, each with its most pressing SLA countdown.
import { api } from "../api.js";
import { mostPressing } from "../countdown.js";
import { ago, clockName, fill, h } from "../dom.js";

export function ticketRow(t) {
  const clock = mostPressing(t.clocks);
  return h("li", { class: t.level, dataset: { ticket: t.id, severity: t.severity || "" } },
    h("a", { class: "title", href: `#/tickets/${t.id}` }, `#${t.id} ${t.title}`),
    clock ? h("span", { class: "countdown", dataset: { clock: JSON.stringify(clock) }, title: clockName(clock.name) })
      : h("span", { class: "pill status" }, t.status.replace("_", " ")),
    h("div", { class: "meta" },
      h("span", { class: `pill ${t.level}` }, t.level), " ",
      t.severity ? h("span", { class: `pill ${t.severity}` }, t.severity) : null, " ",
      h("span", { class: "pill status" }, t.status.replace("_", " ")), " ",
      t.device_id ? h("a", { href: `#/devices/${encodeURIComponent(t.device_id)}` },
        t.device_name ? `${t.device_name} (${t.device_id})` : t.device_id) : null,
      t.customer_name ? ` · ${t.customer_name}` : "",
      ` · opened ${ago(t.opened_at)}`,
      clock ? ` · ${clockName(clock.name)}` : "",
      t.assignee ? ` · ${t.assignee}` : ""),
  );
}

export async function render(view) {
  const status = h("select", { "aria-label": "Status" },
    h("option", { value: "open" }, "Open"), h("option", { value: "resolved" }, "Resolved"),
    h("option", { value: "closed" }, "Closed"), h("option", { value: "cancelled" }, "Cancelled"),
    h("option", { value: "all" }, "All"));
  const severity = h("select", { "aria-label": "Severity" },
    h("option", { value: "" }, "Any severity"), h("option", { value: "red" }, "Red"), h("option", { value: "orange" }, "Orange"));
  const list = h("ul", { class: "queue", id: "queue" });
  const more = h("button", { class: "secondary", hidden: true }, "More");
  view.append(h("h1", {}, "Ticket queue"), h("div", { class: "toolbar" }, status, severity), list, more);
  let next = null;

  function query(cursor) {
    const s = status.value;
    return { open: s === "open" ? "true" : undefined, status: ["open", "all"].includes(s) ? undefined : s,
             severity: severity.value || undefined, sort: s === "open" ? "urgent" : "newest", limit: 100, cursor };
  }
  async function load() {
    const page = await api("/tickets", { query: query() });
    fill(list, ...page.items.map(ticketRow));
    if (!page.items.length) list.append(h("li", {}, h("span", { class: "muted" }, "Nothing here.")));
    next = page.next;
    more.hidden = !next;
  }
  more.addEventListener("click", async () => {
    const page = await api("/tickets", { query: query(next) });
    list.append(...page.items.map(ticketRow));
    next = page.next;
    more.hidden = !next;
  });
  status.addEventListener("change", load);
  severity.addEventListener("change", load);
  await load();
  return load;
}
