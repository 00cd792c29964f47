// Staff groups: response teams per ticket level (red / yellow / blue) with their on-call rota and
// overrides, and the escalation tiers (junior ... supervisor).
import { api } from "../api.js";
import { fill, h, toast } from "../dom.js";
import { lang, t, timeZone } from "../i18n.js";
import { changed, channels, errorBox, field, isoToZoned, zonedToIso } from "./forms.js";

// i18n-keys: admin.groups.level.red admin.groups.level.yellow admin.groups.level.blue admin.groups.level.junior
// i18n-keys: admin.groups.level.mid admin.groups.level.senior admin.groups.level.supervisor
const LEVELS = ["red", "yellow", "blue", "junior", "mid", "senior", "supervisor"];
// i18n-keys: admin.groups.pill.red admin.groups.pill.yellow admin.groups.pill.blue admin.groups.pill.junior
// i18n-keys: admin.groups.pill.mid admin.groups.pill.senior admin.groups.pill.supervisor
const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

// A hand-over as people read it: "Mon 5 Jan 09:00", "1月5日周一 09:00" (the person's time zone).
function at(iso) {
  return new Date(iso).toLocaleString(lang(), { weekday: "short", day: "numeric", month: "short",
                                                hour: "2-digit", minute: "2-digit", hour12: false,
                                                timeZone: timeZone() });
}

function shift(s) {
  return h("span", {}, h("strong", {}, s.name), ` ${at(s.starts_at)} – ${at(s.ends_at)}`,
    s.override ? h("span", { class: "pill status" }, t("admin.groups.override")) : null);
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
      h("div", { class: "title" }, g.name, " ", h("span", { class: `pill ${g.level}` }, t(`admin.groups.pill.${g.level}`))),
      h("div", { class: "meta" }, g.members.length ? g.members.map((m) => m.name).join(", ") : t("admin.groups.no_members"),
        g.channel ? ` · ${t("admin.groups.group_channel_is", { channel: g.channel })}` : ""),
      h("div", { class: "meta oncall", dataset: { onCall: g.on_call ? g.on_call.name : "" } },
        g.on_call ? [t("admin.groups.on_call_now"), " ", shift(g.on_call)]
          : (g.rota ? t("admin.groups.nobody_on_call") : t("admin.groups.no_rota"))),
      g.upcoming.length ? h("div", { class: "meta" }, t("admin.groups.next"), " ",
        g.upcoming.slice(0, 3).map((s, i) => [i ? "; " : "", shift(s)])) : null,
      h("button", { class: "secondary", dataset: { edit: g.id }, onclick: () => edit(g) }, t("admin.edit")))));
    if (!groups.items.length) list.append(h("li", {}, h("span", { class: "muted" }, t("admin.groups.none"))));
  }

  function edit(g) {
    const f = {
      name: field(t("admin.field.name"), { value: g?.name, required: true }),
      level: field(t("admin.groups.paged_for"), { options: LEVELS.map((l) => [l, t(`admin.groups.level.${l}`)]),
                                                  value: g?.level || "red" }),
      channel: field(t("admin.groups.channel"), { options: channels(), value: g?.channel || "" }),
      address: field(t("admin.groups.address"), { value: g?.address }),
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
      order.includes(m.id) && order.indexOf(m.id) > 0 ? h("button", { type: "button", class: "link", "aria-label": t("admin.groups.move_up", { name: m.name }),
        onclick: () => { const i = order.indexOf(m.id); [order[i - 1], order[i]] = [order[i], order[i - 1]]; drawMembers(); } }, "↑") : null)));
    drawMembers();

    const zone = g?.rota?.timezone || timeZone() || ZONE;
    const rotaOn = field(t("admin.groups.rota"), { type: "checkbox", value: Boolean(g?.rota) });
    const start = field(t("admin.groups.first_handover"), { type: "datetime-local",
                                                            value: g?.rota ? isoToZoned(g.rota.starts_at, zone) : "" });
    const tz = field(t("admin.field.timezone"), { value: zone, placeholder: "Asia/Shanghai" });
    const period = field(t("admin.groups.period"), { type: "number", value: g?.rota?.period_days || 7 });
    let overrides = g?.rota ? [...g.rota.overrides] : [];
    const overrideList = h("ul", { class: "records", id: "group-overrides" });
    const nameOf = (id) => (staff.find((m) => m.id === id) || { name: t("admin.groups.staff_id", { id }) }).name;
    const drawOverrides = () => fill(overrideList, overrides.map((o, i) => h("li", {},
      h("span", {}, `${nameOf(o.member_id)}: ${at(o.starts_at)} – ${at(o.ends_at)}${o.note ? ` (${o.note})` : ""}`),
      h("button", { type: "button", class: "link", onclick: () => { overrides.splice(i, 1); drawOverrides(); } },
        t("admin.groups.remove")))));
    drawOverrides();
    const who = field(t("admin.groups.override_who"), { options: staff.map((m) => [m.id, m.name]) });
    const from = field(t("admin.groups.override_from"), { type: "datetime-local" });
    const to = field(t("admin.groups.override_to"), { type: "datetime-local" });
    const note = field(t("admin.groups.override_note"), {});
    const error = errorBox();
    const addOverride = h("button", { type: "button", class: "secondary", id: "override-add", onclick: () => {
      if (!from.get() || !to.get()) { error.textContent = t("admin.groups.override_needs_times"); return; }
      overrides.push({ member_id: Number(who.get()), starts_at: zonedToIso(from.get(), tz.get() || "UTC"),
                       ends_at: zonedToIso(to.get(), tz.get() || "UTC"), note: note.get() });
      drawOverrides();
    } }, t("admin.groups.add_override"));

    const remove = g ? h("button", { type: "button", class: "danger", onclick: async () => {
      if (!confirm(t("admin.groups.confirm_delete", { name: g.name }))) return;
      try {
        await api(`/staff-groups/${g.id}`, { method: "DELETE" });
        toast(t("admin.deleted"));
        form.hidden = true;
        await load();
      } catch (e) { error.textContent = e.message; }
    } }, t("admin.delete")) : null;

    fill(form, h("h2", {}, g ? t("admin.edit_title", { name: g.name }) : t("admin.groups.new")),
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
        if (rotaOn.get() && !rota.starts_at) { error.textContent = t("admin.groups.rota_needs_start"); return; }
        try {
          if (g) {
            const patch = changed(body, g);
            if (JSON.stringify(rota) !== JSON.stringify(g.rota)) patch.rota = rota;
            await api(`/staff-groups/${g.id}`, { method: "PATCH", body: patch });
          } else {
            if (rota) body.rota = rota;
            await api("/staff-groups", { method: "POST", body });
          }
          toast(t("admin.saved"));
          form.hidden = true;
          await load();
        } catch (err) { error.textContent = err.message; }
      } },
      h("div", { class: "row" }, Object.values(f).map((x) => x.el)),
      h("h3", {}, t("admin.groups.members")), members,
      h("h3", {}, t("admin.groups.on_call")), rotaOn.el, h("div", { class: "row" }, start.el, tz.el, period.el),
      h("h3", {}, t("admin.groups.overrides")), overrideList,
      h("div", { class: "row" }, who.el, from.el, to.el, note.el), addOverride,
      error,
      h("div", { class: "actions" }, h("button", { type: "submit", id: "group-save" }, t("admin.save")),
        h("button", { type: "button", class: "secondary", onclick: () => { form.hidden = true; } }, t("admin.cancel")),
        remove)));
    form.hidden = false;
  }

  await load();
  toolbar.append(h("button", { id: "group-new", onclick: () => edit(null) }, t("admin.groups.new")));
}
