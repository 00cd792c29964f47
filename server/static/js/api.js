// The API client: same-origin fetch with the session cookie; unsafe methods echo the CSRF cookie.
// Paths are relative to the page (served at "/"), so the dashboard also works under a proxy's path prefix.
// The server's error texts (`detail`) name the field and the reason in English (scripts read them
// too): a person reading another language gets, first, what kind of error it is in their language,
// or the whole sentence for the errors the catalogue knows by their key.
import { lang, t } from "./i18n.js";

// i18n-keys: api.status.400 api.status.403 api.status.404 api.status.409 api.status.413 api.status.422
// i18n-keys: api.status.429 api.status.500 api.status.503 api.key.database_unavailable
export function localized(status, key, detail) {
  if (lang() === "en") return detail;
  if (key && t(`api.key.${key}`) !== `api.key.${key}`) return t(`api.key.${key}`);
  const kind = t(`api.status.${status}`);
  return kind === `api.status.${status}` ? detail : `${kind}：${detail}`;
}

export class ApiError extends Error {
  constructor(status, detail, key) {
    super(detail);
    this.status = status;
    this.key = key;
  }
}

function csrfToken() {
  const match = document.cookie.split("; ").find((c) => c.startsWith("ew_csrf="));
  return match ? decodeURIComponent(match.slice(8)) : "";
}

export async function api(path, { method = "GET", body, query } = {}) {
  let url = "api/v1" + path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null || v === "") continue;
      for (const item of Array.isArray(v) ? v : [v]) params.append(k, item);
    }
    const text = params.toString();
    if (text) url += "?" + text;
  }
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
  const response = await fetch(url, { method, headers, credentials: "same-origin",
                                      body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 204) return null;
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok) {
    const key = data && data.key;
    const detail = data && typeof data.detail === "string" ? localized(response.status, key, data.detail)
      : t("api.http_error", { status: response.status });
    const error = new ApiError(response.status, detail, key);
    if (response.status === 401) window.dispatchEvent(new CustomEvent("ew-unauthorized"));
    throw error;
  }
  return data;
}
