// Maintenance windows: listed for staff (running now, alerts held), created and deleted by admins and
// supervisors. While a window runs, its devices' alerts are recorded but open no ticket (docs/noise.md).
import { api } from "../api.js";
import { fill, h, toast } from "../dom.js";
import { formatTime, t } from "../i18n.js";

// i18n-keys: maintenance.col.name maintenance.col.starts maintenance.col.ends maintenance.col.timezone
// i18n-keys: maintenance.col.recurrence maintenance.col.scope maintenance.col.state maintenance.col.held
// i18n-keys: maintenance.field.name maintenance.field.starts_at maintenance.field.ends_at maintenance.field.timezone
// i18n-keys: maintenance.field.recurrence maintenance.field.device_ids maintenance.field.tags maintenance.field.sites
// i18n-keys: maintenance.field.device_classes maintenance.field.customer_id maintenance.scope.device_ids
// i18n-keys: maintenance.scope.tags maintenance.scope.sites maintenance.scope.device_classes
// i18n-keys: maintenance.scope.customer_id maintenance.related.parent maintenance.related.incident
// i18n-keys: maintenance.related.window

function list(text) {
  return text.split(",").map((s) => s.trim()).filter(Boolean);
}

function scopeText(scope) {
  const parts = [];
  for (const key of ["device_ids", "tags", "sites", "device_classes"]) {
    if (scope[key] && scope[key].length) parts.push(`${t(`maintenance.scope.${key}`)}: ${scope[key].join(", ")}`);
  }
  if (scope.customer_id !== null && scope.customer_id !== undefined) {
    parts.push(`${t("maintenance.scope.customer_id")}: ${scope.customer_id}`);
  }
  return parts.join("; ");
}

// On a ticket: the devices whose alerts it carries (behind its failed device, or in its mass event).
export function relatedDevices(ticket) {
  const rows = ticket.related_devices || [];
  if (!rows.length) return null;
  return h("section", { class: "card", id: "related-devices" },
    h("h2", {}, t("maintenance.related.title", { count: rows.length })),
    h("div", { class: "scroll" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, t("maintenance.related.device")), h("th", {}, t("maintenance.related.alert")),
        h("th", {}, t("maintenance.related.reason")), h("th", {}, t("maintenance.related.since")))),
      h("tbody", {}, ...rows.map((r) => h("tr", {},
        h("td", {}, h("a", { href: `#/devices/${encodeURIComponent(r.device_id)}` }, r.device_id)),
        h("td", {}, r.alert), h("td", {}, t(`maintenance.related.${r.reason}`)), h("td", {}, formatTime(r.since))))))));
}

export async function render(view, _params, ctx) {
  const mayEdit = ["admin", "supervisor"].includes(ctx.me.role);
  const table = h("tbody");
  view.append(h("h1", {}, t("maintenance.title")), h("p", { class: "muted" }, t("maintenance.intro")),
    h("div", { class: "scroll" }, h("table", { id: "maintenance-table" },
      h("thead", {}, h("tr", {}, ...["name", "starts", "ends", "timezone", "recurrence", "scope", "state", "held", ""]
        .map((k) => h("th", {}, k ? t(`maintenance.col.${k}`) : "")))),
      table)));

  async function refresh() {
    const page = await api("/maintenance-windows");
    fill(table, ...page.items.map((w) => h("tr", {},
      h("td", {}, w.name), h("td", {}, formatTime(w.starts_at)), h("td", {}, formatTime(w.ends_at)),
      h("td", {}, w.timezone), h("td", {}, w.recurrence || t("maintenance.once")), h("td", {}, scopeText(w.scope)),
      h("td", {}, w.active_now ? t("maintenance.running", { end: formatTime(w.current_end) }) : t("maintenance.idle")),
      h("td", {}, String(w.held_alerts)),
      h("td", {}, mayEdit ? h("button", { type: "button", class: "danger", onclick: async () => {
        if (!confirm(t("maintenance.delete.confirm", { name: w.name }))) return;
        try { await api(`/maintenance-windows/${w.id}`, { method: "DELETE" }); await refresh(); }
        catch (error) { toast(error.message, true); }
      } }, t("maintenance.delete")) : ""))));
  }

  if (mayEdit) {
    const field = (key, attrs = {}) => h("label", {}, t(`maintenance.field.${key}`), h("input", { name: key, ...attrs }));
    const form = h("form", { class: "card", id: "maintenance-form" },
      h("h2", {}, t("maintenance.new")),
      field("name", { required: true }), field("starts_at", { type: "datetime-local", required: true }),
      field("ends_at", { type: "datetime-local", required: true }),
      field("timezone", { value: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC" }),
      field("recurrence", { placeholder: "FREQ=WEEKLY;BYDAY=SA" }),
      field("device_ids"), field("tags"), field("sites"), field("device_classes"),
      field("customer_id", { type: "number", min: "1" }),
      h("button", { type: "submit" }, t("maintenance.create")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const v = (k) => form.elements[k].value;
      const body = {
        name: v("name"), starts_at: v("starts_at"), ends_at: v("ends_at"), timezone: v("timezone") || "UTC",
        recurrence: v("recurrence") || null,
        scope: { device_ids: list(v("device_ids")), tags: list(v("tags")), sites: list(v("sites")),
          device_classes: list(v("device_classes")), customer_id: v("customer_id") ? Number(v("customer_id")) : null },
      };
      try {
        await api("/maintenance-windows", { method: "POST", body });
        toast(t("maintenance.created"));
        form.reset();
        await refresh();
      } catch (error) { toast(error.message, true); }
    });
    view.append(form);
  }
  await refresh();
  return refresh;
}
