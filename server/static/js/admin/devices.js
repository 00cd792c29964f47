// Devices: name, site, address, tags, the gateway they sit behind, customer, class, decommissioning;
// and the CSV import (checked whole first; every bad row listed with its line).
import { api } from "../api.js";
import { fill, h, toast } from "../dom.js";
import { t } from "../i18n.js";
import { changed, errorBox, field, tagsOf } from "./forms.js";

const COLUMNS = "id,name,customer,device_class,site,address,tags,parent_id";

// i18n-keys: admin.devices.class.gateway admin.devices.class.router
function classLabel(name) {
  return ["gateway", "router"].includes(name) ? t(`admin.devices.class.${name}`) : name;
}

async function loadAll() {
  const devices = [];
  let cursor = null;
  do {
    const page = await api("/devices", { query: { limit: 1000, cursor, include_decommissioned: "true" } });
    devices.push(...page.items);
    cursor = page.next;
  } while (cursor && devices.length < 20000);
  return devices;
}

async function upload(text, dryRun) {
  const csrf = document.cookie.split("; ").find((c) => c.startsWith("ew_csrf="));
  const response = await fetch(`api/v1/devices/import${dryRun ? "?dry_run=true" : ""}`, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "text/csv", Accept: "application/json",
               "X-CSRF-Token": csrf ? decodeURIComponent(csrf.slice(8)) : "" },
    body: text,
  });
  return { ok: response.ok,
           body: await response.json().catch(() => ({ detail: t("api.http_error", { status: response.status }) })) };
}

export async function render(root) {
  const form = h("section", { class: "card", id: "device-form", hidden: true });
  const search = h("input", { type: "search", placeholder: t("admin.devices.filter"),
                              "aria-label": t("admin.devices.filter_label") });
  const list = h("ul", { class: "records", id: "device-list" });
  const report = h("div", { id: "import-report" });
  const file = h("input", { type: "file", accept: ".csv,text/csv", "aria-label": t("admin.devices.csv_file") });
  const text = h("textarea", { rows: 5, id: "import-text", placeholder: `${COLUMNS}\ngw-0001,Pump house,Acme Water,gateway,North,"1 River Rd",fiber;north,`,
                               spellcheck: "false", "aria-label": t("admin.devices.csv_text") });
  file.addEventListener("change", async () => { if (file.files[0]) text.value = await file.files[0].text(); });
  async function run(dryRun) {
    const { ok, body } = await upload(text.value, dryRun);
    if (!ok) {
      fill(report, h("p", { class: "error" }, body.detail),
        body.errors ? h("ul", { class: "import-errors" }, body.errors.map((e) =>
          h("li", { dataset: { line: e.line } }, e.column
            ? t("admin.devices.row_error_column", { line: e.line, column: e.column, reason: e.reason })
            : t("admin.devices.row_error", { line: e.line, reason: e.reason })))) : null);
      return;
    }
    const counts = { created: body.created.length, updated: body.updated.length, unchanged: body.unchanged.length };
    fill(report, h("p", { class: dryRun ? "muted" : "" },
      t(dryRun ? "admin.devices.checked" : "admin.devices.imported", counts)));
    if (!dryRun) await load();
  }
  root.append(
    h("details", { class: "card", id: "device-import" }, h("summary", {}, h("strong", {}, t("admin.devices.import_title"))),
      h("p", { class: "muted" }, t("admin.devices.import_help", { columns: COLUMNS })),
      file, text,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", id: "import-check", onclick: () => run(true) },
          t("admin.devices.check")),
        h("button", { type: "button", id: "import-run", onclick: () => run(false) }, t("admin.devices.import"))),
      report),
    h("div", { class: "toolbar" }, search), form, list);

  let devices = [];
  let customers = [];
  function draw() {
    const q = search.value.trim().toLowerCase();
    const shown = devices.filter((d) => !q || [d.id, d.name, d.site, ...(d.tags || [])].some((v) => v && v.toLowerCase().includes(q)));
    fill(list, shown.slice(0, 300).map((d) => h("li", { dataset: { device: d.id } },
      h("div", { class: "title" }, d.name || d.id, " ", d.name ? h("span", { class: "muted" }, d.id) : null, " ",
        d.decommissioned_at ? h("span", { class: "pill offline" }, t("admin.devices.decommissioned")) : null),
      h("div", { class: "meta" }, [d.customer_name, d.device_class ? classLabel(d.device_class) : null,
                                   d.site, d.parent_id ? t("admin.devices.behind", { parent: d.parent_id }) : null,
                                   d.tags ? d.tags.join(", ") : null].filter(Boolean).join(" · ") || "—"),
      h("button", { class: "secondary", dataset: { edit: d.id }, onclick: () => edit(d) }, t("admin.edit")))));
    if (shown.length > 300) {
      list.append(h("li", {}, h("span", { class: "muted" }, t("admin.devices.more", { count: shown.length - 300 }))));
    }
    if (!shown.length) list.append(h("li", {}, h("span", { class: "muted" }, t("admin.devices.none"))));
  }
  search.addEventListener("input", draw);

  async function edit(listed) {
    const d = await api(`/devices/${encodeURIComponent(listed.id)}`); // with its address, which lists leave out
    const f = {
      name: field(t("admin.field.name"), { value: d.name }),
      site: field(t("admin.devices.site"), { value: d.site }),
      address: field(t("admin.field.address"), { value: d.address }),
      tags: field(t("admin.devices.tags"), { value: (d.tags || []).join(", ") }),
      parent_id: field(t("admin.devices.parent"), { value: d.parent_id }),
      customer_id: field(t("admin.devices.customer"), { options: [["", "—"], ...customers.map((c) => [c.id, c.name])],
                                                         value: d.customer_id ?? "" }),
      device_class: field(t("admin.devices.class"), {
        options: [["", "—"], ["gateway", t("admin.devices.class.gateway")], ["router", t("admin.devices.class.router")]],
        value: d.device_class || "" }),
      decommissioned: field(t("admin.devices.decommission"), { type: "checkbox", value: Boolean(d.decommissioned_at) }),
    };
    const error = errorBox();
    fill(form, h("h2", {}, t("admin.edit_title", { name: d.name || d.id }), " ", h("span", { class: "muted" }, d.id)),
      h("form", { onsubmit: async (e) => {
        e.preventDefault();
        error.textContent = "";
        const body = { name: f.name.get(), site: f.site.get(), address: f.address.get(), tags: tagsOf(f.tags.get()),
                       parent_id: f.parent_id.get(),
                       customer_id: f.customer_id.get() === null ? null : Number(f.customer_id.get()),
                       device_class: f.device_class.get() };
        const patch = changed(body, d);
        if (f.decommissioned.get() !== Boolean(d.decommissioned_at)) patch.decommissioned = f.decommissioned.get();
        try {
          await api(`/devices/${encodeURIComponent(d.id)}`, { method: "PUT", body: patch });
          toast(t("admin.saved"));
          form.hidden = true;
          await load();
        } catch (err) { error.textContent = err.message; }
      } }, h("div", { class: "row" }, Object.values(f).map((x) => x.el)), error,
      h("div", { class: "actions" }, h("button", { type: "submit", id: "device-form-save" }, t("admin.save")),
        h("button", { type: "button", class: "secondary", onclick: () => { form.hidden = true; } }, t("admin.cancel")))));
    form.hidden = false;
    form.scrollIntoView({ block: "nearest" });
  }

  async function load() {
    [devices, customers] = await Promise.all([loadAll(), api("/customers").then((p) => p.items)]);
    draw();
  }
  await load();
}
