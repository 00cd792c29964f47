// The knowledge base: search and the list (#/knowledge), one entry with its editor and life-cycle
// actions (#/knowledge/N), a new draft (#/knowledge/new). Staff write drafts; knowledge managers
// (supervisors, admins) publish, review and retire; customers read published, shared entries.
import { api } from "../api.js";
import { fill, h, toast } from "../dom.js";
import { formatTime, t } from "../i18n.js";

// i18n-keys: knowledge.state.draft knowledge.state.published knowledge.state.review_due knowledge.state.retired
const STATES = ["draft", "published", "review_due", "retired"];
// i18n-keys: knowledge.field.title knowledge.field.problem_type knowledge.field.symptom knowledge.field.root_cause
// i18n-keys: knowledge.field.steps knowledge.field.risks knowledge.field.rollback knowledge.field.metric
// i18n-keys: knowledge.field.device_class knowledge.field.tags
const LINES = ["title", "problem_type", "metric", "device_class", "tags"];
const TEXTS = ["symptom", "root_cause", "steps", "risks", "rollback"];

const stateLabel = (s) => t(`knowledge.state.${s}`);
const isManager = (me) => ["admin", "supervisor"].includes(me.role);

function row(e) {
  return h("tr", {},
    h("td", {}, h("a", { href: `#/knowledge/${e.id}` }, e.title)),
    h("td", {}, h("span", { class: `pill state-${e.state}` }, stateLabel(e.state))),
    h("td", {}, e.metric || "—"), h("td", {}, e.device_class || "—"),
    h("td", {}, formatTime(e.updated_at)));
}

async function list(view, ctx) {
  const staff = ctx.me.role !== "customer";
  const q = h("input", { type: "search", placeholder: t("knowledge.search.placeholder"),
                         "aria-label": t("knowledge.search.placeholder"), id: "knowledge-q" });
  const state = h("select", { "aria-label": t("knowledge.filter.state"), id: "knowledge-state" },
    h("option", { value: "" }, t("knowledge.filter.any")), STATES.map((s) => h("option", { value: s }, stateLabel(s))));
  const table = h("div", { class: "scroll" });
  view.append(h("h1", {}, t("knowledge.title")),
    h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); draw(); } },
      q, staff ? state : null, h("button", { type: "submit" }, t("knowledge.search.button")),
      staff ? h("a", { href: "#/knowledge/new", class: "button", id: "knowledge-new" }, t("knowledge.new")) : null),
    table);

  async function draw() {
    const query = { q: q.value.trim() || undefined, state: state.value || undefined };
    const found = await api("/knowledge", { query });
    if (ctx.stale()) return;
    fill(table, found.items.length ? h("table", { id: "knowledge-list" },
      h("thead", {}, h("tr", {}, ["knowledge.field.title", "knowledge.col.state", "knowledge.field.metric",
                                  "knowledge.field.device_class", "knowledge.col.updated"].map((k) => h("th", {}, t(k))))),
      h("tbody", {}, found.items.map(row))) : h("p", { class: "muted" }, t("knowledge.none")));
  }
  state.addEventListener("change", draw);
  await draw();
  return null;
}

function editor(e, onSave) {
  const inputs = {};
  for (const f of LINES) {
    const value = f === "tags" ? (e.tags || []).join(", ") : e[f] || "";
    inputs[f] = h("input", { value, "aria-label": t(`knowledge.field.${f}`), name: f });
  }
  for (const f of TEXTS) {
    inputs[f] = h("textarea", { rows: 3, "aria-label": t(`knowledge.field.${f}`), name: f });
    inputs[f].value = e[f] || "";
  }
  const shared = h("input", { type: "checkbox", name: "customer_visible", checked: Boolean(e.customer_visible) });
  return h("form", { class: "card", id: "knowledge-editor", onsubmit: (ev) => {
    ev.preventDefault();
    const body = Object.fromEntries([...LINES, ...TEXTS].map((f) => [f, inputs[f].value.trim()]));
    body.tags = body.tags ? body.tags.split(",").map((x) => x.trim()).filter(Boolean) : [];
    for (const f of ["problem_type", "metric", "device_class"]) if (!body[f]) body[f] = null;
    body.customer_visible = shared.checked;
    onSave(body);
  } },
  [...LINES, ...TEXTS].map((f) => [h("label", {}, t(`knowledge.field.${f}`)), inputs[f]]),
  h("label", {}, shared, " ", t("knowledge.field.customer_visible")),
  h("button", { type: "submit" }, t("knowledge.save")));
}

