// Fleet health grid: one tile per device, coloured green / orange / red / offline.
import { api } from "../api.js";
import { ago, fill, h, num } from "../dom.js";
import { catalogue } from "../metrics.js";

const ORDER = { red: 0, orange: 1, offline: 2, unknown: 3, green: 4 };

async function loadAll() {
  const devices = [];
  let cursor = null;
  do {
    const page = await api("/devices", { query: { limit: 1000, cursor } });
    devices.push(...page.items);
    cursor = page.next;
  } while (cursor && devices.length < 20000);
  return devices;
}

export async function render(view) {
  let filter = "";
  const summary = h("div", { class: "summary" });
  const grid = h("div", { class: "grid", id: "fleet-grid" });
  const search = h("input", { type: "search", placeholder: "Filter by id, name or site", "aria-label": "Filter by device id" });
  view.append(h("h1", {}, "Fleet health"), h("div", { class: "toolbar" }, search), summary, grid);
  let devices = [];
  // A tile shows the metrics with a built-in threshold (CPU, memory, latency): "37 % CPU".
  const core = (await catalogue()).items.filter((m) => m.default_threshold !== null);

  function draw() {
    const text = search.value.trim().toLowerCase();
    const counts = { green: 0, orange: 0, red: 0, offline: 0, unknown: 0 };
    devices.forEach((d) => { counts[d.health] += 1; });
    fill(summary, 
      h("button", { class: filter ? "secondary" : "", onclick: () => { filter = ""; draw(); } }, `All ${devices.length}`),
      ...Object.entries(counts).filter(([, n]) => n).map(([health, n]) =>
        h("button", { class: filter === health ? "" : "secondary", dataset: { health },
                      onclick: () => { filter = filter === health ? "" : health; draw(); } }, `${health} ${n}`)),
    );
    const shown = devices
      .filter((d) => (!filter || d.health === filter) && (!text || [d.id, d.name, d.site]
        .some((v) => v && v.toLowerCase().includes(text))))
      .sort((a, b) => ORDER[a.health] - ORDER[b.health] || a.id.localeCompare(b.id));
    fill(grid, ...shown.map((d) => h("a", {
      class: `tile ${d.health}`, href: `#/devices/${encodeURIComponent(d.id)}`, dataset: { device: d.id, health: d.health },
      title: `${d.name ? `${d.name} (${d.id})` : d.id}: ${d.health}`,
    },
    h("div", { class: "id" }, d.name || d.id),
    d.name ? h("div", { class: "vals" }, d.id) : null,
    h("div", { class: "vals" }, d.health === "offline" ? `offline ${ago(d.offline_since || d.last_seen_at)}`
      : core.map((m) => d.latest && d.latest[m.name] !== undefined && d.latest[m.name] !== null
        ? `${num(d.latest[m.name], 0)} ${m.unit} ${m.short}` : null).filter(Boolean).join(" · ")),
    d.open_tickets ? h("div", { class: "vals" }, `${d.open_tickets} open ticket${d.open_tickets > 1 ? "s" : ""}`) : null,
    )));
    if (!shown.length) grid.append(h("p", { class: "muted" }, "No devices."));
  }

  search.addEventListener("input", draw);
  devices = await loadAll();
  draw();
  return async () => { devices = await loadAll(); draw(); };
}
