// The fleet at any size: counts per health, problems first, search, "problems only", groups by
// customer and site. The server filters, sorts and pages (GET /devices?page=); this view draws only
// the rows on screen (a fixed row height tells which those are) and fetches their pages as they come
// into view. Changes arrive as live events: rows on screen are patched, a health change reorders.
import { api } from "../api.js";
import { ago, fill, h, healthName } from "../dom.js";
import { formatNumber, t } from "../i18n.js";
import { subscribe } from "../live.js";
import { catalogue, metricShort, withUnit } from "../metrics.js";

export const HEALTHS = ["red", "orange", "offline", "unknown", "green"];
const PROBLEMS = ["red", "orange", "offline"];
const CORE = ["cpu_percent", "mem_percent", "latency_ms"];
export const ROW = 60; // px; .vlist .tile in app.css has this height
const PER_PAGE = 100;
const OVERSCAN = 8;

export function deviceRow(d, cat, top) {
  const values = d.health === "offline"
    ? t("fleet.offline_since", { ago: ago(d.offline_since || d.last_seen_at) })
    : CORE.filter((m) => d.latest && d.latest[m] !== undefined && d.latest[m] !== null)
      .map((m) => `${metricShort(cat, m)} ${withUnit(cat, m, d.latest[m])}`).join(" · ");
  const where = [d.customer_name, d.site].filter(Boolean).join(" · ");
  return h("a", {
    class: `tile ${d.health}`, href: `#/devices/${encodeURIComponent(d.id)}`, role: "listitem",
    dataset: { device: d.id, health: d.health }, style: top === undefined ? null : `top:${top}px`,
    title: `${d.name ? `${d.name} (${d.id})` : d.id}: ${healthName(d.health)}`,
  },
  h("span", { class: `pill ${d.health}` }, healthName(d.health)),
  h("span", { class: "name" }, h("span", { class: "id" }, d.name || d.id), d.name ? h("small", {}, ` ${d.id}`) : null),
  h("span", { class: "where" }, where || t("fleet.no_customer")),
  h("span", { class: "vals" }, values),
  h("span", { class: "tickets" }, d.open_tickets ? t("fleet.open_tickets", { n: d.open_tickets }) : ""));
}

// Filters as the URL gives them: #/fleet?health=red&health=offline&q=...&customer_id=..&site=..
function fromHash(text) {
  const params = new URLSearchParams(text || "");
  return { health: params.getAll("health").filter((x) => HEALTHS.includes(x)), q: params.get("q") || "",
           customer_id: params.get("customer_id") || "", site: params.get("site") || "",
           tag: params.get("tag") || "", sort: params.get("sort") || "health" };
}

