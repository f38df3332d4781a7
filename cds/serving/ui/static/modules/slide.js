// One slide read: the job's state until it is done, then the slide with the tumour heatmap, the slide-level score
// against the operating threshold, the tumour area fraction, the call (or "no tissue found"), the model and its
// caveat. The slide is shown on OpenSeadragon (slide_osd.js: Deep Zoom tiles from the slide's pyramid, zoom to
// native pixels, scale bar, the heatmap as a layer with an opacity control) when the workspace bundle is built
// (`make web`). Without it the view says so and falls back to the thumbnail with the heatmap (heatmap.png) and a
// server-rendered zoom: a region of the slide read at the pyramid level that fits (GET .../render/region.png), with
// the heatmap's matching crop laid over it. Click the heatmap, or focus it and use the arrow keys, to move the
// region; + and - (or the Zoom list) change the magnification. Below, the pathologist's review: accept or reject the AI's
// slide-level finding with an optional comment (POST .../feedback), and the sign-off panel (impression, name, the
// versions signed, the signed FHIR report); a slide without tissue has no finding and is signed on the impression.
// Why nothing was scored and the warnings are said from their phrases (phrases.js), the model's intended use as
// /v1/models gives it in the request's language.

import { api, isTransient } from "./api.js";
import { announce, decimal, h, replace } from "./dom.js";
import { showError } from "./error_view.js";
import { t } from "./i18n.js";
import { known, phrasedList, phraseText } from "./phrases.js";
import { ApiImage } from "./layers.js";
import { percent, resultText } from "./pathology.js";
import { downloadButton } from "./download.js";
import { displayName, renderFindings } from "./findings.js";
import { SLIDE, renderSigning } from "./signing.js";
import { loadVerdicts } from "./versions.js";

const POLL_MS = 1500;
const ZOOMS = [2, 4, 8, 16];
const REGION_SIDE = 512; // pixels of the zoom picture
let viewerModule = null;

/** The OpenSeadragon slide viewer module (slide_osd.js), or null without the workspace bundle. */
function loadViewerModule() {
  viewerModule ??= import("./slide_osd.js").catch(() => null);
  return viewerModule;
}

/** `text` as a sentence: capital first letter, one full stop. */
function sentence(text) {
  const trimmed = text.trim().replace(/\.$/, "");
  return `${trimmed.charAt(0).toUpperCase()}${trimmed.slice(1)}.`;
}

/** A size in pixels ("3072 × 2048 px"), with the resolution when the slide states one. */
function sizeText(width, height, mpp) {
  const size = t("unit.size", { width: decimal(width), height: decimal(height) });
  return mpp ? t("unit.withResolution", { size, resolution: t("unit.umPerPx", { value: String(mpp) }) }) : size;
}

function fact(term, value, id) {
  return h("div", {}, h("dt", {}, term), h("dd", { id }, value));
}

function scoreBar(value, threshold) {
  const fill = h("span", { class: "fill" });
  const mark = h("span", { class: "mark" });
  fill.style.width = `${Math.min(1, Math.max(0, value)) * 100}%`;
  mark.style.left = `${Math.min(1, Math.max(0, threshold)) * 100}%`;
  return h("span", { class: "bar wide", "aria-hidden": "true" }, fill, mark);
}

