// One ticket, readable at a glance: one badge with its level in words, the problem in one sentence with
// a small chart of the samples around it, SLA clocks as countdowns with their due time, only the actions
// legal now, and a timeline of distinct events saying who did what (audit, notes, notifications).
import { api } from "../api.js";
import { timeChart } from "../charts.js";
import { clockState } from "../countdown.js";
import { clockName, fill, h, kindName, levelName, statusName, toast, when } from "../dom.js";
import { t } from "../i18n.js";
import { subscribe } from "../live.js";
import { catalogue, metricName, withUnit } from "../metrics.js";
import { relatedDevices } from "./maintenance.js";
import { knowledgeSection } from "./ticket_knowledge.js";

const ACTIONS = {
  received: ["acknowledge", "dispatch", "start", "check_in", "cancel"],
  dispatched: ["acknowledge", "dispatch", "start", "check_in", "cancel"],
  in_progress: ["acknowledge", "check_in", "resolve", "cancel"],
  resolved: ["close"],
  closed: [], cancelled: [],
};
// i18n-keys: ticket.action.acknowledge ticket.action.dispatch ticket.action.start ticket.action.check_in
// i18n-keys: ticket.action.resolve ticket.action.close ticket.action.cancel ticket.action.notes
// i18n-keys: ticket.action.rca ticket.action.rating
// i18n-keys: ticket.done.acknowledge ticket.done.dispatch ticket.done.start ticket.done.check_in
// i18n-keys: ticket.done.resolve ticket.done.close ticket.done.cancel ticket.done.notes ticket.done.rca
// i18n-keys: ticket.done.rating
// i18n-keys: ticket.rca.symptom ticket.rca.investigation ticket.rca.responsibility ticket.rca.actions
const RCA_FIELDS = ["symptom", "investigation", "responsibility", "actions"];

// An audit action in words ("acknowledged", "opened", "clock breached"); unknown ones as they come.
function did(action) {
  const key = `ticket.did.${action}`;
  const text = t(key);
  return text === key ? action.replaceAll("_", " ") : text;
}
// i18n-keys: ticket.did.opened ticket.did.acknowledge ticket.did.dispatch ticket.did.start ticket.did.check_in
// i18n-keys: ticket.did.resolve ticket.did.close ticket.did.cancel ticket.did.escalated ticket.did.clock_breached
// i18n-keys: ticket.did.forced ticket.did.cleared ticket.did.recurred ticket.did.rca ticket.did.rating
// i18n-keys: ticket.did.clock_stopped

// One entry per thing that happened: audit rows written together (same time, actor and action) are one
// event; a field change reads "status: received → in progress".
function events(tk) {
  const out = [];
  const byKey = new Map();
  for (const a of tk.audit) {
    const key = `${a.at}|${a.actor}|${a.action}`;
    let e = byKey.get(key);
    if (!e) {
      e = { at: a.at, cls: "", who: a.actor, what: did(a.action), changes: [], reason: a.reason, action: a.action };
      byKey.set(key, e);
      out.push(e);
    }
    if (a.field && !["acknowledged_at", "dispatched_at", "started_at", "on_site_at", "resolved_at", "closed_at",
      "cancelled_at"].includes(a.field)) {
      const value = (v) => (a.field === "status" && v ? statusName(v) : shown(v));
      const change = `${a.field === "status" ? t("ticket.field.status") : a.field}: ${value(a.old_value)} → ${value(a.new_value)}`;
      if (!e.changes.includes(change)) e.changes.push(change);
    }
    if (a.reason && !e.reason) e.reason = a.reason;
  }
  for (const n of tk.notes) {
    out.push({ at: n.at, cls: `note ${n.visibility}`, who: n.author,
               what: n.visibility === "public" ? t("ticket.wrote_public") : t("ticket.wrote"), changes: [], reason: n.text });
  }
  const sent = new Map();
  for (const n of tk.notifications) {
    const key = `${n.event}|${n.recipient_name || n.recipient_kind}|${n.channel}`;
    if (sent.has(key)) continue; // retries and duplicates of one message are one event
    sent.set(key, true);
    out.push({ at: n.created_at, cls: "notify", who: t("ticket.system"),
               what: t("ticket.notified", { who: n.recipient_name || n.recipient_kind, channel: n.channel, status: n.status }),
               changes: [], reason: n.last_error });
  }
  out.sort((x, y) => new Date(x.at) - new Date(y.at));
  return out;
}

