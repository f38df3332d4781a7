// Referring a read to the hub, from the viewer of a member site: the clinical question and the priority, sent by
// POST /v1/referrals. A read referred already shows where it went, how urgently, and whether the hub has signed it.

import { api, loadSession } from "./api.js";
import { announce, h, replace, when } from "./dom.js";
import { keepDraft } from "./drafts.js";
import { t } from "./i18n.js";

const PRIORITIES = ["routine", "urgent", "stat"];

function priorityName(priority) {
  return PRIORITIES.includes(priority) ? t(`referral.priority.${priority}`) : priority;
}

function statusText(referral) {
  const state = referral.status === "signed"
    ? t("referral.signedBy", { signer: referral.signed_by, time: when(referral.signed_at) }) : t("referral.waiting");
  const priority = PRIORITIES.includes(referral.priority) ? t(`referral.inSentence.${referral.priority}`)
    : referral.priority;
  return t("referral.status", { site: referral.to_site, priority,
    time: when(referral.created_at), state });
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
    PRIORITIES.map((value) => h("option", { value }, priorityName(value))));
  const error = h("p", { class: "error", role: "alert", id: "referral-error", hidden: true });
  const button = h("button", { type: "submit", id: "refer" }, t("referral.refer", { hub }));
  async function refer(event) {
    event.preventDefault();
    error.hidden = true;
    button.disabled = true;
    try {
      const referral = await api("/v1/referrals", { method: "POST",
        json: { job_id: jobId, question: question.value, priority: priority.value } });
      dropDraft();
      replace(status, statusText(referral));
      announce(t("referral.announce", { site: referral.to_site }));
    } catch (problem) {
      replace(error, t("referral.failed", { error: problem.message }));
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  }
  return h("section", { class: "referral-panel", "aria-labelledby": "referral-heading" },
    h("h2", { id: "referral-heading" }, t("referral.title")), status,
    existing ? null : h("form", { class: "sign-form", onSubmit: refer },
      h("label", { for: "referral-question" }, t("referral.question")), question,
      h("label", { for: "referral-priority" }, t("referral.priority")), priority, button, error));
}
