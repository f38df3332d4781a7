// The study's series as a strip of thumbnails over the image (modality, description, number of images, a small
// picture from cds's WADO-RS thumbnail), and a series' display as the stage takes it, built from its WADO-RS metadata:
// instances in display order, size, default window. The AI's own results in the study (reports, segmentations,
// overlays and maps, made by cds) are not acquired images and are left out of the strip.

import { api } from "./api.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";

const NOT_IMAGES = new Set(["SR", "SEG", "KO", "PR", "DOC", "RTSTRUCT", "RTPLAN", "REG", "ECG"]);
const AI_MANUFACTURER = "cds"; // cds.interop.dicom_seg.MANUFACTURER: what the pre-read itself wrote into the study
const THUMBNAIL = "96,96";

const first = (json, tag) => json?.[tag]?.Value?.[0];
const numberOf = (json, tag, fallback) => {
  const value = Number(first(json, tag));
  return Number.isFinite(value) ? value : fallback;
};

/** The study's acquired image series (QIDO-RS), by series number: {uid, modality, description, number, count}. */
export async function studySeries(studyUid) {
  const found = await api(`/dicomweb/studies/${encodeURIComponent(studyUid)}/series?includefield=00080070`,
    { headers: { Accept: "application/dicom+json" } });
  return found.filter((s) => !NOT_IMAGES.has(first(s, "00080060")) && first(s, "00080070") !== AI_MANUFACTURER)
    .map((s) => ({ uid: first(s, "0020000E"), modality: first(s, "00080060") ?? "",
      description: first(s, "0008103E") ?? "", number: first(s, "00200011") ?? null,
      count: numberOf(s, "00201209", 0) }));
}

/** Instances in display order: along the slice normal when they give a plane, else by instance number. */
function ordered(instances) {
  const planes = instances.map((d) => [d["00200037"]?.Value, d["00200032"]?.Value]);
  if (instances.length > 1 && planes.every(([iop, ipp]) => iop?.length === 6 && ipp?.length === 3)) {
    const [r, c] = [planes[0][0].slice(0, 3).map(Number), planes[0][0].slice(3).map(Number)];
    const normal = [r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0]];
    const along = (d) => d["00200032"].Value.reduce((sum, v, i) => sum + Number(v) * normal[i], 0);
    return [...instances].sort((a, b) => along(a) - along(b));
  }
  return [...instances].sort((a, b) => numberOf(a, "00200013", 0) - numberOf(b, "00200013", 0));
}

/**
 * The view the stage shows for series `seriesUid` of study `studyUid` (its instances' DICOM JSON as WADO-RS
 * metadata answers it), on the lines of the viewer's own `view`: no findings, heatmaps or outlines.
 */
export function seriesView(view, studyUid, seriesUid, instances) {
  const sorted = ordered(instances);
  const middle = sorted[Math.floor(sorted.length / 2)];
  const bits = numberOf(middle, "00280101", 12);
  const signed = numberOf(middle, "00280103", 0) === 1;
  const slope = numberOf(middle, "00281053", 1);
  const intercept = numberOf(middle, "00281052", 0);
  const ends = [signed ? -(2 ** (bits - 1)) : 0, signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1]
    .map((v) => v * slope + intercept);
  const [min, max] = [Math.min(...ends), Math.max(...ends)];
  // The file's window; without one, null: the stage then takes the window from the pixels themselves (a window
  // over the whole bit depth would show a 12-bit film stored in 16 bits flat grey).
  const fileWidth = numberOf(middle, "00281051", Number.NaN);
  const width = fileWidth > 0 ? fileWidth : null;
  const level = width === null ? null : numberOf(middle, "00281050", (max + min) / 2);
  const ct = first(middle, "00080060") === "CT";
  return { ...view, kind: ct ? "ct" : "radiograph", study_uid: studyUid, series_uid: seriesUid, findings: [],
    structures: [], outlines: false, other_series: true,
    image: { width: numberOf(middle, "00280011", 1), height: numberOf(middle, "00280010", 1), slices: sorted.length,
      initial_slice: Math.floor(sorted.length / 2), window: width, level, min, max, units: ct ? "HU" : "", sop_instance_uids: sorted.map((d) => first(d, "00080018")) } };
}

/** The series' metadata (WADO-RS), as seriesView takes it. */
export function seriesMetadata(studyUid, seriesUid) {
  return api(`/dicomweb/studies/${encodeURIComponent(studyUid)}/series/${encodeURIComponent(seriesUid)}/metadata`,
    { headers: { Accept: "application/dicom+json" } });
}

/** A picture from the API (with the session's credential) as an object URL; the caller revokes it. */
async function pictureUrl(path, signal) {
  const response = await api(path, { raw: true, signal, headers: { Accept: "image/jpeg" } });
  return URL.createObjectURL(await response.blob());
}

/**
 * The strip of `series` (from studySeries) of study `studyUid`, `selected` pressed; `onChoose(series)` when one is
 * clicked. Answers {element, select(uid), dispose()}.
 */
export function seriesStrip(studyUid, series, selected, onChoose) {
  const controller = new AbortController();
  const urls = [];
  const buttons = series.map((s) => {
    const picture = h("img", { alt: "", class: "series-picture", width: 96, height: 96 });
    pictureUrl(`/dicomweb/studies/${encodeURIComponent(studyUid)}/series/${encodeURIComponent(s.uid)}/thumbnail`
      + `?viewport=${THUMBNAIL}`, controller.signal).then((url) => {
      if (controller.signal.aborted) { // the strip was disposed while the picture came
        URL.revokeObjectURL(url);
        return;
      }
      urls.push(url);
      picture.src = url;
      picture.dataset.loaded = "true";
    }).catch(() => { picture.classList.add("missing"); });
    const label = s.description || t("series.unnamed", { number: s.number ?? "—" });
    return h("button", { type: "button", class: "series-thumb", "aria-pressed": String(s.uid === selected),
      title: label, dataset: { series: s.uid }, onClick: () => onChoose(s) }, picture,
    h("span", { class: "series-text" }, h("span", { class: "series-modality" }, s.modality),
      h("span", { class: "series-description" }, label),
      h("span", { class: "series-count" }, t("series.images", { count: s.count }))));
  });
  const element = h("nav", { class: "series-strip", id: "series-strip", "aria-label": t("series.strip") },
    h("div", { class: "series-list" }, buttons));
  return {
    element,
    select(uid) { buttons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.series === uid))); },
    dispose() { controller.abort(); urls.forEach((url) => URL.revokeObjectURL(url)); },
  };
}