function shown(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "string" && /^\d{4}-\d\d-\d\dT/.test(value)) return when(value);
  if (Array.isArray(value)) return value.map(shown).join("; ");
  if (typeof value === "object") return Object.entries(value).map(([k, v]) => `${k}: ${shown(v)}`).join("; ");
  return String(value);
}

function timeline(tk) {
  return h("ol", { class: "timeline" }, events(tk).map((e) => h("li", { class: e.cls, dataset: { event: e.action || "" } },
    h("time", { datetime: e.at }, when(e.at)),
    h("strong", {}, e.who), " ", e.what,
    e.changes.length ? h("span", { class: "muted" }, ` — ${e.changes.join("; ")}`) : null,
    e.reason ? h("div", { class: "said" }, e.reason) : null)));
}

// The problem in one sentence, from the ticket's details (a threshold alert) or its title.
function problem(tk, cat) {
  const d = tk.details || {};
  if (d.metric && d.value !== undefined && d.threshold !== undefined) {
    const red = d.severity === "red";
    return t(red ? "ticket.problem.red" : "ticket.problem.orange", {
      metric: metricName(cat, d.metric), device: tk.device_name || tk.device_id || "—",
      value: withUnit(cat, d.metric, d.value, 1), at: d.ts ? when(new Date(d.ts * 1000).toISOString()) : when(tk.opened_at),
      level: withUnit(cat, d.metric, red ? d.red_level : d.threshold, 0) });
  }
  if (tk.kind === "offline" && d.last_seen) return t("ticket.problem.offline", { device: tk.device_name || tk.device_id, at: when(d.last_seen) });
  return tk.title;
}

function clocks(tk) {
  return h("div", { class: "clocks" }, tk.clocks.map((c) => {
    const state = clockState(c);
    return h("div", { class: "clock", dataset: { clockName: c.name } },
      h("div", { class: "name" }, clockName(c.name)),
      h("div", c.stopped_at ? { class: `countdown ${state.cls}` } : { class: "countdown", dataset: { clock: JSON.stringify(c) } },
        state.text),
      h("div", { class: "muted" }, t("term.clock.due", { at: when(c.due_at) })));
  }));
}

// A recurring alert owes a first response again although the ticket was acknowledged before.
function owesResponse(tk) {
  return tk.clocks.some((c) => c.name === "first_response" && !c.stopped_at && !c.breached_at);
}

