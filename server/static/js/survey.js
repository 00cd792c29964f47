// The satisfaction survey behind the link sent after a ticket closes; the link's token is the credential.
// The page is at <prefix>/survey/TOKEN: "../" is the prefix, whatever path a proxy serves it under.
// It speaks the language of the message that linked to it (`?lang=zh-CN`), else the browser's.
import { loadMessages, t, translatePage } from "./i18n.js";

const form = document.getElementById("survey");
const result = document.getElementById("result");
const token = decodeURIComponent(location.pathname.split("/").pop());

async function start() {
  await loadMessages({ prefer: new URLSearchParams(location.search).get("lang"), base: "../" });
  translatePage();
  document.title = `edgewatch — ${t("survey.title")}`;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(form);
  const body = { rating: Number(data.get("rating")), comment: data.get("comment") || null };
  const response = await fetch(`../api/v1/survey/${encodeURIComponent(token)}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (response.ok) {
    form.querySelectorAll("input, textarea, button").forEach((el) => { el.disabled = true; });
    result.textContent = t("survey.thanks");
  } else {
    result.textContent = answer.detail || t("survey.failed", { status: response.status });
  }
});

start();
