// The efficiency board's knowledge section: knowledge reuse and first-time fix rates of the period,
// and the faults that keep coming back to one device (from the `knowledge` part of /kpis).
import { fill, h, pct } from "../dom.js";
import { formatTime, t } from "../i18n.js";

export function knowledgeBoard() {
  return h("section", { class: "card", id: "kpi-knowledge" }, h("h2", {}, t("knowledge.board.title")));
}

// Fill the section from one /kpis answer.
export function drawKnowledgeBoard(section, kpis) {
  const k = kpis.knowledge;
  if (!k) { fill(section); return; }
  const faults = k.repeated_faults;
  fill(section, h("h2", {}, t("knowledge.board.title")),
    h("dl", { class: "facts" },
      h("dt", {}, t("knowledge.board.reuse")), h("dd", { id: "kpi-reuse" }, pct(k.reuse_rate),
        h("span", { class: "muted" }, ` (${k.knowledge_used} / ${k.resolved})`)),
      h("dt", {}, t("knowledge.board.first_time_fix")), h("dd", { id: "kpi-first-time-fix" }, pct(k.first_time_fix_rate),
        h("span", { class: "muted" }, ` (${k.fixed_first_time} / ${k.resolved})`))),
    h("h3", {}, t("knowledge.board.repeated", { count: k.repeat_count, days: k.repeat_window_days })),
    faults.length ? h("div", { class: "scroll" }, h("table", { id: "repeated-faults" },
      h("thead", {}, h("tr", {}, ["knowledge.board.device", "knowledge.field.metric", "knowledge.board.tickets",
                                  "knowledge.board.last", "knowledge.board.entries"].map((key) => h("th", {}, t(key))))),
      h("tbody", {}, faults.map((f) => h("tr", {},
        h("td", {}, h("a", { href: `#/devices/${encodeURIComponent(f.device_id)}` }, f.device_id)),
        h("td", {}, f.metric), h("td", {}, f.tickets), h("td", {}, formatTime(f.last_opened_at)),
        h("td", {}, f.entries_used.length ? f.entries_used.map((e) => [h("a", { href: `#/knowledge/${e.id}` }, e.title), " "])
          : h("span", { class: "muted" }, t("knowledge.board.no_entries"))))))))
      : h("p", { class: "muted" }, t("knowledge.board.none")));
}
