// Dead letters (staff): the messages the collector refused — when, from which device, on which topic,
// why, and the start of what was sent — newest first, filtered by device or reason.
import { api } from "../api.js";
import { fill, h, when } from "../dom.js";
import { t } from "../i18n.js";

// i18n-keys: dead.why.bad_agent_version dead.why.bad_interval dead.why.bad_status dead.why.bad_topic
// i18n-keys: dead.why.invalid_json dead.why.no_known_metrics dead.why.too_large dead.why.topic_mismatch
function reasonText(reason) {
  const key = `dead.why.${reason}`;
  const text = t(key);
  return text === key ? reason.replaceAll("_", " ") : text;
}

export async function render(view, params, ctx) {
  const device = h("input", { type: "search", placeholder: t("dead.device"), "aria-label": t("dead.device") });
  const reason = h("input", { type: "search", placeholder: t("dead.reason_filter"), "aria-label": t("dead.reason_filter") });
  const list = h("ul", { class: "records", id: "dead-letters" });
  const more = h("button", { class: "secondary", hidden: true }, t("queue.more"));
  view.append(h("h1", {}, t("dead.title")), h("p", { class: "muted" }, t("dead.intro")),
    h("div", { class: "toolbar" }, device, reason), list, more);
  let next = null;

  const row = (d) => h("li", { class: "red", dataset: { deadLetter: d.id } },
    h("div", { class: "title" }, reasonText(d.reason)),
    h("div", { class: "meta" }, when(d.received_at), " · ",
      d.device_id ? h("a", { href: `#/devices/${encodeURIComponent(d.device_id)}` }, d.device_id) : t("dead.no_device"),
      d.topic ? ` · ${d.topic}` : ""),
    d.detail ? h("div", {}, d.detail) : null,
    d.payload ? h("details", {}, h("summary", {}, t("dead.payload", { n: d.payload_size })),
      h("pre", { class: "payload" }, d.payload)) : null);

  async function load(cursor) {
    const page = await api("/dead-letters", { query: { device_id: device.value.trim() || undefined,
                                                       reason: reason.value.trim() || undefined, limit: 100, cursor } });
    if (ctx.stale()) return;
    if (!cursor) fill(list, ...page.items.map(row)); else list.append(...page.items.map(row));
    if (!cursor && !page.items.length) list.append(h("li", {}, h("span", { class: "muted" }, t("dead.none"))));
    next = page.next;
    more.hidden = !next;
  }
  let typing = 0;
  for (const input of [device, reason]) {
    input.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => load(), 300); });
  }
  more.addEventListener("click", () => load(next));
  await load();
  return null;
}
