// User accounts (admins only): people signing in with a password, the language and time zone the
// dashboard shows them; reset, disable, enable, delete.
import { api } from "../api.js";
import { fill, h, toast } from "../dom.js";
import { formatTime, t } from "../i18n.js";
import { LANGUAGES, errorBox, field } from "./forms.js";

// i18n-keys: admin.users.role.engineer admin.users.role.supervisor admin.users.role.admin admin.users.role.customer
const ROLES = ["engineer", "supervisor", "admin", "customer"];

export async function render(root) {
  const error = errorBox();
  const list = h("ul", { class: "records", id: "user-list" });
  const [customers, staff] = await Promise.all([api("/customers").then((p) => p.items), api("/staff").then((p) => p.items)]);
  const f = {
    username: field(t("admin.users.username"), { required: true, placeholder: "wangfang" }),
    password: field(t("admin.users.password"), { type: "password", required: true }),
    role: field(t("admin.field.role"), { options: ROLES.map((r) => [r, t(`admin.users.role.${r}`)]) }),
    customer: field(t("admin.users.customer"), { options: [["", "—"], ...customers.map((c) => [c.id, c.name])] }),
    staff: field(t("admin.users.staff"), { options: [["", "—"], ...staff.map((m) => [m.id, m.name])] }),
    language: field(t("admin.field.language"), { options: LANGUAGES }),
    timezone: field(t("admin.field.timezone"), { placeholder: "Asia/Shanghai" }),
  };
  root.append(h("section", { class: "card", id: "user-form" }, h("h2", {}, t("admin.users.new")),
    h("form", { onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = "";
      const body = { username: f.username.get(), password: f.password.input.value, role: f.role.get() };
      if (f.customer.get()) body.customer_id = Number(f.customer.get());
      if (f.staff.get()) body.staff_id = Number(f.staff.get());
      if (f.language.get()) body.language = f.language.get();
      if (f.timezone.get()) body.timezone = f.timezone.get();
      try {
        await api("/users", { method: "POST", body });
        toast(t("admin.users.created"));
        f.username.set(""); f.password.set("");
        await load();
      } catch (err) { error.textContent = err.message; }
    } }, h("div", { class: "row" }, Object.values(f).map((x) => x.el)), error,
    h("button", { type: "submit", id: "user-save" }, t("admin.users.create")))), list);

  const customerName = new Map(customers.map((c) => [c.id, c.name]));
  const staffName = new Map(staff.map((m) => [m.id, m.name]));

  async function patch(u, body, done) {
    try { await api(`/users/${u.id}`, { method: "PATCH", body }); toast(done); await load(); }
    catch (err) { toast(err.message, true); }
  }

  async function load() {
    const users = (await api("/users")).items;
    fill(list, users.map((u) => {
      const password = h("input", { type: "password", placeholder: t("admin.users.new_password"),
                                    "aria-label": t("admin.users.new_password_for", { name: u.username }),
                                    autocomplete: "new-password" });
      return h("li", { dataset: { user: u.username } },
        h("div", { class: "title" }, u.username, " ", h("span", { class: "pill status" }, t(`admin.users.role.${u.role}`)),
          u.active ? null : h("span", { class: "pill offline" }, t("admin.users.disabled"))),
        h("div", { class: "meta" },
          u.customer_id ? t("admin.users.of_customer", { name: customerName.get(u.customer_id) || u.customer_id }) : "",
          u.staff_id ? t("admin.users.of_staff", { name: staffName.get(u.staff_id) || u.staff_id }) : "",
          [u.language, u.timezone].some(Boolean) ? ` · ${[u.language, u.timezone].filter(Boolean).join(" · ")}` : "",
          " · ", t("admin.users.last_sign_in", { time: u.last_login_at ? formatTime(u.last_login_at)
                                                                        : t("admin.users.never") })),
        h("div", { class: "actions" }, password,
          h("button", { class: "secondary", dataset: { reset: u.username }, onclick: () => {
            if (password.value) patch(u, { password: password.value }, t("admin.users.reset_done"));
          } }, t("admin.users.reset")),
          h("button", { class: u.active ? "danger" : "secondary", dataset: { toggle: u.username },
                        onclick: () => patch(u, { active: !u.active },
                                             u.active ? t("admin.users.disabled_done") : t("admin.users.enabled_done")) },
            u.active ? t("admin.users.disable") : t("admin.users.enable")),
          h("button", { class: "link", onclick: async () => {
            if (!confirm(t("admin.users.confirm_delete", { name: u.username }))) return;
            try { await api(`/users/${u.id}`, { method: "DELETE" }); toast(t("admin.deleted")); await load(); }
            catch (err) { toast(err.message, true); }
          } }, t("admin.delete"))));
    }));
    if (!users.length) list.append(h("li", {}, h("span", { class: "muted" }, t("admin.users.none"))));
  }

  await load();
}
