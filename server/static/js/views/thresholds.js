// The threshold editor: defaults and class overrides per metric, rule counts, and the raw document.
import { api } from "../api.js";
import { fill, h, toast, when } from "../dom.js";

const METRICS = ["cpu_percent", "mem_percent", "latency_ms"];
const DEFAULTS = { cpu_percent: 60, mem_percent: 60, latency_ms: 200 };
const CLASSES = ["gateway", "router"];
const RULES = { orange_count: "3", clear_count: "3", red_factor: "1.5" };

function thresholdOf(entry) {
  if (entry === undefined || entry === null) return "";
  return typeof entry === "object" ? entry.threshold ?? "" : entry;
}

function setThreshold(table, metric, text) {
  const value = text.trim() === "" ? null : Number(text);
  const old = table[metric];
  if (value === null) {
    if (old && typeof old === "object") { delete old.threshold; if (!Object.keys(old).length) delete table[metric]; }
    else delete table[metric];
  } else if (old && typeof old === "object") old.threshold = value;
  else table[metric] = value;
}

export async function render(view, _params, ctx) {
  const canEdit = ["admin", "supervisor"].includes(ctx.me.role);
  const status = h("p", { class: "muted", id: "thresholds-version" });
  const error = h("p", { class: "error", id: "thresholds-error", role: "alert" });
  const form = h("div", { class: "card" });
  const raw = h("textarea", { rows: 12, "aria-label": "Thresholds document (JSON)", spellcheck: "false" });
  view.append(h("h1", {}, "Thresholds"), status, form,
    h("section", { class: "card" }, h("h2", {}, "Whole document (JSON)"),
      h("p", { class: "muted" }, "Rules, custom metrics, clear levels and per-device tables: the layout of a thresholds TOML file."),
      raw), error);
  let doc = {};
  let version = 0;

  const sync = () => { raw.value = JSON.stringify(doc, null, 2); };

  // The placeholder shows what applies when the cell is empty: the built-in or the metric's default.
  function cell(value, onchange, label, placeholder) {
    return h("td", {}, h("input", { type: "number", step: "any", min: "0", value, placeholder, "aria-label": label,
      disabled: !canEdit, onchange: (e) => { onchange(e.target.value); sync(); } }));
  }

  function setClass(c, m, v) {
    doc.classes = doc.classes || {};
    doc.classes[c] = doc.classes[c] || {};
    setThreshold(doc.classes[c], m, v);
    if (!Object.keys(doc.classes[c]).length) delete doc.classes[c];
    if (!Object.keys(doc.classes).length) delete doc.classes;
  }

  function setDefault(m, v) {
    doc.metrics = doc.metrics || {};
    setThreshold(doc.metrics, m, v);
    if (!Object.keys(doc.metrics).length) delete doc.metrics;
  }

  function setRule(key, v) {
    doc.rules = doc.rules || {};
    if (v === "") delete doc.rules[key]; else doc.rules[key] = Number(v);
    if (!Object.keys(doc.rules).length) delete doc.rules;
    sync();
  }

  function draw() {
    const metrics = doc.metrics || {}, classes = doc.classes || {}, rules = doc.rules || {};
    const rows = METRICS.map((m) => {
      const inForce = thresholdOf(metrics[m]) || DEFAULTS[m];
      return h("tr", {}, h("td", {}, m),
        cell(thresholdOf(metrics[m]), (v) => setDefault(m, v), `${m} default`, `${DEFAULTS[m]} (built-in)`),
        CLASSES.map((c) => cell(thresholdOf((classes[c] || {})[m]), (v) => setClass(c, m, v), `${m} ${c}`,
                                `${inForce} (default)`)));
    });
    fill(form, h("h2", {}, "Per metric"), h("div", { class: "scroll" }, h("table", { id: "thresholds-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "Metric"), h("th", {}, "Default"), CLASSES.map((c) => h("th", {}, c)))),
      h("tbody", {}, rows))),
      h("p", { class: "muted" }, `An empty default is the built-in one (${METRICS.map((m) => `${m} ${DEFAULTS[m]}`).join(", ")}); ` +
        "red is raised above red factor × threshold."),
      h("h2", {}, "Rules"),
      h("div", { class: "row" }, Object.entries(RULES).map(([key, placeholder]) => h("div", {},
        h("label", {}, key.replace("_", " ")),
        h("input", { type: "number", step: "any", min: "1", "aria-label": key, value: rules[key] ?? "", placeholder,
                     disabled: !canEdit, onchange: (e) => setRule(key, e.target.value) })))),
      canEdit ? h("button", { id: "thresholds-save", onclick: save }, "Save and apply") : null);
    sync();
  }

  async function load() {
    const t = await api("/thresholds");
    doc = t.document;
    version = t.version;
    status.textContent = version ? `Version ${version}, saved ${when(t.updated_at)} by ${t.updated_by}`
                                 : "Built-in defaults (never saved)";
    draw();
  }

  async function save() {
    error.textContent = "";
    try { doc = JSON.parse(raw.value || "{}"); } catch (e) { error.textContent = `The document is not valid JSON: ${e.message}`; return; }
    try {
      await api("/thresholds", { method: "PUT", body: { document: doc, version } });
      toast("Saved; running collectors apply it within seconds");
      await load();
    } catch (e) {
      error.textContent = e.message;
    }
  }

  raw.readOnly = !canEdit;
  await load();
  return null;
}
