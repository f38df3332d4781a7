// Referring a read to the hub, from the viewer of a member site: the clinical question and the priority, sent by
// POST /v1/referrals. A read referred already shows where it went, how urgently, and whether the hub has signed it.

import { api, loadSession } from "./api.js";
import { announce, h, replace, when } from "./dom.js";
import { keepDraft } from "./drafts.js";

const PRIORITIES = [["routine", "Routine"], ["urgent", "Urgent"], ["stat", "STAT"]];

function statusText(referral) {
  const state = referral.status === "signed" ? `signed by ${referral.signed_by}, ${when(referral.signed_at)}`
    : "waiting for the hub's reading";
  return `Referred to ${referral.to_site} (${referral.priority}) ${when(referral.created_at)}: ${state}.`;
}

/** The referral section for job `jobId`, or null when this site refers to no hub; `outgoing` is GET
 * /v1/referrals?direction=out. */
export function renderReferral(jobId, outgoing) {
  const hub = loadSession()?.hub_site;
  if (!hub) return null;
  const existing = outgoing.find((r) => r.job_id === jobId);
  const status = h("p", { id: "referral-status", role: "status" }, existing ? statusText(existing) : "");
  const question = h("textarea", { id: "referral-question", rows: 2, maxlength: 2000 });
  const dropDraft = existing ? () => {} : keepDraft(question, "referral-question");
  const priority = h("select", { id: "referral-priority" },
    PRIORITIES.map(([value, text]) => h("option", { value }, text)));
  const error = h("p", { class: "error", role: "alert", id: "referral-error", hidden: true });
  const button = h("button", { type: "submit", id: "refer" }, `Refer to ${hub}`);
  async function refer(event) {
    event.preventDefault();
    error.hidden = true;
    button.disabled = true;
    try {
      const referral = await api("/v1/referrals", { method: "POST",
        json: { job_id: jobId, question: question.value, priority: priority.value } });
      dropDraft();
      replace(status, statusText(referral));
      announce(`Referred to ${referral.to_site}`);
    } catch (problem) {
      replace(error, `Not referred: ${problem.message}`);
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  }
  return h("section", { class: "referral-panel", "aria-labelledby": "referral-heading" },
    h("h2", { id: "referral-heading" }, "Remote reading"), status,
    existing ? null : h("form", { class: "sign-form", onSubmit: refer },
      h("label", { for: "referral-question" }, "Clinical question for the hub"), question,
      h("label", { for: "referral-priority" }, "Priority"), priority, button, error));
}
