// Which version of a read's verdicts this tab decided on: the ETag of GET .../feedback (or .../reviews), sent back
// as If-Match with every verdict and signature. A tab that fell behind (another tab or reader saved since) is
// refused with 412 stale_verdicts instead of overwriting what it never saw; each verdict it saves moves its
// version on, so one reader working in one tab is never stopped.

import { api } from "./api.js";
import { t } from "./i18n.js";

const versions = new Map(); // a read's base path -> the ETag of the verdicts this tab has seen

function remember(base, response) {
  const tag = response.headers.get("ETag");
  if (tag) versions.set(base, tag);
}

/** The If-Match header for a write about the read at `base` (none before its verdicts were loaded). */
export function ifMatch(base) {
  const tag = versions.get(base);
  return tag ? { "If-Match": tag } : {};
}

/** GET `${base}/${name}` (feedback or reviews), remembering the version it answers. */
export async function loadVerdicts(base, name = "feedback") {
  const response = await api(`${base}/${name}`, { raw: true });
  remember(base, response);
  return response.json();
}

/** POST one verdict or review to `${base}/${name}` from the version this tab saw; the stored row. */
export async function saveVerdict(base, name, json) {
  const response = await api(`${base}/${name}`, { method: "POST", json, raw: true, headers: ifMatch(base) });
  remember(base, response);
  return response.json();
}

/** What to tell the reader when a write was refused because the verdicts moved on (null for other refusals). */
export function staleMessage(problem) {
  return problem?.code === "stale_verdicts"
    ? t("versions.stale")
    : null;
}

/** A button that reloads the page where it is (the read, the same view). */
export function reloadButton() {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "reload";
  button.textContent = t("versions.reload");
  button.addEventListener("click", () => window.location.reload());
  return button;
}
