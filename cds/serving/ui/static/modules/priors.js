// Priors: the patient's earlier studies at the same site (GET .../priors, by the rule the worklist counts them), the
// "Compare with prior" control, and a prior's view for a second stage beside the current one. The server lists only
// the same patient's studies; the prior's images are checked again here (their PatientID must be the current
// study's) before anything of them is shown.

import { api } from "./api.js";
import { day, h } from "./dom.js";
import { t } from "./i18n.js";
import { seriesMetadata, seriesView, studySeries } from "./series_strip.js";

/** The outcome's priors, newest first: [{study_uid, study_date, description, accession_number, modalities}]. */
export function loadPriors(base) {
  return api(`${base}/priors`);
}

/** A study's label: its date and description ("12 Mar 2024 · CHEST PA"); either may be missing. */
export function studyLabel(date, description) {
  return [day(date) || t("priors.undated"), description].filter(Boolean).join(" · ");
}

/**
 * The control: a choice of `priors` and a button that opens the chosen one beside the current study
 * (`onCompare(prior)`) or, while one is open, closes it (`onClose()`). Answers {element, toggle(), setOpen(open)}.
 */
export function priorControl(priors, onCompare, onClose) {
  const choice = h("select", { id: "prior-choice" }, priors.map((p, index) => h("option", { value: String(index) },
    `${studyLabel(p.study_date, p.description)}${p.modalities.length ? ` (${p.modalities.join(", ")})` : ""}`)));
  let open = false;
  const button = h("button", { type: "button", id: "compare-prior", "aria-keyshortcuts": "v", "aria-pressed": "false" },
    t("priors.compare"));
  const setOpen = (value) => {
    open = value;
    button.setAttribute("aria-pressed", String(open));
    button.textContent = open ? t("priors.close") : t("priors.compare");
  };
  const toggle = () => (open ? onClose() : onCompare(priors[Number(choice.value)]));
  button.addEventListener("click", toggle);
  choice.addEventListener("change", () => { if (open) onCompare(priors[Number(choice.value)]); });
  const element = h("fieldset", { class: "controls priors", id: "priors" },
    h("legend", {}, t("priors.title", { count: priors.length })),
    h("div", { class: "field" }, h("label", { for: "prior-choice" }, t("priors.choose")), choice),
    h("div", { class: "buttons" }, button));
  return { element, toggle, setOpen };
}

/**
 * The view of `prior` for a stage: its series of the current one's modality (else its first image series), as
 * seriesView builds it, with `prior` attached. Throws when the prior has no image series or its images name another
 * patient than `view`.
 */
export async function priorView(view, prior, modality) {
  const series = await studySeries(prior.study_uid);
  const chosen = series.find((s) => s.modality === modality) ?? series[0];
  if (!chosen) throw new Error(t("priors.noImages"));
  const instances = await seriesMetadata(prior.study_uid, chosen.uid);
  const patients = new Set(instances.map((d) => d["00100020"]?.Value?.[0] ?? ""));
  if (patients.size !== 1 || !patients.has(view.patient_id)) throw new Error(t("priors.otherPatient"));
  return { ...seriesView(view, prior.study_uid, chosen.uid, instances), prior };
}

/** The label of the study `view` shows (date and description from one of its instances' WADO-RS metadata). */
export async function viewLabel(view) {
  const [study, series, sop] = [view.study_uid, view.series_uid, view.image.sop_instance_uids[0]]
    .map(encodeURIComponent);
  const [instance] = await api(`/dicomweb/studies/${study}/series/${series}/instances/${sop}/metadata`,
    { headers: { Accept: "application/dicom+json" } });
  return studyLabel(instance?.["00080020"]?.Value?.[0] ?? "", instance?.["00081030"]?.Value?.[0] ?? "");
}
