// Administration (admins and supervisors): staff, groups and on-call rotas, user accounts (admins),
// customers and contacts, devices and their CSV import. One tab per area: #/admin/<area>.
import { fill, h } from "../dom.js";
import { t } from "../i18n.js";
import * as customers from "../admin/customers.js";
import * as devices from "../admin/devices.js";
import * as groups from "../admin/groups.js";
import * as staff from "../admin/staff.js";
import * as users from "../admin/users.js";

// i18n-keys: admin.tab.staff admin.tab.groups admin.tab.users admin.tab.customers admin.tab.devices
const AREAS = [["staff", staff], ["groups", groups], ["users", users], ["customers", customers], ["devices", devices]];

export async function render(view, [area], ctx) {
  const managers = ["admin", "supervisor"].includes(ctx.me.role);
  if (!managers) {
    view.append(h("p", { class: "error" }, t("admin.managers_only")));
    return null;
  }
  const shown = AREAS.filter(([key]) => key !== "users" || ctx.me.role === "admin");
  const current = shown.find(([key]) => key === area) || shown[0];
  const body = h("div", { id: `admin-${current[0]}` });
  view.append(h("h1", {}, t("admin.title")),
    h("nav", { class: "tabs", "aria-label": t("admin.title") }, shown.map(([key]) =>
      h("a", { href: `#/admin/${key}`, class: key === current[0] ? "active" : "", dataset: { area: key } },
        t(`admin.tab.${key}`)))),
    body);
  fill(body);
  await current[1].render(body, ctx);
  return null; // no polling: it would wipe what is being typed
}
