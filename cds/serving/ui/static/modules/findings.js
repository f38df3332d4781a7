// The findings panel of the viewer: each finding's probability against its operating threshold (or each
// segmented structure's volume) and the reader's review: accept or reject, with an optional comment, stored by
// POST .../feedback. The newest stored verdict per finding is shown, so a reload shows what was said. A verdict is
// sent from the version of the verdicts this tab loaded (versions.js): if another tab or reader decided since, it
// is refused and the reader is asked to reload rather than overwrite what they never saw.

import { announce, h, replace, when } from "./dom.js";
import { has, number, t } from "./i18n.js";
import { keepDraft } from "./drafts.js";
import { reloadButton, saveVerdict, staleMessage } from "./versions.js";

const MAX_COMMENT = 1000;

/** A label as people read it ("Pleural_Thickening" -> "Pleural Thickening", 胸膜增厚); the API keeps the original. */
export function displayName(label) {
  return has(`finding.${label}`) ? t(`finding.${label}`) : label.replaceAll("_", " ");
}

function verdictText(entry) {
  if (!entry) return t("findings.notReviewed");
  const comment = entry.comment ? ` — “${entry.comment}”` : "";
  const verdict = t(entry.verdict === "accepted" ? "findings.accepted" : "findings.rejected");
  return t("findings.verdictBy", { verdict, actor: entry.actor, time: when(entry.created_at), comment });
}

function probabilityBar(probability, threshold) {
  const fill = h("span", { class: "fill" });
  const mark = h("span", { class: "mark" });
  fill.style.width = `${Math.min(1, Math.max(0, probability)) * 100}%`;
  mark.style.left = `${Math.min(1, Math.max(0, threshold)) * 100}%`;
  return h("span", { class: "bar", "aria-hidden": "true" }, fill, mark);
}

function reviewCell(base, label, current) {
  const name = displayName(label);
  const status = h("p", { class: "verdict", dataset: { verdict: current?.verdict ?? "" } }, verdictText(current));
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const comment = h("input", { type: "text", class: "comment", maxlength: MAX_COMMENT, placeholder: t("findings.comment"),
    "aria-label": t("findings.commentOn", { name }) });
  const dropDraft = keepDraft(comment, `comment:${label}`);
  const buttons = ["accepted", "rejected"].map((verdict) => h("button", {
    type: "button", class: `review ${verdict}`, dataset: { verdict },
    "aria-pressed": current?.verdict === verdict ? "true" : "false",
    "aria-label": t(verdict === "accepted" ? "findings.acceptLabel" : "findings.rejectLabel", { name }),
  }, t(verdict === "accepted" ? "findings.accept" : "findings.reject")));
  async function submit(verdict) {
    error.hidden = true;
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const saved = await saveVerdict(base, "feedback", { label, verdict, comment: comment.value });
      status.dataset.verdict = saved.verdict;
      status.textContent = verdictText(saved);
      buttons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.verdict === saved.verdict)));
      comment.value = "";
      dropDraft();
      announce(t("findings.announce", { name, verdict: t(saved.verdict === "accepted" ? "findings.accepted"
        : "findings.rejected") }));
    } catch (problem) {
      const stale = staleMessage(problem);
      replace(error, stale ?? t("findings.notSaved", { error: problem.message }), stale ? reloadButton() : null);
      error.dataset.code = problem.code ?? "";
      error.hidden = false;
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }
  buttons.forEach((b) => b.addEventListener("click", () => submit(b.dataset.verdict)));
  return h("td", { class: "review-cell" }, status, h("div", { class: "review-controls" }, comment, buttons), error);
}

function findingRows(view, base, latest) {
  const sorted = [...view.findings].sort((a, b) => (b.positive - a.positive) || ((b.ratio ?? 0) - (a.ratio ?? 0)));
  return sorted.map((f) => h("tr", { class: f.positive ? "positive" : "", dataset: { label: f.label } },
    h("th", { scope: "row" }, h("span", { class: "label" }, displayName(f.label)),
      f.positive ? h("span", { class: "badge positive" }, t("findings.positive"))
        : h("span", { class: "muted" }, t("findings.negative"))),
    h("td", { class: "numbers" },
      h("span", {}, t("findings.versus", { probability: f.probability.toFixed(3), threshold: f.threshold.toFixed(3) })),
      probabilityBar(f.probability, f.threshold),
      h("span", { class: "muted" }, f.ratio === null ? "" : t("findings.ratio", { ratio: f.ratio.toFixed(1) }))),
    reviewCell(base, f.label, latest.get(f.label))));
}

function structureRows(view, base, latest) {
  return view.structures.map((s) => {
    const swatch = h("span", { class: "swatch", "aria-hidden": "true" });
    if (s.colour) swatch.style.backgroundColor = s.colour;
    return h("tr", { dataset: { label: s.label } },
      h("th", { scope: "row" }, h("span", { class: "label" }, swatch, displayName(s.label)),
        h("span", { class: "muted" }, t(s.segment === null ? "findings.notFound" : "findings.segmented"))),
      h("td", { class: "numbers" }, s.volume_ml === null ? "—" : `${s.volume_ml.toFixed(1)} mL`),
      reviewCell(base, s.label, latest.get(s.label)));
  });
}

/**
 * The findings (or structures) table with review controls; `feedback` is GET .../feedback (newest first), `help`
 * the line under the heading (default: what the radiograph or CT review asks).
 */
export function renderFindings(view, feedback, base, help = null) {
  const latest = new Map();
  for (const entry of feedback) if (!latest.has(entry.label)) latest.set(entry.label, entry);
  const ct = view.kind === "ct";
  const head = (ct ? ["structure", "volume", "review"] : ["finding", "probability", "review"])
    .map((column) => t(`findings.col.${column}`));
  return h("section", { class: "findings-panel", "aria-labelledby": "findings-heading" },
    h("h2", { id: "findings-heading" }, t(ct ? "findings.structuresTitle" : "findings.title")),
    h("p", { class: "muted" }, help ?? t(ct ? "findings.structuresHelp" : "findings.help")),
    h("table", { class: "findings", id: "findings-table" },
      h("thead", {}, h("tr", {}, head.map((title) => h("th", { scope: "col" }, title)))),
      h("tbody", {}, ct ? structureRows(view, base, latest) : findingRows(view, base, latest))));
}
