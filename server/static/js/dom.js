// Small DOM helpers: build elements from data (never innerHTML, so nothing from the API is parsed as HTML),
// and the words of the domain (health, status, level, clock names) in the person's language.
import { formatTime, t } from "./i18n.js";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Replace an element's children, skipping null/false (optional parts of a view).
export function fill(el, ...children) {
  clear(el);
  el.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function toast(message, bad = false) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.className = "show" + (bad ? " bad" : "");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.className = ""; }, 4000);
}

// A time a person reads: their time zone, with its offset.
export function when(iso) {
  return formatTime(iso);
}

export function ago(iso, now = Date.now()) {
  if (!iso) return t("term.ago.never");
  const s = Math.max(0, Math.round((now - new Date(iso).getTime()) / 1000));
  if (s < 60) return t("term.ago.s", { n: s });
  if (s < 3600) return t("term.ago.min", { n: Math.floor(s / 60) });
  if (s < 86400) return t("term.ago.h", { n: Math.floor(s / 3600) });
  return t("term.ago.d", { n: Math.floor(s / 86400) });
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(Math.abs(seconds));
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  return hh ? `${hh}:${two(mm)}:${two(ss)}` : `${mm}:${two(ss)}`;
}

export function pct(x) {
  return x === null || x === undefined ? "—" : `${(x * 100).toFixed(1)} %`;
}

export function num(x, digits = 1) {
  return x === null || x === undefined ? "—" : Number(x).toFixed(digits);
}

// i18n-keys: term.clock.first_response term.clock.on_site term.clock.rca term.clock.dispatch
// i18n-keys: term.clock.pre_maintenance_start term.clock.resolution term.clock.escalation
export function clockName(name) {
  return word("term.clock." + name, name);
}

// i18n-keys: term.health.red term.health.orange term.health.offline term.health.unknown term.health.green
export function healthName(health) { return word("term.health." + health, health); }

// i18n-keys: term.status.received term.status.dispatched term.status.in_progress term.status.resolved
// i18n-keys: term.status.closed term.status.cancelled
export function statusName(status) { return word("term.status." + status, status); }

// i18n-keys: term.level.red term.level.yellow term.level.blue
export function levelName(level) { return word("term.level." + level, level); }

// i18n-keys: term.kind.pre_maintenance term.kind.on_site term.kind.offline term.kind.predictive
// i18n-keys: term.kind.service_recovery term.kind.manual term.kind.incident
export function kindName(kind) { return word("term.kind." + kind, kind); }

// A catalogue word, or the raw value made readable when the catalogue has none.
function word(key, raw) {
  const text = t(key);
  return text === key ? String(raw || "").replaceAll("_", " ") : text;
}
