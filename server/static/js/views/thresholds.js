// The threshold editor: threshold and red level per metric, as default and per device class, the rule
// counts, and the raw document. Read-only when the thresholds come from a file (the API says where).
import { api } from "../api.js";
import { fill, h, toast, when } from "../dom.js";
import { formatNumber, t } from "../i18n.js";
import { catalogue, metricName } from "../metrics.js";

const CLASSES = ["gateway", "router"];
const RULE_KEYS = ["orange_count", "clear_count", "red_factor"];
// i18n-keys: thresholds.rule.orange_count thresholds.rule.clear_count thresholds.rule.red_factor

function fieldOf(entry, field) {
  if (entry === undefined || entry === null) return "";
  if (typeof entry === "object") return entry[field] ?? "";
  return field === "threshold" ? entry : "";
}

// Set (or with empty text, remove) `threshold` or `red` of a metric in a table, keeping its other keys.
function setField(table, metric, field, text) {
  const value = text.trim() === "" ? null : Number(text);
  let entry = table[metric];
  if (entry !== undefined && entry !== null && typeof entry !== "object") entry = { threshold: entry };
  entry = { ...(entry || {}) };
  if (value === null) delete entry[field]; else entry[field] = value;
  const keys = Object.keys(entry);
  if (!keys.length) delete table[metric];
  else if (keys.length === 1 && keys[0] === "threshold") table[metric] = entry.threshold;
  else table[metric] = entry;
}

// Old metric names in the document are shown, and saved, under their canonical names.
function canonicalise(doc, aliases) {
  const tables = [doc.metrics, ...Object.values(doc.classes || {}), ...Object.values(doc.devices || {})];
  for (const table of tables) {
    if (!table || typeof table !== "object") continue;
    for (const [old, name] of aliases) {
      if (old in table && !(name in table)) { table[name] = table[old]; delete table[old]; }
    }
  }
  return doc;
}

