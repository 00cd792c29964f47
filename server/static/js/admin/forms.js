// Form helpers of the administration screens: labelled fields that read back into an API body,
// error messages shown beside the form (the API names the field), and local times in a time zone.
import { h } from "../dom.js";
import { t } from "../i18n.js";

let counter = 0;

// A labelled input; `get()` reads its value back (empty text: null), `set(v)` writes it.
export function field(label, { type = "text", value = "", name, options, placeholder, required, help } = {}) {
  const id = `f${++counter}`;
  let input;
  if (options) {
    input = h("select", { id, name }, options.map(([v, text]) => h("option", { value: v }, text)));
  } else if (type === "checkbox") {
    input = h("input", { id, name, type: "checkbox" });
  } else if (type === "textarea") {
    input = h("textarea", { id, name, rows: 6, placeholder, spellcheck: "false" });
  } else {
    input = h("input", { id, name, type, placeholder, required, autocomplete: type === "password" ? "new-password" : "off" });
  }
  const wrap = type === "checkbox"
    ? h("div", { class: "check" }, input, h("label", { for: id }, label))
    : h("div", {}, h("label", { for: id }, label), input, help ? h("small", { class: "muted" }, help) : null);
  const api = {
    el: wrap, input,
    get() {
      if (type === "checkbox") return input.checked;
      const v = input.value.trim();
      return v === "" ? null : v;
    },
    set(v) {
      if (type === "checkbox") input.checked = Boolean(v);
      else input.value = v === null || v === undefined ? "" : String(v);
    },
  };
  api.set(value);
  return api;
}

// Tags are typed as "a, b; c"; the API takes a list.
export function tagsOf(text) {
  if (!text) return null;
  const tags = text.split(/[;,]/).map((t) => t.trim()).filter(Boolean);
  return tags.length ? tags : null;
}

// The body of a change: only the fields whose value differs from `before` (PATCH semantics).
export function changed(body, before) {
  if (!before) return body;
  const out = {};
  for (const [k, v] of Object.entries(body)) {
    if (JSON.stringify(v ?? null) !== JSON.stringify(before[k] ?? null)) out[k] = v;
  }
  return out;
}

export function errorBox() {
  return h("p", { class: "error", role: "alert" });
}

// The UTC instant of a wall-clock time ("2026-01-05T09:00") in an IANA time zone, as ISO 8601.
export function zonedToIso(wall, zone) {
  if (!wall) return null;
  const asUtc = new Date(`${wall}:00Z`);
  const offset = (at) => {
    const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    }).formatToParts(at).map((p) => [p.type, p.value]));
    const local = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
    return local - at.getTime();
  };
  let guess = new Date(asUtc.getTime() - offset(asUtc));
  guess = new Date(asUtc.getTime() - offset(guess)); // once more: the offset at the instant itself
  return guess.toISOString();
}

// The wall-clock time ("2026-01-05T09:00") of an instant in an IANA time zone.
export function isoToZoned(iso, zone) {
  if (!iso) return "";
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", {
    timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  }).formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
}

// Language names are written in their own language, whatever the page's.
export const LANGUAGES = [["", "—"], ["zh-CN", "中文 (zh-CN)"], ["en", "English (en)"]];

// The channels a person or group is told on, as [value, label] options (built when a form is drawn,
// after the messages are loaded).
export function channels() {
  return [["", t("admin.channel.none")], ["email", t("admin.channel.email")], ["webhook", t("admin.channel.webhook")],
          ["dingtalk", t("admin.channel.dingtalk")], ["wecom", t("admin.channel.wecom")],
          ["feishu", t("admin.channel.feishu")], ["sms", t("admin.channel.sms")]];
}
