// The dashboard shell: login, hash routing, polling the current view, ticking countdowns.
import { api } from "./api.js";
import { tickAll } from "./countdown.js";
import { clear, h, toast } from "./dom.js";
import { lang, loadMessages, setLang, setTimeZone, translatePage, t } from "./i18n.js";
import * as admin from "./views/admin.js";
import * as board from "./views/board.js";
import * as device from "./views/device.js";
import * as fleet from "./views/fleet.js";
import * as deadletters from "./views/deadletters.js";
import * as home from "./views/home.js";
import * as knowledge from "./views/knowledge.js";
import * as maintenance from "./views/maintenance.js";
import * as queue from "./views/queue.js";
import * as reports from "./views/reports.js";
import * as thresholds from "./views/thresholds.js";
import * as ticket from "./views/ticket.js";

const ROUTES = [
  [/^#\/home$/, home], [/^#\/dead-letters$/, deadletters], [/^#\/reports$/, reports],
  [/^#\/fleet(?:\?(.*))?$/, fleet], [/^#\/queue$/, queue], [/^#\/tickets\/(\d+)$/, ticket],
  [/^#\/devices\/([A-Za-z0-9._-]{1,64})$/, device], [/^#\/board$/, board], [/^#\/thresholds$/, thresholds],
  [/^#\/admin(?:\/([a-z]+))?$/, admin], [/^#\/knowledge(?:\/(\d+|new))?$/, knowledge],
  [/^#\/maintenance$/, maintenance],
];
const state = { me: null, timer: null, generation: 0 };

function showLogin(show) {
  document.getElementById("login").hidden = !show;
  document.getElementById("nav").hidden = show;
  document.getElementById("view").hidden = show;
}

async function whoami() {
  try {
    state.me = await api("/me");
    setTimeZone(state.me.timezone);
    const staff = state.me.role !== "customer";
    document.querySelectorAll("[data-staff]").forEach((a) => { a.hidden = !staff; });
    const managers = ["admin", "supervisor"].includes(state.me.role);
    document.querySelectorAll("[data-managers]").forEach((a) => { a.hidden = !managers; });
    showLogin(false);
    return true;
  } catch {
    state.me = null;
    showLogin(true);
    return false;
  }
}

async function route() {
  clearInterval(state.timer);
  const generation = ++state.generation;
  if (!state.me && !(await whoami())) return;
  if (!location.hash || location.hash === "#/") { location.hash = "#/home"; return; }
  const found = ROUTES.find(([re]) => re.test(location.hash));
  const view = document.getElementById("view");
  document.querySelectorAll("#nav a").forEach((a) => {
    a.classList.toggle("active", location.hash.startsWith(a.getAttribute("href")));
  });
  if (!found) { clear(view).append(h("p", {}, t("app.no_such_page"))); return; }
  const [re, module] = found;
  const params = location.hash.match(re).slice(1).map((p) => (p === undefined ? p : decodeURIComponent(p)));
  clear(view);
  const ctx = { me: state.me, stale: () => generation !== state.generation };
  let refresh = null;
  try {
    refresh = await module.render(view, params, ctx);
  } catch (error) {
    view.append(h("p", { class: "error" }, error.message));
    return;
  }
  tickAll(view);
  if (refresh) {
    state.timer = setInterval(async () => {
      if (ctx.stale() || document.hidden) return;
      try { await refresh(); tickAll(view); } catch (error) { if (error.status !== 401) toast(error.message, true); }
    }, (state.me.poll_interval_s || 5) * 1000);
  }
}

async function start() {
  await loadMessages();
  translatePage();
  const switcher = document.getElementById("lang");
  switcher.textContent = t("lang.switch");
  switcher.title = t("lang.switch.title");
  switcher.lang = lang() === "en" ? "zh-CN" : "en";
  switcher.addEventListener("click", () => setLang(lang() === "en" ? "zh-CN" : "en"));
  document.getElementById("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.getElementById("token");
    const username = document.getElementById("username");
    const password = document.getElementById("password");
    const error = document.getElementById("login-error");
    error.textContent = "";
    // A token signs in when given; else the user name and password.
    const body = input.value.trim() ? { token: input.value.trim() }
      : { username: username.value.trim(), password: password.value };
    if (!body.token && (!body.username || !body.password)) {
      error.textContent = t("login.missing");
      return;
    }
    try {
      await api("/auth/login", { method: "POST", body });
      input.value = "";
      password.value = "";
      state.me = null;
      await route();
    } catch (e) {
      error.textContent = e.message;
    }
  });
  document.getElementById("logout").addEventListener("click", async () => {
    await api("/auth/logout", { method: "POST" }).catch(() => null);
    state.me = null;
    showLogin(true);
  });
  window.addEventListener("ew-unauthorized", () => { state.me = null; clearInterval(state.timer); showLogin(true); });
  window.addEventListener("hashchange", route);
  setInterval(() => tickAll(document.getElementById("view")), 1000);
  route();
}

start();
