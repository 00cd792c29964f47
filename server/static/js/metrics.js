// The metric catalogue (names, labels, units, possible values, old names), served by the API from
// rules/metrics.py: the dashboard keeps no table of metric names of its own. Fetched once per page load.
import { api } from "./api.js";

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

// "CPU usage (cpu_percent, %)" for a known metric, the bare name for one of the agent's own.
export function describe(cat, name) {
  const m = cat.byName.get(name);
  if (!m) return name;
  return m.unit ? `${m.label} (${name}, ${m.unit})` : `${m.label} (${name})`;
}