function resultPanel(job, detail, base) {
  const r = job.result;
  const call = r.status === "no_tissue" ? [t("pathology.noTissue"), "sev-none"]
    : r.score.positive ? [resultText({ ...job, ...r, state: "done", positive: true }), "sev-top"]
      : [resultText({ ...job, ...r, state: "done", positive: false }), "sev-low"];
  const facts = [];
  if (r.score) {
    const s = r.score;
    facts.push(h("div", { class: "score-row" }, h("dt", {}, t("slide.score", { count: s.top_k })),
      h("dd", { id: "slide-score", class: "numbers" },
        t("slide.scoreVersus", { score: decimal(s.top_k_mean, 3), threshold: decimal(s.threshold, 3) }),
        scoreBar(s.top_k_mean, s.threshold))),
    fact(t("slide.area"), t("slide.areaValue", { percent: percent(s.tumour_area_fraction), tumour: s.tumour_tiles,
      scored: detail.tiles?.scored ?? "?" }), "tumour-area"),
    fact(t("slide.meanMax"), `${decimal(s.mean_probability, 3)} / ${decimal(s.max_probability, 3)}`));
  }
  if (detail.tiles) {
    const tiles = detail.tiles;
    const patches = t("slide.patchesValue", { scored: tiles.scored, columns: tiles.grid_columns,
      rows: tiles.grid_rows, level: tiles.level });
    facts.push(fact(t("slide.patches"), tiles.level_mpp ? t("unit.withResolution", { size: patches,
      resolution: t("unit.umPerPx", { value: decimal(tiles.level_mpp, 2) }) }) : patches));
  }
  facts.push(fact(t("slide.tissue"), t("slide.tissueValue", { percent: percent(detail.source.tissue_fraction) })),
    fact(t("read.model"), `${detail.model.name} ${detail.model.version}`, "slide-model"),
    fact(t("slide.inputSha"), `${r.input_sha256.slice(0, 16)}…`));
  return h("div", { class: "panel slide-panel" },
    h("p", { class: "call" }, h("span", { class: `badge band ${call[1]}`, id: "slide-call" }, call[0])),
    r.status === "no_tissue" ? h("p", { id: "no-tissue" }, t("slide.nothingScored", { reason: known(r.reason_phrase)
      ? phraseText(r.reason_phrase, r.reason) : sentence(r.reason || t("slide.noTissueReason")) })) : null,
    h("dl", { class: "slide-facts" }, facts),
    r.warnings.length ? h("ul", { class: "warnings", "aria-label": t("common.warnings") },
      phrasedList(r.warnings, r.warning_phrases, { label: displayName }).map((w) => h("li", {}, w))) : null,
    h("div", { class: "buttons" }, downloadButton(base, "diagnostic-report.json", t("slide.downloadFhir")),
      downloadButton(base, "result.json", t("slide.downloadJson"))));
}

function legend(threshold) {
  const mark = h("span", { class: "mark" });
  mark.style.left = `${threshold * 100}%`;
  return h("div", { class: "heat-legend" }, h("span", { class: "muted" }, t("slide.legendTitle")),
    h("span", {}, decimal(0)), h("span", { class: "gradient", "aria-hidden": "true" }, mark), h("span", {}, decimal(1)),
    h("span", { class: "muted" }, t("slide.legendText", { threshold: decimal(threshold, 2) })));
}

