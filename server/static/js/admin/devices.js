// Devices: name, site, address, tags, the gateway they sit behind, customer, class, decommissioning;
// and the CSV import (checked whole first; every bad row listed with its line).
import { api } from "../api.js";
import { fill, h, toast } from "../dom.js";
import { changed, errorBox, field, tagsOf } from "./forms.js";

const COLUMNS = "id,name,customer,device_class,site,address,tags,parent_id";

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
  return { ok: response.ok, body: await response.json().catch(() => ({ detail: `HTTP ${response.status}` })) };
}

export async function render(root) {
  const form = h("section", { class: "card", id: "device-form", hidden: true });
  const search = h("input", { type: "search", placeholder: "Filter by id, name, site or tag", "aria-label": "Filter devices" });
  const list = h("ul", { class: "records", id: "device-list" });
  const report = h("div", { id: "import-report" });
  const file = h("input", { type: "file", accept: ".csv,text/csv", "aria-label": "CSV file" });
  const text = h("textarea", { rows: 5, id: "import-text", placeholder: `${COLUMNS}\ngw-0001,Pump house,Acme Water,gateway,North,"1 River Rd",fiber;north,`,
                               spellcheck: "false", "aria-label": "CSV text" });
  file.addEventListener("change", async () => { if (file.files[0]) text.value = await file.files[0].text(); });
  async function run(dryRun) {
    const { ok, body } = await upload(text.value, dryRun);
    if (!ok) {
      fill(report, h("p", { class: "error" }, body.detail),
        body.errors ? h("ul", { class: "import-errors" }, body.errors.map((e) =>
          h("li", { dataset: { line: e.line } }, `line ${e.line}${e.column ? `, ${e.column}` : ""}: ${e.reason}`))) : null);
      return;
    }
    fill(report, h("p", { class: dryRun ? "muted" : "" },
      `${dryRun ? "Checked, nothing stored: would create" : "Created"} ${body.created.length}, ` +
      `${dryRun ? "update" : "updated"} ${body.updated.length}, unchanged ${body.unchanged.length}.`));
    if (!dryRun) await load();
  }
  root.append(
    h("details", { class: "card", id: "device-import" }, h("summary", {}, h("strong", {}, "Import a CSV file")),
      h("p", { class: "muted" }, `Columns: ${COLUMNS} (customer by name, or customer_id). Tags are separated by ";". `,
        "An empty cell leaves a field as it is. One bad row and nothing is imported."),
      file, text,
      h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", id: "import-check", onclick: () => run(true) }, "Check"),
        h("button", { type: "button", id: "import-run", onclick: () => run(false) }, "Import")), report),
    h("div", { class: "toolbar" }, search), form, list);

  let devices = [];
  let customers = [];
  function draw() {
    const q = search.value.trim().toLowerCase();
    const shown = devices.filter((d) => !q || [d.id, d.name, d.site, ...(d.tags || [])].some((v) => v && v.toLowerCase().includes(q)));
    fill(list, shown.slice(0, 300).map((d) => h("li", { dataset: { device: d.id } },
      h("div", { class: "title" }, d.name || d.id, " ", d.name ? h("span", { class: "muted" }, d.id) : null, " ",
        d.decommissioned_at ? h("span", { class: "pill offline" }, "decommissioned") : null),
      h("div", { class: "meta" }, [d.customer_name, d.device_class, d.site, d.parent_id ? `behind ${d.parent_id}` : null,
                                   d.tags ? d.tags.join(", ") : null].filter(Boolean).join(" · ") || "—"),
      h("button", { class: "secondary", dataset: { edit: d.id }, onclick: () => edit(d) }, "Edit"))));
    if (shown.length > 300) list.append(h("li", {}, h("span", { class: "muted" }, `${shown.length - 300} more: filter to find them.`)));
    if (!shown.length) list.append(h("li", {}, h("span", { class: "muted" }, "No devices.")));
  }
  search.addEventListener("input", draw);

  async function edit(listed) {
    const d = await api(`/devices/${encodeURIComponent(listed.id)}`); // with its address, which lists leave out
    const f = {
      name: field("Name", { value: d.name }),
      site: field("Site", { value: d.site }),
      address: field("Address", { value: d.address }),
      tags: field("Tags", { value: (d.tags || []).join(", ") }),
      parent_id: field("Sits behind (device id)", { value: d.parent_id }),
      customer_id: field("Customer", { options: [["", "—"], ...customers.map((c) => [c.id, c.name])], value: d.customer_id ?? "" }),
      device_class: field("Class", { options: [["", "—"], ["gateway", "gateway"], ["router", "router"]], value: d.device_class || "" }),
      decommissioned: field("Decommissioned (no longer expected; history kept)", { type: "checkbox", value: Boolean(d.decommissioned_at) }),
    };
    const error = errorBox();
    fill(form, h("h2", {}, `Edit ${d.name || d.id}`, " ", h("span", { class: "muted" }, d.id)),
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
          toast("Saved");
          form.hidden = true;
          await load();
        } catch (err) { error.textContent = err.message; }
      } }, h("div", { class: "row" }, Object.values(f).map((x) => x.el)), error,
      h("div", { class: "actions" }, h("button", { type: "submit", id: "device-form-save" }, "Save"),
        h("button", { type: "button", class: "secondary", onclick: () => { form.hidden = true; } }, "Cancel"))));
    form.hidden = false;
    form.scrollIntoView({ block: "nearest" });
  }

  async function load() {
    [devices, customers] = await Promise.all([loadAll(), api("/customers").then((p) => p.items)]);
    draw();
  }
  await load();
}
