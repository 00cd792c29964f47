// User accounts (admins only): people signing in with a password; reset, disable, enable, delete.
import { api } from "../api.js";
import { ago, fill, h, toast } from "../dom.js";
import { errorBox, field } from "./forms.js";

const ROLES = [["engineer", "engineer"], ["supervisor", "supervisor"], ["admin", "admin"], ["customer", "customer"]];

export async function render(root) {
  const error = errorBox();
  const list = h("ul", { class: "records", id: "user-list" });
  const [customers, staff] = await Promise.all([api("/customers").then((p) => p.items), api("/staff").then((p) => p.items)]);
  const f = {
    username: field("User name", { required: true, placeholder: "wangfang" }),
    password: field("Password (10 characters or more)", { type: "password", required: true }),
    role: field("Role", { options: ROLES }),
    customer: field("Customer (customer users)", { options: [["", "—"], ...customers.map((c) => [c.id, c.name])] }),
    staff: field("Staff member (staff users)", { options: [["", "—"], ...staff.map((m) => [m.id, m.name])] }),
  };
  root.append(h("section", { class: "card", id: "user-form" }, h("h2", {}, "New user"),
    h("form", { onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = "";
      const body = { username: f.username.get(), password: f.password.input.value, role: f.role.get() };
      if (f.customer.get()) body.customer_id = Number(f.customer.get());
      if (f.staff.get()) body.staff_id = Number(f.staff.get());
      try {
        await api("/users", { method: "POST", body });
        toast("User created");
        f.username.set(""); f.password.set("");
        await load();
      } catch (err) { error.textContent = err.message; }
    } }, h("div", { class: "row" }, Object.values(f).map((x) => x.el)), error,
    h("button", { type: "submit", id: "user-save" }, "Create user"))), list);

  const customerName = new Map(customers.map((c) => [c.id, c.name]));
  const staffName = new Map(staff.map((m) => [m.id, m.name]));

  async function patch(u, body, done) {
    try { await api(`/users/${u.id}`, { method: "PATCH", body }); toast(done); await load(); }
    catch (err) { toast(err.message, true); }
  }

  async function load() {
    const users = (await api("/users")).items;
    fill(list, users.map((u) => {
      const password = h("input", { type: "password", placeholder: "new password", "aria-label": `New password for ${u.username}`,
                                    autocomplete: "new-password" });
      return h("li", { dataset: { user: u.username } },
        h("div", { class: "title" }, u.username, " ", h("span", { class: "pill status" }, u.role),
          u.active ? null : h("span", { class: "pill offline" }, "disabled")),
        h("div", { class: "meta" },
          u.customer_id ? `customer ${customerName.get(u.customer_id) || u.customer_id}` : "",
          u.staff_id ? `staff ${staffName.get(u.staff_id) || u.staff_id}` : "",
          ` · last sign-in ${ago(u.last_login_at)}`),
        h("div", { class: "actions" }, password,
          h("button", { class: "secondary", dataset: { reset: u.username }, onclick: () => {
            if (password.value) patch(u, { password: password.value }, "Password reset; their sessions ended");
          } }, "Reset password"),
          h("button", { class: u.active ? "danger" : "secondary", dataset: { toggle: u.username },
                        onclick: () => patch(u, { active: !u.active }, u.active ? "Disabled" : "Enabled") },
            u.active ? "Disable" : "Enable"),
          h("button", { class: "link", onclick: async () => {
            if (!confirm(`Delete the user ${u.username}?`)) return;
            try { await api(`/users/${u.id}`, { method: "DELETE" }); toast("Deleted"); await load(); }
            catch (err) { toast(err.message, true); }
          } }, "Delete")));
    }));
    if (!users.length) list.append(h("li", {}, h("span", { class: "muted" }, "No users yet: people sign in with API tokens.")));
  }

  await load();
}