/** The heatmap with its zoom lens, and the zoom panel. */
function zoomViewer(base, detail, layers) {
  const [width, height] = [detail.source.width, detail.source.height];
  const z = { zoom: 4, cx: width / 2, cy: height / 2 };
  const heat = h("img", { id: "slide-heatmap", alt: t("slide.heatmapAlt") });
  const lens = h("span", { class: "lens", "aria-hidden": "true" });
  const stage = h("div", { class: "slide-stage", id: "slide-stage", tabindex: 0, role: "group",
    "aria-label": t("slide.stageLabel") },
  heat, lens);
  stage.style.aspectRatio = `${width} / ${height}`;
  const region = h("img", { id: "zoom-image", alt: t("slide.zoomAlt") });
  const overlay = h("canvas", { id: "zoom-heat", class: "zoom-heat", width: REGION_SIDE, height: REGION_SIDE,
    "aria-hidden": "true" });
  const zoomStage = h("div", { class: "zoom-stage" }, region, overlay);
  const caption = h("figcaption", { id: "zoom-caption", class: "muted" });
  const zoomSelect = h("select", { id: "zoom-level" }, ZOOMS.map((level) => h("option", { value: level,
    selected: level === z.zoom }, `${decimal(level)}×`)));
  const toggle = h("input", { type: "checkbox", id: "zoom-heat-toggle", checked: true });
  const regionImage = new ApiImage(region);
  layers.push(regionImage);

  function box() {
    const side = Math.max(width, height) / z.zoom;
    const w = Math.min(side, width);
    const hgt = Math.min(side, height);
    z.cx = Math.min(width - w / 2, Math.max(w / 2, z.cx));
    z.cy = Math.min(height - hgt / 2, Math.max(hgt / 2, z.cy));
    return { x: Math.round(z.cx - w / 2), y: Math.round(z.cy - hgt / 2), w: Math.round(w), h: Math.round(hgt) };
  }
  function drawOverlay(b) {
    const context = overlay.getContext("2d");
    overlay.width = region.naturalWidth || REGION_SIDE;
    overlay.height = region.naturalHeight || REGION_SIDE;
    context.imageSmoothingEnabled = false;
    context.clearRect(0, 0, overlay.width, overlay.height);
    if (!heat.naturalWidth) return;
    const sx = heat.naturalWidth / width;
    const sy = heat.naturalHeight / height;
    context.drawImage(heat, b.x * sx, b.y * sy, b.w * sx, b.h * sy, 0, 0, overlay.width, overlay.height);
  }
  async function update() {
    const b = box();
    Object.assign(lens.style, { left: `${(100 * b.x) / width}%`, top: `${(100 * b.y) / height}%`,
      width: `${(100 * b.w) / width}%`, height: `${(100 * b.h) / height}%` });
    const mpp = detail.source.mpp;
    const [zoom, x, y, w, hgt, slideWidth, slideHeight] = [z.zoom, b.x, b.y, b.w, b.h, width, height]
      .map((value) => decimal(value));
    caption.textContent = t("slide.zoomCaption", { zoom, width: w, height: hgt, x, y, slideWidth, slideHeight })
      + (mpp ? ` · ${t("unit.sizeMm", { width: decimal((b.w * mpp) / 1000, 2),
        height: decimal((b.h * mpp) / 1000, 2) })}` : "");
    region.alt = t("slide.zoomAltOf", { caption: caption.textContent });
    const loaded = await regionImage.load(`${base}/render/region.png?x=${b.x}&y=${b.y}&width=${b.w}&height=${b.h}`
      + `&size=${REGION_SIDE}`, { x: String(b.x), y: String(b.y), side: String(b.w), zoom: String(z.zoom) })
      .catch((error) => { caption.textContent = t("slide.regionFailed", { error: error.message }); return false; });
    if (loaded) {
      zoomStage.style.aspectRatio = `${b.w} / ${b.h}`;
      drawOverlay(b);
    }
  }
  function setZoom(level) {
    z.zoom = level;
    zoomSelect.value = String(level);
    update();
  }
  stage.addEventListener("click", (event) => {
    const rect = heat.getBoundingClientRect();
    z.cx = ((event.clientX - rect.left) / rect.width) * width;
    z.cy = ((event.clientY - rect.top) / rect.height) * height;
    update();
  });
  stage.addEventListener("keydown", (event) => {
    const step = Math.max(width, height) / z.zoom / 4;
    const move = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[event.key];
    const index = ZOOMS.indexOf(z.zoom);
    if (move) {
      z.cx += move[0];
      z.cy += move[1];
      update();
    } else if ((event.key === "+" || event.key === "=") && index < ZOOMS.length - 1) setZoom(ZOOMS[index + 1]);
    else if (event.key === "-" && index > 0) setZoom(ZOOMS[index - 1]);
    else return;
    event.preventDefault();
  });
  zoomSelect.addEventListener("change", () => setZoom(Number(zoomSelect.value)));
  toggle.addEventListener("change", () => { overlay.hidden = !toggle.checked; });

  const heatImage = new ApiImage(heat);
  layers.push(heatImage);
  heatImage.load(`${base}/heatmap.png`, { loaded: "true" }).then(update).catch((error) => {
    caption.textContent = t("slide.heatmapFailed", { error: error.message });
  });
  return [h("figure", { class: "slide-figure" }, stage, legend(detail.score?.threshold ?? 0.5)),
    h("figure", { class: "zoom-figure" },
      h("div", { class: "zoom-controls" }, h("label", { for: "zoom-level" }, t("slide.zoom")), zoomSelect,
        h("span", { class: "field checkbox" }, toggle, h("label", { for: "zoom-heat-toggle" }, t("slide.zoomHeat")))),
      zoomStage, caption)];
}

function thumbnailOnly(base, detail, layers) {
  const img = h("img", { id: "slide-thumbnail", alt: t("slide.thumbnailAlt") });
  const image = new ApiImage(img);
  layers.push(image);
  image.load(`${base}/render/region.png?size=1024`, { loaded: "true" }).catch(() => {});
  const stage = h("div", { class: "slide-stage" }, img);
  stage.style.aspectRatio = `${detail.source.width} / ${detail.source.height}`;
  return [h("figure", { class: "slide-figure" }, stage,
    h("figcaption", { class: "muted" }, t("slide.thumbnailCaption"))), null];
}