export async function render(view, params, ctx) {
  const filters = fromHash(params[0]);
  const summary = h("div", { class: "summary", id: "fleet-counts" });
  const search = h("input", { type: "search", placeholder: t("fleet.search"), "aria-label": t("fleet.search"),
                              value: filters.q });
  const sort = h("select", { "aria-label": t("fleet.sort") },
    h("option", { value: "health" }, t("fleet.sort.health")), h("option", { value: "group" }, t("fleet.sort.group")),
    h("option", { value: "id" }, t("fleet.sort.id")));
  sort.value = filters.sort;
  const chips = h("div", { class: "chips" });
  const groupsBox = h("div", { class: "scroll" });
  const groups = h("details", { class: "card groups", id: "fleet-groups" },
    h("summary", {}, t("fleet.groups")), groupsBox);
  const status = h("p", { class: "muted", id: "fleet-status", "aria-live": "polite" });
  const rows = h("div", { class: "vrows" });
  const list = h("div", { class: "vlist", id: "fleet-grid", role: "list", tabindex: "0", "aria-label": t("fleet.title") },
    rows);
  view.append(h("h1", {}, t("fleet.title")), summary, h("div", { class: "toolbar" }, search, sort, chips), groups,
    status, list);

  const cat = await catalogue();
  let pages = new Map(); // page number -> items (null while loading)
  let total = 0;
  let counts = null;
  let generation = 0;
  let painted = false;

  function query(extra = {}) {
    return { health: filters.health, q: filters.q || undefined, customer_id: filters.customer_id || undefined,
             site: filters.site || undefined, tag: filters.tag || undefined, sort: filters.sort, ...extra };
  }

  function drawCounts() {
    if (!counts) return;
    const all = HEALTHS.reduce((n, x) => n + counts[x], 0);
    const problems = PROBLEMS.every((x) => filters.health.includes(x)) && filters.health.length === PROBLEMS.length;
    const pick = (health) => () => { filters.health = health; reload(true); };
    fill(summary,
      h("button", { class: filters.health.length ? "secondary" : "", dataset: { health: "all" }, onclick: pick([]) },
        t("fleet.all", { n: formatNumber(all, 0) })),
      h("button", { class: problems ? "" : "secondary", id: "fleet-problems", "aria-pressed": String(problems),
                    onclick: pick(problems ? [] : [...PROBLEMS]) },
        t("fleet.problems_only", { n: formatNumber(PROBLEMS.reduce((n, x) => n + counts[x], 0), 0) })),
      ...HEALTHS.map((x) => h("button", {
        class: `count ${x} ${filters.health.length === 1 && filters.health[0] === x ? "" : "secondary"}`,
        dataset: { health: x }, disabled: !counts[x] && !filters.health.includes(x),
        onclick: pick(filters.health.length === 1 && filters.health[0] === x ? [] : [x]),
      }, `${healthName(x)} ${formatNumber(counts[x], 0)}`)));
  }

  function drawChips() {
    const chip = (label, clearIt) => h("button", { class: "chip secondary", onclick: () => { clearIt(); reload(true); },
                                                   title: t("fleet.remove_filter") }, `${label} ✕`);
    fill(chips,
      filters.customer_id ? chip(t("fleet.filter.customer", { name: filters.customer_name || filters.customer_id }),
        () => { filters.customer_id = ""; filters.customer_name = ""; }) : null,
      filters.site ? chip(t("fleet.filter.site", { name: filters.site }), () => { filters.site = ""; }) : null,
      filters.tag ? chip(t("fleet.filter.tag", { name: filters.tag }), () => { filters.tag = ""; }) : null);
  }

  // The element of a device's row, built once per version of the device's data.
  const built = new WeakMap();
  function drawn(d, i) {
    let el = built.get(d);
    if (!el) { el = deviceRow(d, cat, i * ROW); built.set(d, el); }
    el.style.top = `${i * ROW}px`;
    return el;
  }

  // Fresh pages keep the objects of devices that did not change, so their rows are kept too.
  function same(fresh) {
    const old = new Map();
    for (const items of pages.values()) if (items) for (const d of items) old.set(d.id, d);
    return fresh.map((d) => {
      const before = old.get(d.id);
      return before && JSON.stringify(before) === JSON.stringify(d) ? before : d;
    });
  }

  function drawRows() {
    const started = performance.now();
    const top = list.scrollTop;
    const height = list.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
    const last = Math.min(total - 1, Math.ceil((top + height) / ROW) + OVERSCAN);
    const out = [];
    for (let i = first; i <= last; i += 1) {
      const number = Math.floor(i / PER_PAGE) + 1;
      const items = pages.get(number);
      if (items === undefined) fetchPage(number);
      const d = items ? items[i - (number - 1) * PER_PAGE] : null;
      out.push(d ? drawn(d, i) : h("div", { class: "tile placeholder", style: `top:${i * ROW}px` }, t("term.loading")));
    }
    rows.style.height = `${Math.max(total * ROW, 0)}px`;
    // Rows already in the page stay (an update or a scroll builds only the rows that are new).
    const keep = new Set(out);
    for (const child of [...rows.children]) if (!keep.has(child)) child.remove();
    rows.append(...out);
    if (!total) rows.append(h("p", { class: "muted empty" }, t("fleet.none")));
    status.textContent = total
      ? t("fleet.showing", { from: formatNumber(Math.min(total, Math.floor(top / ROW) + 1), 0),
                             to: formatNumber(Math.min(total, Math.ceil((top + height) / ROW)), 0),
                             total: formatNumber(total, 0) })
      : "";
    performance.measure("ew-fleet-draw", { start: started });
  }

  async function fetchPage(number, gen = generation) {
    pages.set(number, null);
    let page;
    try {
      page = await api("/devices", { query: query({ page: number, per_page: PER_PAGE }) });
    } catch (error) {
      if (gen === generation) { pages.delete(number); status.textContent = error.message; }
      return;
    }
    if (gen !== generation || ctx.stale()) return;
    pages.set(number, page.items);
    total = page.total;
    counts = page.counts;
    drawCounts();
    schedule();
    if (!painted) { painted = true; requestAnimationFrame(() => performance.mark("ew-fleet-painted")); }
  }

  // Fresh pages for what is on screen; the old rows stay until they arrive (no flicker).
  async function reload(filtersChanged = false) {
    const gen = ++generation;
    if (filtersChanged) {
      list.scrollTop = 0;
      drawChips();
      history.replaceState(null, "", "#/fleet" + hashQuery());
    }
    const first = Math.floor(list.scrollTop / ROW / PER_PAGE) + 1;
    const lastPage = Math.floor((list.scrollTop + (list.clientHeight || 600)) / ROW / PER_PAGE) + 1;
    const fresh = new Map();
    const wanted = [];
    for (let n = first; n <= lastPage; n += 1) wanted.push(n);
    try {
      const answers = await Promise.all(wanted.map((n) =>
        api("/devices", { query: query({ page: n, per_page: PER_PAGE }) })));
      if (gen !== generation || ctx.stale()) return;
      answers.forEach((page, i) => { fresh.set(wanted[i], same(page.items)); total = page.total; counts = page.counts; });
    } catch (error) {
      status.textContent = error.message;
      return;
    }
    pages = fresh;
    drawCounts();
    drawRows();
    if (groups.open) loadGroups();
  }

  function hashQuery() {
    const params = new URLSearchParams();
    filters.health.forEach((x) => params.append("health", x));
    for (const key of ["q", "customer_id", "site", "tag"]) if (filters[key]) params.set(key, filters[key]);
    if (filters.sort !== "health") params.set("sort", filters.sort);
    const text = params.toString();
    return text ? "?" + text : "";
  }

  async function loadGroups() {
    const answer = await api("/device-groups", { query: { health: filters.health, q: filters.q || undefined,
                                                          tag: filters.tag || undefined } });
    if (ctx.stale()) return;
    const cell = (g, x) => h("td", { class: g.counts[x] ? `n ${x}` : "n" }, g.counts[x] ? formatNumber(g.counts[x], 0) : "");
    fill(groupsBox, h("table", { id: "fleet-groups-table" },
      h("thead", {}, h("tr", {}, h("th", {}, t("fleet.customer")), h("th", {}, t("fleet.site")),
        ...PROBLEMS.map((x) => h("th", {}, healthName(x))), h("th", {}, t("fleet.total")))),
      h("tbody", {}, answer.items.map((g) => h("tr", {},
        h("td", {}, g.customer_name || t("fleet.no_customer")),
        h("td", {}, h("button", { class: "link", onclick: () => {
          filters.customer_id = g.customer_id ? String(g.customer_id) : "";
          filters.customer_name = g.customer_name || "";
          filters.site = g.site || "";
          reload(true);
        } }, g.site || t("fleet.no_site"))),
        ...PROBLEMS.map((x) => cell(g, x)), h("td", { class: "n" }, formatNumber(g.total, 0)))))));
  }

  let frame = 0;
  function schedule() {
    if (frame) return;
    frame = requestAnimationFrame(() => { frame = 0; drawRows(); });
  }

  let typing = 0;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => { filters.q = search.value.trim(); reload(true); }, 250);
  });
  sort.addEventListener("change", () => { filters.sort = sort.value; reload(true); });
  groups.addEventListener("toggle", () => { if (groups.open) loadGroups(); });
  list.addEventListener("scroll", schedule, { passive: true });
  window.addEventListener("resize", schedule);

  // Live: patch the rows we hold; a change of health (or anything we cannot place) reorders the list.
  let reordering = 0;
  subscribe(ctx, {
    devices(data) {
      let moved = false;
      const byId = new Map(data.items.map((d) => [d.id, d]));
      for (const items of pages.values()) {
        if (!items) continue;
        items.forEach((d, i) => {
          const fresh = byId.get(d.id);
          if (!fresh) return;
          if (fresh.health !== d.health || fresh.site !== d.site || fresh.customer_id !== d.customer_id) moved = true;
          items[i] = fresh;
          byId.delete(d.id);
        });
      }
      if (byId.size || (data.removed || []).length) moved = true; // new to this list, or gone
      const filtered = filters.health.length || filters.q || filters.customer_id || filters.site || filters.tag;
      if (!filtered && data.counts && JSON.stringify(data.counts) !== JSON.stringify(counts)) {
        counts = data.counts;
        total = HEALTHS.reduce((n, x) => n + counts[x], 0);
        drawCounts();
      }
      schedule();
      if (moved && !reordering) reordering = setTimeout(() => { reordering = 0; reload(); }, 1000);
    },
    reset() { reload(); },
  });

  drawChips();
  await fetchPage(1);
  drawRows();
  return null;
}
