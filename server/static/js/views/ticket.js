// One ticket: facts, SLA clocks with live countdowns, actions, and the timeline (audit, notes, notifications).
import { api } from "../api.js";
import { clockState } from "../countdown.js";
import { clockName, fill, h, toast, when } from "../dom.js";
import { relatedDevices } from "./maintenance.js";

const ACTIONS = {
  received: ["acknowledge", "dispatch", "start", "check_in", "cancel"],
  dispatched: ["acknowledge", "dispatch", "start", "check_in", "cancel"],
  in_progress: ["acknowledge", "check_in", "resolve", "cancel"],
  resolved: ["close"],
  closed: [], cancelled: [],
};
const LABELS = { acknowledge: "Acknowledge", dispatch: "Dispatch", start: "Start work", check_in: "Check in on site",
                 resolve: "Resolve", close: "Close", cancel: "Cancel" };

// Audit values are JSON; show times as local times, records as "key: value" and nothing as a dash.
function shown(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "string" && /^\d{4}-\d\d-\d\dT/.test(value)) return when(value);
  if (Array.isArray(value)) return value.map(shown).join("; ");
  if (typeof value === "object") return Object.entries(value).map(([k, v]) => `${k}: ${shown(v)}`).join("; ");
  return String(value);
}

const RCA_SECTIONS = [["symptom", "Symptom"], ["investigation", "Investigation"],
                      ["responsibility", "Responsibility"], ["actions", "Actions"]];

// The root-cause report as its sections, for everyone who may see the ticket.
function rcaReport(t) {
  if (!t.rca) return null;
  return h("section", { class: "card", id: "rca-report" }, h("h2", {}, "Root-cause analysis report"),
    h("p", { class: "muted" }, `attached ${when(t.rca_at)}`),
    h("dl", { class: "facts" }, RCA_SECTIONS.filter(([k]) => t.rca[k]).map(([k, label]) =>
      [h("dt", {}, label), h("dd", {}, Array.isArray(t.rca[k]) ? t.rca[k].join("\n") : t.rca[k])])));
}

function timeline(t) {
  const items = [
    ...t.audit.map((a) => ({ at: a.at, cls: "", text: `${a.actor}: ${a.action}` +
      (a.field ? ` — ${a.field}: ${shown(a.old_value)} → ${shown(a.new_value)}` : "") +
      (a.reason ? ` (${a.reason})` : "") })),
    ...t.notes.map((n) => ({ at: n.at, cls: `note ${n.visibility}`,
      text: `${n.author} wrote${n.visibility === "public" ? " (visible to the customer)" : ""}: ${n.text}` })),
    ...t.notifications.map((n) => ({ at: n.created_at, cls: "notify",
      text: `${n.event} → ${n.recipient_name || n.recipient_kind} by ${n.channel}: ${n.status}` +
        (n.attempts ? ` after ${n.attempts} attempt${n.attempts > 1 ? "s" : ""}` : "") +
        (n.last_error ? ` (${n.last_error})` : "") })),
  ];
  items.sort((a, b) => new Date(a.at) - new Date(b.at));
  return h("ol", { class: "timeline" }, items.map((i) => h("li", { class: i.cls }, h("time", { datetime: i.at }, when(i.at)), i.text)));
}

// A recurring alert owes a first response again although the ticket was acknowledged before.
function owesResponse(t) {
  return t.clocks.some((c) => c.name === "first_response" && !c.stopped_at && !c.breached_at);
}

function clocks(t) {
  return h("div", { class: "clocks" }, t.clocks.map((c) => {
    const state = clockState(c);
    return h("div", { class: "clock", dataset: { clockName: c.name } },
      h("div", { class: "name" }, clockName(c.name)),
      h("div", c.stopped_at ? { class: `countdown ${state.cls}` } : { class: "countdown", dataset: { clock: JSON.stringify(c) } },
        state.text),
      h("div", { class: "muted" }, `due ${when(c.due_at)}`));
  }));
}