/** The pathologist's review of the AI finding (none without tissue) beside the sign-off panel. */
function review(result, feedback, signatures, base) {
  const f = result.finding;
  const findings = f ? renderFindings({ kind: "slide", findings: [{ ...f,
    ratio: f.threshold ? f.probability / f.threshold : null }] }, feedback, base,
  t("slide.findingHelp"))
    : h("section", { class: "findings-panel", "aria-labelledby": "findings-heading" },
      h("h2", { id: "findings-heading" }, t("findings.title")),
      h("p", { class: "muted", id: "no-findings" }, t("slide.noFinding")));
  const kind = f ? SLIDE : { ...SLIDE, help: "slide.signHelpNoFinding" }; // a message key, as SLIDE's own
  return h("div", { class: "slide-review" }, h("div", { class: "card" }, findings),
    h("div", { class: "card" }, renderSigning(signatures, base, kind)));
}

/** Render the read of pathology job `jobId` into `main`; returns its cleanup. */
export function renderSlide(main, jobId) {
  const base = `/v1/pathology/jobs/${encodeURIComponent(jobId)}`;
  const layers = [];
  let timer = null;
  let disposed = false;
  const state = h("p", { id: "slide-state", role: "status" }, t("read.loading"));
  const head = (facts) => h("div", { class: "view-head" }, h("h1", { id: "slide-heading" }, t("slide.title")),
    h("dl", { class: "facts" }, facts), h("a", { href: "#/pathology", class: "back" }, t("slide.back")));
  replace(main, h("section", { "aria-labelledby": "slide-heading" }, head([]), state));

  async function show(job) {
    const [name, version = ""] = job.result.model.split(":");
    const [detail, model, feedback, signatures, osd] = await Promise.all([api(`${base}/result.json`),
      api(`/v1/models/${encodeURIComponent(name)}?version=${encodeURIComponent(version)}`).catch(() => null),
      loadVerdicts(base), api(`${base}/signatures`), loadViewerModule()]);
    if (disposed) return;
    const caveat = model === null || model.spec.not_for_diagnostic_use; // unknown model: the caveat stays on
    const scored = job.result.status === "scored";
    const source = detail.source;
    let figure;
    let zoom = null;
    if (osd) {
      const slideViewer = osd.createSlideViewer(base, detail, { heatmap: scored,
        legend: scored ? legend(detail.score?.threshold ?? 0.5) : null });
      layers.push(slideViewer);
      figure = slideViewer.figure;
    } else {
      [figure, zoom] = scored ? zoomViewer(base, detail, layers) : thumbnailOnly(base, detail, layers);
    }
    const layout = osd ? "osd" : scored ? "" : "no-zoom";
    replace(main, h("section", { class: "slide-view", "aria-labelledby": "slide-heading" },
      head([fact(t("read.patient"), job.subject || t("read.patientNotGiven"), "slide-patient"),
        fact(t("read.file"), source.name),
        fact(t("slide.fact.slide"), sizeText(source.width, source.height, source.mpp))]), // the model: in the panel
      h("p", { class: caveat ? "nfdu" : "muted", role: "note", id: "nfdu" },
        caveat ? h("strong", {}, t("viewer.nfdu")) : null, caveat ? " " : null,
        model?.intended_use ?? detail.intended_use),
      osd ? null : h("p", { class: "notice", role: "alert", id: "bundle-missing" }, t("slide.bundleMissing")),
      h("div", { class: `slide-body ${layout}` }, figure, zoom, resultPanel(job, detail, base)),
      review(job.result, feedback, signatures, base)));
    main.querySelector("h1").focus({ preventScroll: true });
    const call = scored ? resultText({ ...job.result, state: "done", positive: job.result.score.positive })
      : t("pathology.noTissue");
    announce(t("slide.announce", { call }));
  }

  async function poll() {
    try {
      const job = await api(base);
      if (disposed) return;
      if (job.state === "done") {
        await show(job);
        return;
      }
      if (job.state === "failed") {
        state.className = "error";
        showError(state, job.error, (main) => t("read.failed", { error: main }));
        return;
      }
      state.textContent = t(job.state === "queued" ? "read.queued" : "slide.running");
      timer = window.setTimeout(poll, POLL_MS);
    } catch (error) {
      if (!disposed) {
        state.className = "error";
        showError(state, error, (main) => t("read.cannotShow", { error: main }));
        if (isTransient(error)) timer = window.setTimeout(poll, POLL_MS); // the server is away: keep asking
      }
    }
  }
  poll();
  return () => {
    disposed = true;
    window.clearTimeout(timer);
    layers.forEach((layer) => layer.dispose());
  };
}
