// The satisfaction survey behind the link sent after a ticket closes; the link's token is the credential.
// The page is at <prefix>/survey/TOKEN: "../" is the prefix, whatever path a proxy serves it under.
const form = document.getElementById("survey");
const result = document.getElementById("result");
const token = decodeURIComponent(location.pathname.split("/").pop());

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
    result.textContent = "Thank you! Your rating was recorded.";
  } else {
    result.textContent = answer.detail || `Sorry, that did not work (HTTP ${response.status}).`;
  }
});