function readOnly(e, staff) {
  return h("section", { class: "card", id: "knowledge-entry" },
    h("dl", { class: "facts" },
      ["problem_type", "metric", "device_class"].filter((f) => e[f]).map((f) => [h("dt", {}, t(`knowledge.field.${f}`)), h("dd", {}, e[f])]),
      e.tags.length ? [h("dt", {}, t("knowledge.field.tags")), h("dd", {}, e.tags.join(", "))] : null,
      TEXTS.filter((f) => e[f]).map((f) => [h("dt", {}, t(`knowledge.field.${f}`)), h("dd", { class: "pre" }, e[f])]),
      staff && e.ticket_ids.length ? [h("dt", {}, t("knowledge.related")), h("dd", {},
        e.ticket_ids.map((id) => [h("a", { href: `#/tickets/${id}` }, `#${id}`), " "]))] : null,
      staff && e.used_on.length ? [h("dt", {}, t("knowledge.used_on")), h("dd", {},
        e.used_on.map((id) => [h("a", { href: `#/tickets/${id}` }, `#${id}`), " "]))] : null));
}

async function entry(view, id, ctx) {
  const staff = ctx.me.role !== "customer";
  const manager = isManager(ctx.me);
  async function send(path, options, done) {
    try {
      const saved = await api(path, options);
      toast(t(done));
      if (id === "new") location.hash = `#/knowledge/${saved.id}`;
      else await draw();
    } catch (error) {
      toast(error.message, true);
    }
  }
  const action = (name, label, cls = "secondary") => h("button", { class: cls, dataset: { knowledgeAction: name },
    onclick: () => send(`/knowledge/${id}/${name}`, { method: "POST", body: {} }, "knowledge.done") }, t(label));

  async function draw() {
    if (id === "new") {
      fill(view, h("h1", {}, t("knowledge.new")),
        editor({}, (body) => send("/knowledge", { method: "POST", body }, "knowledge.saved")));
      return;
    }
    const e = await api(`/knowledge/${id}`);
    if (ctx.stale()) return;
    const editable = staff && (e.state === "draft" || (manager && e.state !== "retired"));
    const actions = manager ? [
      ["draft", "review_due"].includes(e.state) ? action("publish", "knowledge.publish", "") : null,
      ["published", "review_due"].includes(e.state) ? action("review", "knowledge.review") : null,
      e.state !== "retired" ? action("retire", "knowledge.retire", "danger") : null,
    ] : [];
    fill(view,
      h("p", {}, h("a", { href: "#/knowledge" }, t("knowledge.back"))),
      h("h1", {}, e.title),
      h("div", { class: "toolbar" }, h("span", { class: `pill state-${e.state}`, id: "knowledge-state-pill" }, stateLabel(e.state)),
        e.customer_visible && staff ? h("span", { class: "pill" }, t("knowledge.field.customer_visible")) : null,
        e.review_at ? h("span", { class: "muted" }, t("knowledge.review_at", { at: formatTime(e.review_at) })) : null,
        actions),
      readOnly(e, staff),
      editable ? h("details", { class: "card" }, h("summary", {}, t("knowledge.edit")),
        editor(e, (body) => send(`/knowledge/${id}`, { method: "PATCH", body }, "knowledge.saved"))) : null);
  }
  await draw();
  return null;
}

export async function render(view, [id], ctx) {
  return id ? entry(view, id, ctx) : list(view, ctx);
}
