// Live SLA countdowns, computed in the browser from each clock's due_at and ticked every second.
import { duration } from "./dom.js";
import { t } from "./i18n.js";

export function clockState(clock, now = Date.now()) {
  if (clock.stopped_at) {
    const late = new Date(clock.stopped_at) - new Date(clock.due_at);
    return { cls: late > 0 ? "overdue" : "stopped",
             text: late > 0 ? t("term.clock.stopped_late", { d: duration(late / 1000) }) : t("term.clock.stopped_in_time") };
  }
  const left = (new Date(clock.due_at).getTime() - now) / 1000;
  if (left < 0 || clock.breached) return { cls: "overdue", text: t("term.clock.overdue", { d: duration(-left) }) };
  return { cls: left < 600 ? "soon" : "", text: t("term.clock.left", { d: duration(left) }) };
}

// The running clock due first: the one that matters most in the queue.
export function mostPressing(clocks) {
  const running = clocks.filter((c) => !c.stopped_at);
  running.sort((a, b) => new Date(a.due_at) - new Date(b.due_at));
  return running[0] || null;
}

export function renderCountdown(el) {
  const clock = JSON.parse(el.dataset.clock);
  const state = clockState(clock);
  el.textContent = state.text;
  el.className = "countdown " + state.cls;
}

export function tickAll(root = document) {
  root.querySelectorAll("[data-clock]").forEach(renderCountdown);
}
