// The sign-off panel of the viewer: once the reader has given their verdict on every finding, they write the
// impression and sign; the server writes the final report (FHIR and DICOM SR) and sends it to the PACS. Signing
// again amends. The versions signed so far are listed with who signed and when; the files link to the report.

import { api } from "./api.js";
import { downloadButton } from "./download.js";
import { announce, h, replace, when } from "./dom.js";

const MAX_IMPRESSION = 4000;

function history(list, signatures) {
  replace(list, signatures.length ? signatures.map((s) => h("li", { dataset: { version: String(s.version), status: s.status } },
    h("strong", {}, `Version ${s.version} · ${s.status === "final" ? "Final" : "Amended"}`),
    ` — signed by ${s.signer_name} (${s.signer}), ${when(s.created_at)}`,
    h("blockquote", {}, s.impression)))
    : h("li", { class: "muted" }, "Not signed yet: the AI's findings are preliminary."));
}

/** The sign-off section for a radiograph; `signatures` is GET .../signatures (oldest first). */
export function renderSigning(view, signatures, base) {
  const list = h("ol", { class: "signatures", id: "signatures" });
  history(list, signatures);
  const impression = h("textarea", { id: "impression", rows: 4, maxlength: MAX_IMPRESSION, required: true,
    "aria-describedby": "impression-help" });
  const name = h("input", { type: "text", id: "signer-name", maxlength: 64, autocomplete: "name" });
  const error = h("p", { class: "error", role: "alert", id: "sign-error", hidden: true });
  const files = h("p", { id: "signed-files", class: "downloads", hidden: signatures.length === 0 },
    downloadButton(base, "signed-diagnostic-report.json", "Signed report (FHIR)"),
    downloadButton(base, "signed-report-sr.dcm", "Signed report (DICOM SR)"));
  const button = h("button", { type: "submit", id: "sign" }, signatures.length ? "Amend and sign" : "Sign report");
  async function sign(event) {
    event.preventDefault();
    error.hidden = true;
    button.disabled = true;
    try {
      const signed = await api(`${base}/signatures`, { method: "POST",
        json: { impression: impression.value, signer_name: name.value } });
      signatures.push(signed);
      history(list, signatures);
      files.hidden = false;
      button.textContent = "Amend and sign";
      announce(`Report signed: version ${signed.version}, ${signed.status}`);
    } catch (problem) {
      replace(error, `Not signed: ${problem.message}`);
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
      h("p", { class: "muted", id: "impression-help" },
        "Your conclusion in your own words. Give your verdict on every finding above first."),
      h("label", { for: "signer-name" }, "Name on the report (optional)"), name,
      button, error));
}
