// The sign-off panel of a read (a radiograph in the viewer, a slide in the slide view, an ECG in the ECG reader):
// once the reader has reviewed what the read needs, they write the impression and sign; the server writes the final
// report (FHIR, and for a radiograph a DICOM SR sent to the PACS). Signing again amends. The versions signed so far
// are listed with who signed and when; the files link to the report.

import { api } from "./api.js";
import { downloadButton } from "./download.js";
import { announce, h, replace, when } from "./dom.js";
import { keepDraft } from "./drafts.js";
import { t } from "./i18n.js";
import { ifMatch, reloadButton, staleMessage } from "./versions.js";

const MAX_IMPRESSION = 4000;

function history(list, signatures) {
  replace(list, signatures.length ? signatures.map((s) => h("li", { dataset: { version: String(s.version), status: s.status } },
    h("strong", {}, t("signing.version", { version: s.version,
      status: t(s.status === "final" ? "signing.final" : "signing.amended") })),
    t("signing.signedBy", { name: s.signer_name, signer: s.signer, time: when(s.created_at) }),
    h("blockquote", {}, s.impression)))
    : h("li", { class: "muted" }, t("signing.notYet")));
}

// What each kind of read asks before signing and the files it signs; texts are catalogue keys (i18n.js).
const RADIOGRAPH = { help: "signing.help.radiograph",
  files: [["signed-diagnostic-report.json", "signing.fhir"], ["signed-report-sr.dcm", "signing.sr"]] };
export const ECG = { help: "signing.help.ecg", files: [["signed-diagnostic-report.json", "signing.fhir"]] };
export const SLIDE = { help: "signing.help.slide", files: [["signed-diagnostic-report.json", "signing.fhir"]] };

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
    kind.files.map(([name, text]) => downloadButton(base, name, t(text))));
  const button = h("button", { type: "submit", id: "sign" }, t(signatures.length ? "signing.amend" : "signing.sign"));
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
      button.textContent = t("signing.amend");
      announce(t("signing.announce", { version: signed.version,
        status: t(signed.status === "final" ? "signing.final" : "signing.amended") }));
    } catch (problem) {
      const stale = staleMessage(problem);
      replace(error, stale ? t("signing.notSignedStale", { reason: stale })
        : t("signing.notSigned", { error: problem.message }), stale ? reloadButton() : null);
      error.dataset.code = problem.code ?? "";
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  }
  return h("section", { class: "signing-panel", "aria-labelledby": "signing-heading" },
    h("h2", { id: "signing-heading" }, t("signing.title")),
    list, files,
    h("form", { class: "sign-form", onSubmit: sign },
      h("label", { for: "impression" }, t("signing.impression")), impression,
      h("p", { class: "muted", id: "impression-help" }, t("signing.impressionHelp", { help: t(kind.help) })),
      h("label", { for: "signer-name" }, t("signing.name")), name,
      button, error));
}
