// Staff: engineers and supervisors with their own channel (where dispatches and pages reach them),
// and the language and time zone their notifications are written in.
import { api } from "../api.js";
import { fill, h, toast } from "../dom.js";
import { t } from "../i18n.js";
import { LANGUAGES, changed, channels, errorBox, field, tagsOf } from "./forms.js";

// i18n-keys: admin.staff.role.engineer admin.staff.role.supervisor
const ROLES = ["engineer", "supervisor"];

export async function render(root) {
  const form = h("section", { class: "card", id: "staff-form", hidden: true });
  const list = h("ul", { class: "records", id: "staff-list" });
  root.append(h("div", { class: "toolbar" },
    h("button", { id: "staff-new", onclick: () => edit(null) }, t("admin.staff.new"))), form, list);
  let members = [];
  let groups = [];

  async function load() {
    [members, groups] = await Promise.all([api("/staff").then((p) => p.items), api("/staff-groups").then((p) => p.items)]);
    const groupName = new Map(groups.map((g) => [g.id, g.name]));
    fill(list, members.map((m) => h("li", { dataset: { staff: m.id } },
      h("div", { class: "title" }, m.name, " ", h("span", { class: "pill status" }, t(`admin.staff.role.${m.role}`)),
        m.active ? null : h("span", { class: "pill offline" }, t("admin.staff.inactive"))),
      h("div", { class: "meta" }, m.channel ? `${m.channel}: ${m.address}` : t("admin.staff.no_channel"),
        m.phone ? ` · ${m.phone}` : "", m.tags ? ` · ${m.tags.join(", ")}` : "",
        [m.language, m.timezone].some(Boolean) ? ` · ${[m.language, m.timezone].filter(Boolean).join(" · ")}` : "",
        m.group_ids.length ? ` · ${m.group_ids.map((id) => groupName.get(id) || id).join(", ")}` : ""),
      h("button", { class: "secondary", dataset: { edit: m.id }, onclick: () => edit(m) }, t("admin.edit")))));
    if (!members.length) list.append(h("li", {}, h("span", { class: "muted" }, t("admin.staff.none"))));
  }

  function edit(m) {
    const f = {
      name: field(t("admin.field.name"), { value: m?.name, required: true }),
      role: field(t("admin.field.role"), { options: ROLES.map((r) => [r, t(`admin.staff.role.${r}`)]),
                                          value: m?.role || "engineer" }),
      email: field(t("admin.field.email"), { type: "email", value: m?.email }),
      phone: field(t("admin.field.phone"), { type: "tel", value: m?.phone }),
      channel: field(t("admin.staff.channel"), { options: channels(), value: m?.channel || "" }),
      address: field(t("admin.staff.address"), { value: m?.address, help: t("admin.staff.address_help") }),
      language: field(t("admin.field.language"), { options: LANGUAGES, value: m?.language || "" }),
      timezone: field(t("admin.field.timezone"), { value: m?.timezone, placeholder: "Asia/Shanghai" }),
      tags: field(t("admin.staff.tags"), { value: (m?.tags || []).join(", "), placeholder: "fiber, north" }),
      active: field(t("admin.field.active"), { type: "checkbox", value: m ? m.active : true }),
    };
    const error = errorBox();
    const remove = m ? h("button", { type: "button", class: "danger", id: "staff-delete", onclick: async () => {
      if (!confirm(t("admin.staff.confirm_delete", { name: m.name }))) return;
      try { await api(`/staff/${m.id}`, { method: "DELETE" }); toast(t("admin.deleted")); form.hidden = true; await load(); }
      catch (e) { error.textContent = e.message; }
    } }, t("admin.delete")) : null;
    fill(form, h("h2", {}, m ? t("admin.edit_title", { name: m.name }) : t("admin.staff.new")),
      h("form", { onsubmit: async (e) => {
        e.preventDefault();
        error.textContent = "";
        const body = { name: f.name.get(), role: f.role.get(), email: f.email.get(), phone: f.phone.get(),
                       channel: f.channel.get(), address: f.address.get(), language: f.language.get(),
                       timezone: f.timezone.get(), tags: tagsOf(f.tags.get()), active: f.active.get() };
        if (!m && !body.channel) { delete body.channel; delete body.address; }
        try {
          if (m) await api(`/staff/${m.id}`, { method: "PATCH", body: changed(body, m) });
          else await api("/staff", { method: "POST", body });
          toast(t("admin.saved"));
          form.hidden = true;
          await load();
        } catch (err) { error.textContent = err.message; }
      } }, h("div", { class: "row" }, Object.values(f).map((x) => x.el)), error,
      h("div", { class: "actions" }, h("button", { type: "submit", id: "staff-save" }, t("admin.save")),
        h("button", { type: "button", class: "secondary", onclick: () => { form.hidden = true; } }, t("admin.cancel")),
        remove)));
    form.hidden = false;
    f.name.input.focus();
  }

  await load();
}