export async function render(view, [id], ctx) {
  const staff = ctx.me.role !== "customer";
  let forceOffer = null; // {action, reason} after a 409 saying the alert is still active
  async function act(path, body) {
    try {
      await api(`/tickets/${id}/${path}`, { method: "POST", body });
      forceOffer = null;
      toast("Done");
      await draw();
    } catch (error) {
      if (error.status === 409 && error.key === "force") {
        forceOffer = { action: path, reason: error.message };
        await draw();
      }
      toast(error.message, true);
    }
  }

  // Resolving while the alert is still active needs a reason; the rule is then re-armed.
  function forceForm() {
    if (!staff || !forceOffer) return null;
    const { action, reason } = forceOffer;
    const why = h("input", { placeholder: "Why, although the alert is active?", "aria-label": "Reason", required: true });
    return h("section", { class: "card warning", id: "force-offer" },
      h("h2", {}, "The alert is still active"), h("p", {}, reason),
      h("form", { onsubmit: (e) => { e.preventDefault(); if (why.value.trim()) act(action, { force: true, note: why.value.trim() }); } },
        h("label", {}, "Reason (kept in the audit trail)"), why,
        h("button", { type: "submit", class: "danger", dataset: { force: action } }, `${LABELS[action]} anyway`)));
  }

  function actionBar(t) {
    if (!staff) return null;
    const assignee = h("input", { placeholder: "Assignee", "aria-label": "Assignee", value: t.assignee || "" });
    const note = h("input", { placeholder: "Note (optional)", "aria-label": "Action note" });
    const buttons = (ACTIONS[t.status] || [])
      .filter((a) => !(a === "acknowledge" && t.acknowledged_at && !owesResponse(t)))
      .filter((a) => !(a === "check_in" && t.on_site_at))
      .map((a) => h("button", { class: a === "cancel" ? "danger" : a === "acknowledge" ? "" : "secondary",
                                dataset: { action: a },
                                onclick: () => act(a, { note: note.value || null,
                                                       assignee: a === "dispatch" ? assignee.value || null : null }) },
        LABELS[a]));
    return h("section", { class: "card" }, h("h2", {}, "Actions"),
      h("div", { class: "row" }, h("div", {}, h("label", {}, "Assignee (dispatch)"), assignee),
        h("div", {}, h("label", {}, "Note"), note)),
      h("div", { class: "actions" }, buttons.length ? buttons : h("span", { class: "muted" }, "No actions in this status.")));
  }

  function noteForm() {
    const text = h("textarea", { rows: 2, "aria-label": "New note", maxlength: 20000 });
    // Staff notes are internal unless made public; a customer's notes are always public.
    const visibility = staff ? h("select", { "aria-label": "Note visibility", id: "note-visibility" },
      h("option", { value: "internal" }, "Internal (staff only)"),
      h("option", { value: "public" }, "Public (the customer sees it)")) : null;
    return h("form", { onsubmit: (e) => {
      e.preventDefault();
      if (text.value.trim()) act("notes", { text: text.value, visibility: visibility ? visibility.value : "public" });
    } }, h("label", {}, "Add a note"), text, visibility, h("button", { type: "submit" }, "Add note"));
  }

  function rcaForm(t) {
    if (!staff || t.level !== "red") return null;
    const fields = ["symptom", "investigation", "responsibility", "actions"];
    const inputs = Object.fromEntries(fields.map((f) => [f, h("textarea", { rows: 2, "aria-label": f })]));
    if (t.rca) fields.forEach((f) => { inputs[f].value = t.rca[f] || ""; });
    return h("details", { class: "card", id: "rca-form", open: Boolean(t.rca) },
      h("summary", {}, h("strong", {}, "Root-cause analysis report"), " ",
        h("span", { class: "muted" }, t.rca_at ? `attached ${when(t.rca_at)}` : "due within 48 hours of a red fault")),
      h("form", { onsubmit: (e) => {
        e.preventDefault();
        const body = Object.fromEntries(fields.map((f) => [f, inputs[f].value.trim() || null]));
        act("rca", body);
      } }, fields.map((f) => [h("label", {}, f), inputs[f]]), h("button", { type: "submit" }, "Attach report")));
  }

  function ratingForm(t) {
    if (!["resolved", "closed"].includes(t.status)) return null;
    const select = h("select", { "aria-label": "Rating" }, [5, 4, 3, 2, 1].map((n) => h("option", { value: n }, `${n}`)));
    const comment = h("input", { placeholder: "Comment", "aria-label": "Rating comment" });
    return h("section", { class: "card" }, h("h2", {}, "Satisfaction"),
      t.rating ? h("p", {}, `Rated ${t.rating}/5 ${t.rating_comment ? `— ${t.rating_comment}` : ""}`) : null,
      h("form", { onsubmit: (e) => { e.preventDefault(); act("rating", { rating: Number(select.value), comment: comment.value || null }); } },
        h("div", { class: "row" }, select, comment), h("button", { type: "submit" }, "Rate")));
  }

  async function draw() {
    const t = await api(`/tickets/${id}`);
    if (ctx.stale()) return;
    fill(view, 
      h("h1", {}, `#${t.id} ${t.title}`),
      h("section", { class: "card" },
        h("div", { class: "toolbar" }, h("span", { class: `pill ${t.level}` }, t.level),
          t.severity ? h("span", { class: `pill ${t.severity}` }, t.severity) : null,
          h("span", { class: "pill status", id: "ticket-status" }, t.status.replace("_", " "))),
        h("dl", { class: "facts" },
          h("dt", {}, "Device"), h("dd", { id: "ticket-device" }, t.device_id ? h("a", { href: `#/devices/${encodeURIComponent(t.device_id)}` },
            t.device_name ? `${t.device_name} (${t.device_id})` : t.device_id) : "—"),
          h("dt", {}, "Customer"), h("dd", { id: "ticket-customer" }, t.customer_name || "—"),
          h("dt", {}, "Kind"), h("dd", {}, t.kind.replace("_", " ")),
          h("dt", {}, "Opened"), h("dd", {}, when(t.opened_at)),
          h("dt", {}, "Acknowledged"), h("dd", {}, when(t.acknowledged_at)),
          h("dt", {}, "Assignee"), h("dd", {}, t.assignee || "—"),
          h("dt", {}, "Contact"), h("dd", {}, t.contact_name || "—"),
          h("dt", {}, "Problem"), h("dd", {}, t.description || "—"))),
      h("section", { class: "card" }, h("h2", {}, "SLA clocks"), clocks(t)),
      relatedDevices(t),
      actionBar(t),
      forceForm(),
      rcaReport(t),
      rcaForm(t),
      ratingForm(t),
      h("section", { class: "card" }, h("h2", {}, "Timeline"), timeline(t), noteForm()),
    );
  }
  await draw();
  // Polling must not wipe what someone is typing.
  return async () => {
    const focused = document.activeElement;
    if (focused && view.contains(focused) && ["INPUT", "TEXTAREA", "SELECT"].includes(focused.tagName)) return;
    await draw();
  };
}