export async function render(view, [id], ctx) {
  const staff = ctx.me.role !== "customer";
  const cat = await catalogue();
  let forceOffer = null; // {action, reason} after a 409 saying the alert is still active
  let fieldErrors = {}; // form -> message, shown beside the form's field

  async function act(path, body, form) {
    try {
      await api(`/tickets/${id}/${path}`, { method: "POST", body });
      forceOffer = null;
      fieldErrors = {};
      toast(t(`ticket.done.${path}`));
      await draw();
    } catch (error) {
      if (error.status === 409 && error.key === "force") {
        forceOffer = { action: path, reason: error.message };
      } else {
        fieldErrors = { [form || path]: error.message };
      }
      await draw();
      toast(error.message, true);
    }
  }

  const errorFor = (name) => h("p", { class: "error field-error", role: "alert", dataset: { errorFor: name } },
    fieldErrors[name] || "");

  // Resolving while the alert is still active needs a reason; the rule is then re-armed.
  function forceForm() {
    if (!staff || !forceOffer) return null;
    const { action, reason } = forceOffer;
    const why = h("input", { placeholder: t("ticket.force.why"), "aria-label": t("ticket.force.reason"), required: true,
                             id: "force-reason" });
    return h("section", { class: "card warning", id: "force-offer" },
      h("h2", {}, t("ticket.force.title")), h("p", {}, reason),
      h("form", { onsubmit: (e) => { e.preventDefault(); if (why.value.trim()) act(action, { force: true, note: why.value.trim() }); } },
        h("label", { for: "force-reason" }, t("ticket.force.reason")), why,
        h("button", { type: "submit", class: "danger", dataset: { force: action } },
          t("ticket.force.anyway", { action: t(`ticket.action.${action}`) }))));
  }

  function actionBar(tk) {
    if (!staff) return null;
    const assignee = h("input", { placeholder: t("ticket.assignee"), "aria-label": t("ticket.assignee"), value: tk.assignee || "",
                                  id: "action-assignee" });
    const note = h("input", { placeholder: t("ticket.action_note"), "aria-label": t("ticket.action_note"), id: "action-note" });
    const legal = (ACTIONS[tk.status] || [])
      .filter((a) => !(a === "acknowledge" && tk.acknowledged_at && !owesResponse(tk)))
      .filter((a) => !(a === "check_in" && tk.on_site_at));
    const buttons = legal.map((a) => h("button", {
      class: a === "cancel" ? "danger" : a === "acknowledge" ? "" : "secondary", dataset: { action: a },
      onclick: () => act(a, { note: note.value || null, assignee: a === "dispatch" ? assignee.value || null : null }, "actions"),
    }, t(`ticket.action.${a}`)));
    return h("section", { class: "card" }, h("h2", {}, t("ticket.actions")),
      h("div", { class: "row" },
        legal.includes("dispatch") ? h("div", {}, h("label", { for: "action-assignee" }, t("ticket.assignee_dispatch")), assignee) : null,
        legal.length ? h("div", {}, h("label", { for: "action-note" }, t("ticket.action_note")), note) : null),
      h("div", { class: "actions" }, buttons.length ? buttons : h("span", { class: "muted" }, t("ticket.no_actions"))),
      errorFor("actions"));
  }

  function noteForm() {
    const text = h("textarea", { rows: 2, "aria-label": t("ticket.new_note"), maxlength: 20000, id: "note-text" });
    // Staff notes are internal unless made public; a customer's notes are always public.
    const visibility = staff ? h("select", { "aria-label": t("ticket.note_visibility"), id: "note-visibility" },
      h("option", { value: "internal" }, t("ticket.note.internal")),
      h("option", { value: "public" }, t("ticket.note.public"))) : null;
    return h("form", { onsubmit: (e) => {
      e.preventDefault();
      if (!text.value.trim()) { fieldErrors = { notes: t("ticket.note.empty") }; draw(); return; }
      act("notes", { text: text.value, visibility: visibility ? visibility.value : "public" });
    } }, h("label", { for: "note-text" }, t("ticket.add_note")), text, errorFor("notes"), visibility,
    h("button", { type: "submit" }, t("ticket.add_note_button")));
  }

  function rcaReport(tk) {
    if (!tk.rca) return null;
    return h("section", { class: "card", id: "rca-report" }, h("h2", {}, t("ticket.rca.title")),
      h("p", { class: "muted" }, t("ticket.rca.attached", { at: when(tk.rca_at) })),
      h("dl", { class: "facts" }, RCA_FIELDS.filter((k) => tk.rca[k]).map((k) =>
        [h("dt", {}, t(`ticket.rca.${k}`)), h("dd", {}, Array.isArray(tk.rca[k]) ? tk.rca[k].join("\n") : tk.rca[k])])));
  }

  function rcaForm(tk) {
    if (!staff || tk.level !== "red") return null;
    const inputs = Object.fromEntries(RCA_FIELDS.map((f) => [f, h("textarea", { rows: 2, "aria-label": t(`ticket.rca.${f}`),
                                                                                   id: `rca-${f}` })]));
    if (tk.rca) RCA_FIELDS.forEach((f) => { inputs[f].value = tk.rca[f] || ""; });
    return h("details", { class: "card", id: "rca-form", open: Boolean(tk.rca) || Boolean(fieldErrors.rca) },
      h("summary", {}, h("strong", {}, t("ticket.rca.title")), " ",
        h("span", { class: "muted" }, tk.rca_at ? t("ticket.rca.attached", { at: when(tk.rca_at) }) : t("ticket.rca.due"))),
      h("form", { onsubmit: (e) => {
        e.preventDefault();
        act("rca", Object.fromEntries(RCA_FIELDS.map((f) => [f, inputs[f].value.trim() || null])));
      } }, RCA_FIELDS.map((f) => [h("label", { for: `rca-${f}` }, t(`ticket.rca.${f}`)), inputs[f]]), errorFor("rca"),
      h("button", { type: "submit" }, t("ticket.rca.attach"))));
  }

  function ratingForm(tk) {
    if (!["resolved", "closed"].includes(tk.status)) return null;
    const select = h("select", { "aria-label": t("ticket.rating"), id: "rating-value" },
      [5, 4, 3, 2, 1].map((n) => h("option", { value: n }, `${n}`)));
    const comment = h("input", { placeholder: t("ticket.rating_comment"), "aria-label": t("ticket.rating_comment") });
    return h("section", { class: "card" }, h("h2", {}, t("ticket.satisfaction")),
      tk.rating ? h("p", {}, t("ticket.rated", { n: tk.rating }), tk.rating_comment ? ` — ${tk.rating_comment}` : "") : null,
      h("form", { onsubmit: (e) => { e.preventDefault(); act("rating", { rating: Number(select.value), comment: comment.value || null }); } },
        h("div", { class: "row" }, select, comment), errorFor("rating"), h("button", { type: "submit" }, t("ticket.rate"))));
  }

  function sparkline(tk) {
    const d = tk.details || {};
    if (!d.metric || !Array.isArray(d.recent) || d.recent.length < 2) return null;
    const box = h("div", { class: "spark" });
    const lines = [
      d.threshold !== undefined ? { label: t("chart.orange_level"), value: d.threshold, colour: "#e07b00" } : null,
      d.red_level !== undefined ? { label: t("chart.red_level"), value: d.red_level, colour: "#d0312d" } : null,
    ].filter(Boolean);
    requestAnimationFrame(() => timeChart(box, t("ticket.samples"), [{ label: metricName(cat, d.metric),
                                                                    points: d.recent.map(([ts, v]) => [ts, v]) }], lines));
    return box;
  }

  async function draw() {
    const tk = await api(`/tickets/${id}`);
    if (ctx.stale()) return;
    const focused = document.activeElement && view.contains(document.activeElement) ? document.activeElement.id : null;
    fill(view,
      h("h1", {}, `#${tk.id} ${tk.title}`),
      h("section", { class: "card" },
        h("div", { class: "toolbar" },
          h("span", { class: `pill ${tk.level}`, id: "ticket-level", dataset: { level: tk.level } }, levelName(tk.level)),
          h("span", { class: "pill status", id: "ticket-status" }, statusName(tk.status)),
          h("span", { class: "muted" }, kindName(tk.kind))),
        h("p", { class: "problem", id: "ticket-problem" }, problem(tk, cat)),
        sparkline(tk),
        h("dl", { class: "facts" },
          h("dt", {}, t("ticket.device")), h("dd", { id: "ticket-device" }, tk.device_id ? h("a", { href: `#/devices/${encodeURIComponent(tk.device_id)}` },
            tk.device_name ? `${tk.device_name} (${tk.device_id})` : tk.device_id) : "—"),
          h("dt", {}, t("ticket.customer")), h("dd", { id: "ticket-customer" }, tk.customer_name || "—"),
          h("dt", {}, t("ticket.opened")), h("dd", {}, when(tk.opened_at)),
          h("dt", {}, t("ticket.acknowledged")), h("dd", {}, when(tk.acknowledged_at)),
          h("dt", {}, t("ticket.assignee")), h("dd", {}, tk.assignee || "—"),
          h("dt", {}, t("ticket.contact")), h("dd", {}, tk.contact_name || "—"))),
      h("section", { class: "card" }, h("h2", {}, t("ticket.clocks")), clocks(tk)),
      relatedDevices(tk),
      actionBar(tk),
      forceForm(),
      knowledgeSection(tk.id, staff),
      rcaReport(tk),
      rcaForm(tk),
      ratingForm(tk),
      h("section", { class: "card" }, h("h2", {}, t("ticket.timeline")), timeline(tk), noteForm()),
    );
    if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
  }

  let pending = 0;
  subscribe(ctx, { tickets(data) {
    if (!data.ids.includes(Number(id))) return;
    const focused = document.activeElement;
    if (focused && view.contains(focused) && ["INPUT", "TEXTAREA", "SELECT"].includes(focused.tagName)) return;
    clearTimeout(pending);
    pending = setTimeout(draw, 200);
  } });
  await draw();
  // Polling must not wipe what someone is typing.
  return async () => {
    const focused = document.activeElement;
    if (focused && view.contains(focused) && ["INPUT", "TEXTAREA", "SELECT"].includes(focused.tagName)) return;
    await draw();
  };
}
