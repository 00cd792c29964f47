// Staff groups: response teams per ticket level (red / yellow / blue) with their on-call rota and
// overrides, and the escalation tiers (junior ... supervisor).
import { api } from "../api.js";
import { fill, h, toast } from "../dom.js";
import { CHANNELS, changed, errorBox, field, isoToZoned, zonedToIso } from "./forms.js";

const LEVELS = [["red", "red tickets"], ["yellow", "yellow tickets"], ["blue", "blue tickets"],
                ["junior", "escalation: junior"], ["mid", "escalation: mid"], ["senior", "escalation: senior"],
                ["supervisor", "escalation: supervisor"]];
const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

// A hand-over as people read it: "Mon 5 Jan 09:00" (the browser's time zone).
function at(iso) {
  return new Date(iso).toLocaleString(undefined, { weekday: "short", day: "numeric", month: "short",
                                                   hour: "2-digit", minute: "2-digit" });
}

function shift(s) {
  return h("span", {}, h("strong", {}, s.name), ` ${at(s.starts_at)} – ${at(s.ends_at)}`,
    s.override ? h("span", { class: "pill status" }, "override") : null);
}

export async function render(root) {
  const form = h("section", { class: "card", id: "group-form", hidden: true });
  const list = h("ul", { class: "records", id: "group-list" });
  // The button appears once the staff are loaded: a new group's member list is made of them.
  const toolbar = h("div", { class: "toolbar" });
  root.append(toolbar, form, list);
  let staff = [];

  async function load() {
    const [groups, people] = await Promise.all([api("/staff-groups"), api("/staff")]);
    staff = people.items;
    fill(list, groups.items.map((g) => h("li", { class: ["red", "yellow", "blue"].includes(g.level) ? g.level : "", dataset: { group: g.id } },
      h("div", { class: "title" }, g.name, " ", h("span", { class: `pill ${g.level}` }, g.level)),
      h("div", { class: "meta" }, g.members.length ? g.members.map((m) => m.name).join(", ") : "no members",
        g.channel ? ` · group channel ${g.channel}` : ""),
      h("div", { class: "meta oncall", dataset: { onCall: g.on_call ? g.on_call.name : "" } },
        g.on_call ? ["On call now: ", shift(g.on_call)] : (g.rota ? "Nobody on call now" : "No rota: the whole group is paged")),
      g.upcoming.length ? h("div", { class: "meta" }, "Next: ", g.upcoming.slice(0, 3).map((s, i) => [i ? "; " : "", shift(s)])) : null,
      h("button", { class: "secondary", dataset: { edit: g.id }, onclick: () => edit(g) }, "Edit"))));
    if (!groups.items.length) list.append(h("li", {}, h("span", { class: "muted" }, "No groups yet.")));
  }

  function edit(g) {
    const f = {
      name: field("Name", { value: g?.name, required: true }),
      level: field("Paged for", { options: LEVELS, value: g?.level || "red" }),
      channel: field("Group channel", { options: CHANNELS, value: g?.channel || "" }),
      address: field("Group address (robot URL or mailing list)", { value: g?.address }),
    };
    // Members in order (the rota's order): tick to add, the arrows move.
    let order = g ? [...g.member_ids] : [];
    const members = h("ol", { class: "members", id: "group-members" });
    const drawMembers = () => fill(members, staff.map((m) => m).sort((a, b) => {
      const ia = order.indexOf(a.id), ib = order.indexOf(b.id);
      return (ia < 0 ? 1e9 : ia) - (ib < 0 ? 1e9 : ib) || a.name.localeCompare(b.name);
    }).map((m) => h("li", { dataset: { member: m.id } },
      h("label", { class: "check" }, h("input", { type: "checkbox", checked: order.includes(m.id), onchange: (e) => {
        order = e.target.checked ? [...order, m.id] : order.filter((x) => x !== m.id);
        drawMembers();
      } }), ` ${m.name}`),
      order.includes(m.id) && order.indexOf(m.id) > 0 ? h("button", { type: "button", class: "link", "aria-label": `Move ${m.name} up`,
        onclick: () => { const i = order.indexOf(m.id); [order[i - 1], order[i]] = [order[i], order[i - 1]]; drawMembers(); } }, "↑") : null)));
    drawMembers();

    const zone = g?.rota?.timezone || ZONE;
    const rotaOn = field("On-call rota (members take turns in the order above)", { type: "checkbox", value: Boolean(g?.rota) });
    const start = field("First hand-over (local time)", { type: "datetime-local",
                                                          value: g?.rota ? isoToZoned(g.rota.starts_at, zone) : "" });
    const tz = field("Time zone", { value: zone, placeholder: "Asia/Shanghai" });
    const period = field("Days per turn", { type: "number", value: g?.rota?.period_days || 7 });
    let overrides = g?.rota ? [...g.rota.overrides] : [];
    const overrideList = h("ul", { class: "records", id: "group-overrides" });
    const nameOf = (id) => (staff.find((m) => m.id === id) || { name: `staff ${id}` }).name;
    const drawOverrides = () => fill(overrideList, overrides.map((o, i) => h("li", {},
      h("span", {}, `${nameOf(o.member_id)}: ${at(o.starts_at)} – ${at(o.ends_at)}${o.note ? ` (${o.note})` : ""}`),
      h("button", { type: "button", class: "link", onclick: () => { overrides.splice(i, 1); drawOverrides(); } }, "remove"))));
    drawOverrides();
    const who = field("Override: who", { options: staff.map((m) => [m.id, m.name]) });
    const from = field("from (local time)", { type: "datetime-local" });
    const to = field("to (local time)", { type: "datetime-local" });
    const note = field("note", {});
    const error = errorBox();
    const addOverride = h("button", { type: "button", class: "secondary", id: "override-add", onclick: () => {
      if (!from.get() || !to.get()) { error.textContent = "an override needs its start and end"; return; }
      overrides.push({ member_id: Number(who.get()), starts_at: zonedToIso(from.get(), tz.get() || "UTC"),
                       ends_at: zonedToIso(to.get(), tz.get() || "UTC"), note: note.get() });
      drawOverrides();
    } }, "Add override");

    const remove = g ? h("button", { type: "button", class: "danger", onclick: async () => {
      if (!confirm(`Delete the group ${g.name}?`)) return;
      try { await api(`/staff-groups/${g.id}`, { method: "DELETE" }); toast("Deleted"); form.hidden = true; await load(); }
      catch (e) { error.textContent = e.message; }
    } }, "Delete") : null;

    fill(form, h("h2", {}, g ? `Edit ${g.name}` : "New group"),
      h("form", { onsubmit: async (e) => {
        e.preventDefault();
        error.textContent = "";
        const body = { name: f.name.get(), level: f.level.get(), channel: f.channel.get(), address: f.address.get(),
                       member_ids: order };
        if (!g && !body.channel) { delete body.channel; delete body.address; }
        const rota = rotaOn.get() ? {
          member_ids: order, starts_at: zonedToIso(start.get(), tz.get() || "UTC"), timezone: tz.get() || "UTC",
          period_days: Number(period.get() || 7), overrides,
        } : null;
        if (rotaOn.get() && !rota.starts_at) { error.textContent = "rota: give the first hand-over"; return; }
        try {
          if (g) {
            const patch = changed(body, g);
            if (JSON.stringify(rota) !== JSON.stringify(g.rota)) patch.rota = rota;
            await api(`/staff-groups/${g.id}`, { method: "PATCH", body: patch });
          } else {
            if (rota) body.rota = rota;
            await api("/staff-groups", { method: "POST", body });
          }
          toast("Saved");
          form.hidden = true;
          await load();
        } catch (err) { error.textContent = err.message; }
      } },
      h("div", { class: "row" }, Object.values(f).map((x) => x.el)),
      h("h3", {}, "Members"), members,
      h("h3", {}, "On call"), rotaOn.el, h("div", { class: "row" }, start.el, tz.el, period.el),
      h("h3", {}, "Overrides"), overrideList, h("div", { class: "row" }, who.el, from.el, to.el, note.el), addOverride,
      error,
      h("div", { class: "actions" }, h("button", { type: "submit", id: "group-save" }, "Save"),
        h("button", { type: "button", class: "secondary", onclick: () => { form.hidden = true; } }, "Cancel"), remove)));
    form.hidden = false;
  }

  await load();
  toolbar.append(h("button", { id: "group-new", onclick: () => edit(null) }, "New group"));
}