export async function render(view, _params, ctx) {
  const mayEdit = ["admin", "supervisor"].includes(ctx.me.role);
  const status = h("p", { class: "muted", id: "thresholds-version" });
  const source = h("p", { id: "thresholds-source" });
  const error = h("p", { class: "error", id: "thresholds-error", role: "alert" });
  const form = h("div", { class: "card" });
  const raw = h("textarea", { rows: 12, "aria-label": t("thresholds.document"), spellcheck: "false" });
  const preview = h("p", { id: "thresholds-preview", class: "notice", "aria-live": "polite" });
  view.append(h("h1", {}, t("thresholds.title")), source, status, form,
    h("section", { class: "card" }, h("h2", {}, t("thresholds.whole")),
      h("p", { class: "muted" }, t("thresholds.whole_hint")),
      raw), error);
  const cat = await catalogue();
  let doc = {};
  let version = 0;
  let canEdit = false;

  // After each change: how many devices these values would put in alert, against those in force now.
  let previewing = 0;
  async function showPreview() {
    const asked = ++previewing;
    try {
      const p = await api("/thresholds/preview", { method: "POST", body: { document: doc } });
      if (asked !== previewing || ctx.stale()) return;
      preview.className = "notice";
      preview.textContent = t("thresholds.preview", {
        orange: formatNumber(p.proposed.orange, 0), red: formatNumber(p.proposed.red, 0),
        now_orange: formatNumber(p.current.orange, 0), now_red: formatNumber(p.current.red, 0),
        devices: formatNumber(p.proposed.devices, 0) });
    } catch (e) {
      if (asked !== previewing) return;
      preview.className = "error";
      preview.textContent = e.message;
    }
  }
  let waiting = 0;
  const sync = () => {
    raw.value = JSON.stringify(doc, null, 2);
    clearTimeout(waiting);
    waiting = setTimeout(showPreview, 300);
  };

  function input(value, onchange, label, placeholder) {
    return h("input", { type: "number", step: "any", min: "0", value, placeholder, "aria-label": label,
      disabled: !canEdit, onchange: (e) => { onchange(e.target.value); sync(); } });
  }

  // One cell: the threshold and, under it, the red level; placeholders show what applies when empty.
  function cell(table, m, label, inForce, origin, redFactor, onchange) {
    const threshold = fieldOf(table[m], "threshold");
    const applies = threshold === "" ? inForce : threshold;
    const redHint = applies === "" || applies === undefined ? t("thresholds.red_level")
      : `${+(applies * redFactor).toPrecision(6)} (${redFactor} ×)`;
    return h("td", { class: "pair" },
      input(threshold, (v) => onchange("threshold", v), label, inForce === "" ? "" : `${inForce} (${origin})`),
      input(fieldOf(table[m], "red"), (v) => onchange("red", v), `${label} red`, redHint));
  }

  function edit(path, m, field, v) {
    let table = doc;
    for (const key of path) { table[key] = table[key] || {}; table = table[key]; }
    setField(table, m, field, v);
    // drop emptied tables on the way back up
    for (let i = path.length; i > 0; i--) {
      let parent = doc;
      for (const key of path.slice(0, i - 1)) parent = parent[key];
      if (!Object.keys(parent[path[i - 1]]).length) delete parent[path[i - 1]];
    }
  }

  function setRule(key, v) {
    doc.rules = doc.rules || {};
    if (v === "") delete doc.rules[key]; else doc.rules[key] = Number(v);
    if (!Object.keys(doc.rules).length) delete doc.rules;
    sync();
  }

  function draw() {
    const metrics = doc.metrics || {}, classes = doc.classes || {}, rules = doc.rules || {};
    const redFactor = Number(rules.red_factor ?? cat.redFactor);
    const custom = Object.keys(metrics).filter((m) => !cat.byName.has(m));
    const rows = [...cat.items.map((m) => m.name), ...custom].map((m) => {
      const info = cat.byName.get(m);
      const builtIn = info && info.default_threshold !== null ? info.default_threshold : "";
      const inForce = fieldOf(metrics[m], "threshold") === "" ? builtIn : fieldOf(metrics[m], "threshold");
      return h("tr", { dataset: { metric: m } },
        h("td", {}, info ? h("span", {}, metricName(cat, m), " ", h("code", {}, m), info.unit ? ` (${info.unit})` : "") : h("code", {}, m)),
        cell(metrics, m, `${m} default`, builtIn, t("thresholds.built_in"), redFactor, (field, v) => edit(["metrics"], m, field, v)),
        CLASSES.map((c) => cell(classes[c] || {}, m, `${m} ${c}`, inForce, t("thresholds.default"), redFactor,
                                (field, v) => edit(["classes", c], m, field, v))));
    });
    fill(form, h("h2", {}, t("thresholds.per_metric")), h("div", { class: "scroll" }, h("table", { id: "thresholds-table" },
      h("thead", {}, h("tr", {}, h("th", {}, t("thresholds.metric")), h("th", {}, t("thresholds.default_column")),
        CLASSES.map((c) => h("th", {}, t("thresholds.class_column", { cls: t(`device.class.${c}`) }))))),
      h("tbody", {}, rows))),
      h("p", { class: "muted" }, t("thresholds.hint", { count: rules.orange_count ?? 3, factor: redFactor })),
      h("h2", {}, t("thresholds.rules")),
      h("div", { class: "row" }, RULE_KEYS.map((key) => h("div", {},
        h("label", {}, t(`thresholds.rule.${key}`)),
        h("input", { type: "number", step: "any", min: "1", "aria-label": key, value: rules[key] ?? "",
                     placeholder: key === "red_factor" ? String(cat.redFactor) : "3",
                     disabled: !canEdit, onchange: (e) => setRule(key, e.target.value) })))),
      preview,
      canEdit ? h("button", { id: "thresholds-save", onclick: save }, t("thresholds.save")) : null);
    sync();
  }

  async function load() {
    const answer = await api("/thresholds");
    doc = canonicalise(answer.document, cat.aliases);
    version = answer.version;
    const fromFile = answer.source.kind === "file";
    canEdit = mayEdit && !fromFile;
    raw.readOnly = !canEdit;
    if (fromFile) {
      fill(source, h("strong", {}, t("thresholds.file", { path: answer.source.path })), " ", t("thresholds.file_hint"));
      source.className = "notice";
      status.textContent = t("thresholds.file_changed", { at: when(answer.updated_at) });
      error.textContent = answer.error ? t("thresholds.file_error", { error: answer.error }) : "";
    } else {
      fill(source);
      source.className = "";
      status.textContent = version ? t("thresholds.version", { version, at: when(answer.updated_at), who: answer.updated_by })
                                   : t("thresholds.built_in_defaults");
    }
    draw();
  }

  async function save() {
    error.textContent = "";
    try { doc = JSON.parse(raw.value || "{}"); } catch (e) { error.textContent = t("thresholds.bad_json", { error: e.message }); return; }
    try {
      await api("/thresholds", { method: "PUT", body: { document: doc, version } });
      toast(t("thresholds.saved"));
      await load();
    } catch (e) {
      error.textContent = e.message;
    }
  }

  await load();
  return null;
}
