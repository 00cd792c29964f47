// The ticket queue: open tickets, most urgent first, each with its most pressing SLA countdown and
// the time it is due. One badge per ticket: its level, in words.
import { api } from "../api.js";
import { mostPressing } from "../countdown.js";
import { ago, clockName, fill, h, kindName, levelName, statusName, when } from "../dom.js";
import { t } from "../i18n.js";
import { subscribe } from "../live.js";

export function ticketRow(tk) {
  const clock = mostPressing(tk.clocks || []);
  return h("li", { class: tk.level, dataset: { ticket: tk.id, severity: tk.severity || "" } },
    h("a", { class: "title", href: `#/tickets/${tk.id}` }, `#${tk.id} ${tk.title}`),
    clock ? h("span", { class: "due" },
      h("span", { class: "countdown", dataset: { clock: JSON.stringify(clock) }, title: clockName(clock.name) }),
      h("small", { class: "muted" }, ` ${clockName(clock.name)} · ${t("term.clock.due", { at: when(clock.due_at) })}`))
      : h("span", { class: "pill status" }, statusName(tk.status)),
    h("div", { class: "meta" },
      h("span", { class: `pill ${tk.level}`, dataset: { level: tk.level } }, levelName(tk.level)), " ",
      h("span", { class: "pill status" }, statusName(tk.status)), " ",
      kindName(tk.kind), " · ",
      tk.device_id ? h("a", { href: `#/devices/${encodeURIComponent(tk.device_id)}` },
        tk.device_name ? `${tk.device_name} (${tk.device_id})` : tk.device_id) : null,
      tk.customer_name ? ` · ${tk.customer_name}` : "",
      ` · ${t("queue.opened", { ago: ago(tk.opened_at) })}`,
      tk.assignee ? ` · ${t("queue.assignee", { name: tk.assignee })}` : ""),
  );
}

export async function render(view, params, ctx) {
  const status = h("select", { "aria-label": t("queue.status") },
    h("option", { value: "open" }, t("queue.filter.open")), h("option", { value: "resolved" }, statusName("resolved")),
    h("option", { value: "closed" }, statusName("closed")), h("option", { value: "cancelled" }, statusName("cancelled")),
    h("option", { value: "all" }, t("queue.filter.all")));
  const severity = h("select", { "aria-label": t("queue.severity") },
    h("option", { value: "" }, t("queue.filter.any_severity")), h("option", { value: "red" }, t("term.severity.red")),
    h("option", { value: "orange" }, t("term.severity.orange")));
  const list = h("ul", { class: "queue", id: "queue" });
  const more = h("button", { class: "secondary", hidden: true }, t("queue.more"));
  view.append(h("h1", {}, t("queue.title")), h("div", { class: "toolbar" }, status, severity), list, more);
  let next = null;

  function query(cursor) {
    const s = status.value;
    return { open: s === "open" ? "true" : undefined, status: ["open", "all"].includes(s) ? undefined : s,
             severity: severity.value || undefined, sort: s === "open" ? "urgent" : "newest", limit: 100, cursor };
  }
  async function load() {
    const page = await api("/tickets", { query: query() });
    if (ctx.stale()) return;
    fill(list, ...page.items.map(ticketRow));
    if (!page.items.length) list.append(h("li", {}, h("span", { class: "muted" }, t("queue.empty"))));
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
  let pending = 0;
  subscribe(ctx, { tickets() { clearTimeout(pending); pending = setTimeout(load, 300); }, reset: load });
  await load();
  return null;
}
