// The sign-off panel of a read (a radiograph in the viewer, a slide in the slide view, an ECG in the ECG reader):
// once the reader has reviewed what the read needs, they write the impression and sign; the server writes the final
// report (FHIR, and for a radiograph a DICOM SR sent to the PACS). Signing again amends. The versions signed so far
// are listed with who signed and when; the files link to the report.

import { api } from "./api.js";
import { downloadButton } from "./download.js";
import { announce, h, replace, when } from "./dom.js";
import { keepDraft } from "./drafts.js";
import { ifMatch, reloadButton, staleMessage } from "./versions.js";

const MAX_IMPRESSION = 4000;

function history(list, signatures) {
  replace(list, signatures.length ? signatures.map((s) => h("li", { dataset: { version: String(s.version), status: s.status } },
    h("strong", {}, `Version ${s.version} · ${s.status === "final" ? "Final" : "Amended"}`),
    ` — signed by ${s.signer_name} (${s.signer}), ${when(s.created_at)}`,
    h("blockquote", {}, s.impression)))
    : h("li", { class: "muted" }, "Not signed yet: the AI's findings are preliminary."));
}

const RADIOGRAPH = { help: "Give your verdict on every finding above first.",
  files: [["signed-diagnostic-report.json", "Signed report (FHIR)"], ["signed-report-sr.dcm", "Signed report (DICOM SR)"]] };
export const ECG = { help: "Review the rhythm and every flag first.",
  files: [["signed-diagnostic-report.json", "Signed report (FHIR)"]] };
export const SLIDE = { help: "Accept or reject the AI finding above first.",
  files: [["signed-diagnostic-report.json", "Signed report (FHIR)"]] };

/** The sign-off section; `signatures` is GET .../signatures (oldest first), `kind` RADIOGRAPH (default), ECG, SLIDE. */
export function renderSigning(signatures, base, kind = RADIOGRAPH) {
  const list = h("ol", { class: "signatures", id: "signatures" });
  history(list, signatures);
  const impression = h("textarea", { id: "impression", rows: 4, maxlength: MAX_IMPRESSION, required: true,
    "aria-describedby": "impression-help" });
  const name = h("input", { type: "text", id: "signer-name", maxlength: 64, autocomplete: "name" });
  const dropDraft = keepDraft(impression, "impression");
  const error = h("p", { class: "error", role: "alert", id: "sign-error", hidden: true });
  const files = h("p", { id: "signed-files", class: "downloads", hidden: signatures.length === 0 },
    kind.files.map(([name, text]) => downloadButton(base, name, text)));
  const button = h("button", { type: "submit", id: "sign" }, signatures.length ? "Amend and sign" : "Sign report");
  async function sign(event) {
    event.preventDefault();
    error.hidden = true;
    button.disabled = true;
    try {
      const signed = await api(`${base}/signatures`, { method: "POST", headers: ifMatch(base),
        json: { impression: impression.value, signer_name: name.value } }); // refused if the verdicts moved on
      dropDraft();
      signatures.push(signed);
      history(list, signatures);
      files.hidden = false;
      button.textContent = "Amend and sign";
      announce(`Report signed: version ${signed.version}, ${signed.status}`);
    } catch (problem) {
      const stale = staleMessage(problem);
      replace(error, stale ? `Not signed. ${stale}` : `Not signed: ${problem.message}`, stale ? reloadButton() : null);
      error.dataset.code = problem.code ?? "";
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  }
  return h("section", { class: "signing-panel", "aria-labelledby": "signing-heading" },
    h("h2", { id: "signing-heading" }, "Sign-off"),
    list, files,
    h("form", { class: "sign-form", onSubmit: sign },
      h("label", { for: "impression" }, "Impression"), impression,
      h("p", { class: "muted", id: "impression-help" }, `Your conclusion in your own words. ${kind.help}`),
      h("label", { for: "signer-name" }, "Name on the report (optional)"), name,
      button, error));
}
