// The dashboard's language and time zone: Simplified Chinese or English, chosen by the browser's
// language unless the person picked one (remembered in localStorage), and times shown in the
// person's time zone with its offset.
//
// Messages live in static/i18n/*.json, one file per area of the dashboard, each key carrying every
// language side by side: {"queue.title": {"en": "Ticket queue", "zh-CN": "工单队列"}}. The server
// merges the files into /i18n/messages.json; tests/server/test_i18n_catalogue.py fails when a key
// used in the code has no entry or an entry lacks a language.

export const LANGUAGES = ["en", "zh-CN"];
const STORED = "edgewatch.lang";
let messages = {};
let current = "en";
let zone;  // undefined: the browser's own time zone

// The language to use: the stored choice, else the first browser language we speak.
export function pick(stored, browserLanguages) {
  if (LANGUAGES.includes(stored)) return stored;
  for (const tag of browserLanguages || []) {
    const lower = String(tag).toLowerCase();
    if (lower.startsWith("zh")) return "zh-CN";
    if (lower.startsWith("en")) return "en";
  }
  return "en";
}

// `prefer`: a language the page was opened in (the survey link of a Chinese message says zh-CN),
// before the stored choice; `base`: the path to the site's root from the page ("../" from /survey/X).
export async function loadMessages({ prefer = null, base = "" } = {}) {
  let stored = null;
  try { stored = localStorage.getItem(STORED); } catch { /* storage refused: browser language only */ }
  current = pick(LANGUAGES.includes(prefer) ? prefer : stored, navigator.languages || [navigator.language]);
  document.documentElement.lang = current;
  const response = await fetch(`${base}i18n/messages.json`, { credentials: "same-origin" });
  messages = response.ok ? await response.json() : {};
}

export function lang() { return current; }

// Remember the choice and redraw everything in it.
export function setLang(language) {
  if (!LANGUAGES.includes(language)) return;
  try { localStorage.setItem(STORED, language); } catch { /* not remembered, still switched */ }
  location.reload();
}

// The message for `key` in the current language, with {name} placeholders filled from params.
// A missing key shows itself, so a gap is visible (and the catalogue test fails on it).
export function t(key, params = {}) {
  const entry = messages[key];
  const text = entry ? (entry[current] ?? entry.en ?? key) : key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

// Translate the static page: elements with data-i18n get their text, data-i18n-placeholder and
// data-i18n-title their attributes.
export function translatePage(root = document) {
  root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
    el.setAttribute("placeholder", t(el.dataset.i18nPlaceholder));
  });
  root.querySelectorAll("[data-i18n-title]").forEach((el) => { el.setAttribute("title", t(el.dataset.i18nTitle)); });
}

// The person's IANA time zone (from /me); an unknown one falls back to the browser's.
export function setTimeZone(timeZone) {
  try {
    new Intl.DateTimeFormat("en", { timeZone });
    zone = timeZone || undefined;
  } catch {
    zone = undefined;
  }
}

export function timeZone() { return zone; }

// A date and time as a person reads it: in their time zone, with its offset (2026-12-03 16:05:09 GMT+8).
export function formatTime(iso) {
  if (!iso) return "—";
  return new Intl.DateTimeFormat(current, {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
    hour12: false, timeZone: zone, timeZoneName: "shortOffset",
  }).format(new Date(iso));
}

export function formatNumber(x, digits = 1) {
  if (x === null || x === undefined) return "—";
  return new Intl.NumberFormat(current, { minimumFractionDigits: digits, maximumFractionDigits: digits })
    .format(Number(x));
}
