// The metric catalogue (names, labels, units, possible values, old names), served by the API from
// rules/metrics.py: the dashboard keeps no table of metric names of its own. Fetched once per page load.
import { api } from "./api.js";
import { formatNumber, t } from "./i18n.js";

let loading = null;

export async function catalogue() {
  if (!loading) {
    loading = api("/metrics-catalog").then((c) => {
      const byName = new Map(c.items.map((m) => [m.name, m]));
      const aliases = new Map(c.items.flatMap((m) => m.aliases.map((old) => [old, m.name])));
      return { items: c.items, byName, aliases, redFactor: c.red_factor };
    }).catch((e) => { loading = null; throw e; });
  }
  return loading;
}

// A metric's name in words, in the person's language (the catalogue's English label as a fallback,
// the bare name for one of the agent's own). Keys: metric.<name> in i18n/terms.json.
export function metricName(cat, name) {
  const key = "metric." + name;
  const text = t(key);
  if (text !== key) return text;
  const m = cat && cat.byName.get(name);
  return m ? m.label : name;
}

// The short name for a tight space ("CPU", "内存"), else the full one.
export function metricShort(cat, name) {
  const key = "metric.short." + name;
  const text = t(key);
  return text !== key ? text : metricName(cat, name);
}

export function unitOf(cat, name) {
  const m = cat && cat.byName.get(name);
  return m ? m.unit : "";
}

// "CPU usage %" as a heading: the name in words with its unit.
export function describe(cat, name) {
  const unit = unitOf(cat, name);
  return unit ? `${metricName(cat, name)} (${unit})` : metricName(cat, name);
}

// "37 %" / "12.5 ms": a value with its unit.
export function withUnit(cat, name, value, digits = 0) {
  if (value === null || value === undefined) return "—";
  const unit = unitOf(cat, name);
  return unit ? `${formatNumber(value, digits)} ${unit}` : formatNumber(value, digits);
}
