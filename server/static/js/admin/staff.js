// Staff: engineers and supervisors with their own channel (where dispatches and pages reach them).
import { api } from "../api.js";
import { fill, h, toast } from "../dom.js";
import { CHANNELS, LANGUAGES, changed, errorBox, field, tagsOf } from "./forms.js";

export async function render(root) {
  const form = h("section", { class: "card", id: "staff-form", hidden: true });
  const list = h("ul", { class: "records", id: "staff-list" });
  root.append(h("div", { class: "toolbar" }, h("button", { id: "staff-new", onclick: () => edit(null) }, "New staff member")),
    form, list);
  let members = [];
  let groups = [];

  async function load() {
    [members, groups] = await Promise.all([api("/staff").then((p) => p.items), api("/staff-groups").then((p) => p.items)]);
    const groupName = new Map(groups.map((g) => [g.id, g.name]));
    fill(list, members.map((m) => h("li", { dataset: { staff: m.id } },
      h("div", { class: "title" }, m.name, " ", h("span", { class: "pill status" }, m.role),
        m.active ? null : h("span", { class: "pill offline" }, "inactive")),
      h("div", { class: "meta" }, m.channel ? `${m.channel}: ${m.address}` : "no channel of their own",
        m.phone ? ` · ${m.phone}` : "", m.tags ? ` · ${m.tags.join(", ")}` : "",
        m.group_ids.length ? ` · ${m.group_ids.map((id) => groupName.get(id) || id).join(", ")}` : ""),
      h("button", { class: "secondary", dataset: { edit: m.id }, onclick: () => edit(m) }, "Edit"))));
    if (!members.length) list.append(h("li", {}, h("span", { class: "muted" }, "No staff yet.")));
  }

  function edit(m) {
    const f = {
      name: field("Name", { value: m?.name, required: true }),
      role: field("Role", { options: [["engineer", "engineer"], ["supervisor", "supervisor"]], value: m?.role || "engineer" }),
      email: field("E-mail", { type: "email", value: m?.email }),
      phone: field("Phone", { type: "tel", value: m?.phone }),
      channel: field("Notified by", { options: CHANNELS, value: m?.channel || "" }),
      address: field("Address (e-mail or URL)", { value: m?.address, help: "empty with an e-mail above: told by e-mail" }),
      language: field("Language", { options: LANGUAGES, value: m?.language || "" }),
      tags: field("Skills and regions", { value: (m?.tags || []).join(", "), placeholder: "fiber, north" }),
      active: field("Active", { type: "checkbox", value: m ? m.active : true }),
    };
    const error = errorBox();
    const remove = m ? h("button", { type: "button", class: "danger", id: "staff-delete", onclick: async () => {
      if (!confirm(`Delete ${m.name}? (Unticking "Active" keeps them instead.)`)) return;
      try { await api(`/staff/${m.id}`, { method: "DELETE" }); toast("Deleted"); form.hidden = true; await load(); }
      catch (e) { error.textContent = e.message; }
    } }, "Delete") : null;
    fill(form, h("h2", {}, m ? `Edit ${m.name}` : "New staff member"),
      h("form", { onsubmit: async (e) => {
        e.preventDefault();
        error.textContent = "";
        const body = { name: f.name.get(), role: f.role.get(), email: f.email.get(), phone: f.phone.get(),
                       channel: f.channel.get(), address: f.address.get(), language: f.language.get(),
                       tags: tagsOf(f.tags.get()), active: f.active.get() };
        if (!m && !body.channel) { delete body.channel; delete body.address; }
        try {
          if (m) await api(`/staff/${m.id}`, { method: "PATCH", body: changed(body, m) });
          else await api("/staff", { method: "POST", body });
          toast("Saved");
          form.hidden = true;
          await load();
        } catch (err) { error.textContent = err.message; }
      } }, h("div", { class: "row" }, Object.values(f).map((x) => x.el)), error,
      h("div", { class: "actions" }, h("button", { type: "submit", id: "staff-save" }, "Save"),
        h("button", { type: "button", class: "secondary", onclick: () => { form.hidden = true; } }, "Cancel"), remove)));
    form.hidden = false;
    f.name.input.focus();
  }

  await load();
}
