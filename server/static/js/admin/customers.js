// Customers and their contacts: create, edit, deactivate, delete.
import { api } from "../api.js";
import { fill, h, toast } from "../dom.js";
import { t } from "../i18n.js";
import { LANGUAGES, changed, channels, errorBox, field } from "./forms.js";

export async function render(root) {
  const form = h("section", { class: "card", id: "customer-form", hidden: true });
  const list = h("ul", { class: "records", id: "customer-list" });
  root.append(h("div", { class: "toolbar" },
    h("button", { id: "customer-new", onclick: () => edit(null) }, t("admin.customers.new"))), form, list);

  async function load() {
    const customers = (await api("/customers")).items;
    fill(list, customers.map((c) => h("li", { dataset: { customer: c.id } },
      h("div", { class: "title" }, c.name, " ", h("span", { class: "muted" }, `#${c.id}`), " ",
        c.active ? null : h("span", { class: "pill offline" }, t("admin.customers.deactivated"))),
      h("div", { class: "meta" }, [c.language, c.timezone].filter(Boolean).join(" · ") || "—"),
      h("button", { class: "secondary", dataset: { edit: c.id }, onclick: () => edit(c) }, t("admin.customers.edit")))));
    if (!customers.length) list.append(h("li", {}, h("span", { class: "muted" }, t("admin.customers.none"))));
  }

  async function edit(c) {
    const f = {
      name: field(t("admin.field.name"), { value: c?.name, required: true }),
      language: field(t("admin.field.language"), { options: LANGUAGES, value: c?.language || "" }),
      timezone: field(t("admin.field.timezone"), { value: c?.timezone, placeholder: "Asia/Shanghai" }),
      active: field(t("admin.customers.active"), { type: "checkbox", value: c ? c.active : true }),
    };
    const error = errorBox();
    const contacts = h("div", { id: "contact-list" });
    fill(form, h("h2", {}, c ? t("admin.edit_title", { name: c.name }) : t("admin.customers.new")),
      h("form", { onsubmit: async (e) => {
        e.preventDefault();
        error.textContent = "";
        try {
          if (c) {
            const body = changed({ name: f.name.get(), language: f.language.get(), timezone: f.timezone.get(),
                                   active: f.active.get() }, c);
            await api(`/customers/${c.id}`, { method: "PATCH", body });
          } else {
            const made = await api("/customers", { method: "POST", body: { name: f.name.get() } });
            const rest = { language: f.language.get(), timezone: f.timezone.get() };
            if (rest.language || rest.timezone || !f.active.get()) {
              await api(`/customers/${made.id}`, { method: "PATCH", body: { ...rest, active: f.active.get() } });
            }
          }
          toast(t("admin.saved"));
          form.hidden = true;
          await load();
        } catch (err) { error.textContent = err.message; }
      } }, h("div", { class: "row" }, Object.values(f).map((x) => x.el)), error,
      h("div", { class: "actions" }, h("button", { type: "submit", id: "customer-save" }, t("admin.save")),
        h("button", { type: "button", class: "secondary", onclick: () => { form.hidden = true; } }, t("admin.cancel")),
        c ? h("button", { type: "button", class: "danger", onclick: async () => {
          if (!confirm(t("admin.customers.confirm_delete", { name: c.name }))) return;
          try {
            await api(`/customers/${c.id}`, { method: "DELETE" });
            toast(t("admin.deleted"));
            form.hidden = true;
            await load();
          } catch (err) { error.textContent = err.message; }
        } }, t("admin.delete")) : null)),
      c ? [h("h3", {}, t("admin.customers.contacts")), contacts] : null);
    form.hidden = false;
    if (c) await drawContacts(c, contacts);
  }

  async function drawContacts(c, box) {
    const items = (await api(`/customers/${c.id}/contacts`)).items;
    const error = errorBox();
    const row = (ct) => {
      const f = {
        name: field(t("admin.field.name"), { value: ct?.name, required: true }),
        channel: field(t("admin.field.channel"), { options: channels().slice(1), value: ct?.channel || "email" }),
        address: field(t("admin.field.address"), { value: ct?.address, required: true }),
        role: field(t("admin.field.role"), { options: [["ops", t("admin.contact.role.ops")],
                                                       ["technical", t("admin.contact.role.technical")]],
                                             value: ct?.role || "ops" }),
        language: field(t("admin.field.language"), { options: LANGUAGES, value: ct?.language || "" }),
        active: field(t("admin.field.active"), { type: "checkbox", value: ct ? ct.active : true }),
      };
      return h("li", { dataset: { contact: ct ? ct.id : "new" } }, h("form", { class: "row", onsubmit: async (e) => {
        e.preventDefault();
        error.textContent = "";
        const body = { name: f.name.get(), channel: f.channel.get(), address: f.address.get(), role: f.role.get(),
                       language: f.language.get(), active: f.active.get() };
        try {
          if (ct) await api(`/customers/${c.id}/contacts/${ct.id}`, { method: "PATCH", body: changed(body, ct) });
          else {
            const made = await api(`/customers/${c.id}/contacts`, { method: "POST",
              body: { name: body.name, channel: body.channel, address: body.address, role: body.role } });
            if (body.language || !body.active) {
              await api(`/customers/${c.id}/contacts/${made.id}`, { method: "PATCH",
                                                                  body: { language: body.language, active: body.active } });
            }
          }
          toast(t("admin.contact.saved"));
          await drawContacts(c, box);
        } catch (err) { error.textContent = err.message; }
      } }, Object.values(f).map((x) => x.el),
      h("div", { class: "actions" }, h("button", { type: "submit" }, ct ? t("admin.contact.save") : t("admin.contact.add")),
        ct ? h("button", { type: "button", class: "link", onclick: async () => {
          if (!confirm(t("admin.contact.confirm_delete", { name: ct.name }))) return;
          try { await api(`/customers/${c.id}/contacts/${ct.id}`, { method: "DELETE" }); await drawContacts(c, box); }
          catch (err) { error.textContent = err.message; }
        } }, t("admin.delete")) : null)));
    };
    fill(box, h("ul", { class: "records" }, items.map(row), row(null)), error);
  }

  await load();
}
