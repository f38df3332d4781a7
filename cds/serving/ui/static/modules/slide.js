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

import { api, isTransient } from "./api.js";
import { announce, h, replace } from "./dom.js";
import { ApiImage } from "./layers.js";
import { resultText } from "./pathology.js";
import { downloadButton } from "./download.js";
import { renderFindings } from "./findings.js";
import { SLIDE, renderSigning } from "./signing.js";
import { loadVerdicts } from "./versions.js";

const POLL_MS = 1500;
const ZOOMS = [2, 4, 8, 16];
const REGION_SIDE = 512; // pixels of the zoom picture
const BUNDLE_MISSING = "The workspace bundle is missing (cds/serving/ui/static/dist): run `make web` and reload. "
  + "Meanwhile the slide is a thumbnail with a zoom rendered on the server, not the slide viewer.";
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
  const call = r.status === "no_tissue" ? ["No tissue found", "sev-none"]
    : r.score.positive ? [resultText({ ...job, ...r, state: "done", positive: true }), "sev-top"]
      : [resultText({ ...job, ...r, state: "done", positive: false }), "sev-low"];
  const facts = [];
  if (r.score) {
    const s = r.score;
    facts.push(h("div", { class: "score-row" }, h("dt", {}, `Slide score (mean of the top ${s.top_k} patches)`),
      h("dd", { id: "slide-score", class: "numbers" },
        `${s.top_k_mean.toFixed(3)} vs threshold ${s.threshold.toFixed(3)}`, scoreBar(s.top_k_mean, s.threshold))),
    fact("Tumour area", `${(100 * s.tumour_area_fraction).toFixed(1)} % (${s.tumour_tiles} of `
      + `${detail.tiles?.scored ?? "?"} tissue patches at or above the threshold)`, "tumour-area"),
    fact("Mean / highest patch probability", `${s.mean_probability.toFixed(3)} / ${s.max_probability.toFixed(3)}`));
  }
  if (detail.tiles) {
    const t = detail.tiles;
    facts.push(fact("Patches", `${t.scored} scored on a ${t.grid_columns} × ${t.grid_rows} grid at level ${t.level}`
      + `${t.level_mpp ? `, ${t.level_mpp.toFixed(2)} µm/px` : ""}`));
  }
  facts.push(fact("Tissue", `${(100 * detail.source.tissue_fraction).toFixed(1)} % of the slide`),
    fact("Model", `${detail.model.name} ${detail.model.version}`, "slide-model"),
    fact("Input sha256", `${r.input_sha256.slice(0, 16)}…`));
  return h("div", { class: "panel slide-panel" },
    h("p", { class: "call" }, h("span", { class: `badge band ${call[1]}`, id: "slide-call" }, call[0])),
    r.status === "no_tissue" ? h("p", { id: "no-tissue" }, `${sentence(r.reason || "no patch held enough tissue")} `
      + "Nothing was scored.") : null,
    h("dl", { class: "slide-facts" }, facts),
    r.warnings.length ? h("ul", { class: "warnings", "aria-label": "Warnings" }, r.warnings.map((w) => h("li", {}, w)))
      : null,
    h("div", { class: "buttons" }, downloadButton(base, "diagnostic-report.json", "Download FHIR report"),
      downloadButton(base, "result.json", "Download result JSON")));
}

function legend(threshold) {
  const mark = h("span", { class: "mark" });
  mark.style.left = `${threshold * 100}%`;
  return h("div", { class: "heat-legend" }, h("span", { class: "muted" }, "Tumour probability per patch:"),
    h("span", {}, "0"), h("span", { class: "gradient", "aria-hidden": "true" }, mark), h("span", {}, "1"),
    h("span", { class: "muted" }, `(blue low, yellow 0.5, red high; marked: threshold ${threshold.toFixed(2)}, `
      + "patches at or above it more opaque)"));
}

/** The heatmap with its zoom lens, and the zoom panel. */
function zoomViewer(base, detail, layers) {
  const [width, height] = [detail.source.width, detail.source.height];
  const z = { zoom: 4, cx: width / 2, cy: height / 2 };
  const heat = h("img", { id: "slide-heatmap", alt: "Slide thumbnail with the tumour heatmap" });
  const lens = h("span", { class: "lens", "aria-hidden": "true" });
  const stage = h("div", { class: "slide-stage", id: "slide-stage", tabindex: 0, role: "group",
    "aria-label": "Slide heatmap: click, or use the arrow keys, to move the zoomed region; + and − change the zoom" },
  heat, lens);
  stage.style.aspectRatio = `${width} / ${height}`;
  const region = h("img", { id: "zoom-image", alt: "Zoomed region of the slide" });
  const overlay = h("canvas", { id: "zoom-heat", class: "zoom-heat", width: REGION_SIDE, height: REGION_SIDE,
    "aria-hidden": "true" });
  const zoomStage = h("div", { class: "zoom-stage" }, region, overlay);
  const caption = h("figcaption", { id: "zoom-caption", class: "muted" });
  const zoomSelect = h("select", { id: "zoom-level" }, ZOOMS.map((level) => h("option", { value: level,
    selected: level === z.zoom }, `${level}×`)));
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
    caption.textContent = `${z.zoom}× · region ${b.w} × ${b.h} px at (${b.x}, ${b.y}) of ${width} × ${height}`
      + (mpp ? ` · ${((b.w * mpp) / 1000).toFixed(2)} × ${((b.h * mpp) / 1000).toFixed(2)} mm` : "");
    region.alt = `Zoomed region of the slide: ${caption.textContent}`;
    const loaded = await regionImage.load(`${base}/render/region.png?x=${b.x}&y=${b.y}&width=${b.w}&height=${b.h}`
      + `&size=${REGION_SIDE}`, { x: String(b.x), y: String(b.y), side: String(b.w), zoom: String(z.zoom) })
      .catch((error) => { caption.textContent = `Region not loaded: ${error.message}`; return false; });
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
    caption.textContent = `Heatmap not loaded: ${error.message}`;
  });
  return [h("figure", { class: "slide-figure" }, stage, legend(detail.score?.threshold ?? 0.5)),
    h("figure", { class: "zoom-figure" },
      h("div", { class: "zoom-controls" }, h("label", { for: "zoom-level" }, "Zoom"), zoomSelect,
        h("span", { class: "field checkbox" }, toggle, h("label", { for: "zoom-heat-toggle" }, "Heatmap on the zoom"))),
      zoomStage, caption)];
}

function thumbnailOnly(base, detail, layers) {
  const img = h("img", { id: "slide-thumbnail", alt: "The uploaded slide (no heatmap: nothing was scored)" });
  const image = new ApiImage(img);
  layers.push(image);
  image.load(`${base}/render/region.png?size=1024`, { loaded: "true" }).catch(() => {});
  const stage = h("div", { class: "slide-stage" }, img);
  stage.style.aspectRatio = `${detail.source.width} / ${detail.source.height}`;
  return [h("figure", { class: "slide-figure" }, stage,
    h("figcaption", { class: "muted" }, "The slide as uploaded (read from its pyramid); no heatmap, since no patch "
      + "held enough tissue to be scored.")), null];
}

/** The pathologist's review of the AI finding (none without tissue) beside the sign-off panel. */
function review(result, feedback, signatures, base) {
  const f = result.finding;
  const findings = f ? renderFindings({ kind: "slide", findings: [{ ...f,
    ratio: f.threshold ? f.probability / f.threshold : null }] }, feedback, base,
  "The slide-level call against the operating threshold. Accept or reject it; a comment is optional.")
    : h("section", { class: "findings-panel", "aria-labelledby": "findings-heading" },
      h("h2", { id: "findings-heading" }, "AI findings"),
      h("p", { class: "muted", id: "no-findings" }, "No finding to review: nothing was scored."));
  const kind = f ? SLIDE : { ...SLIDE, help: "There is no AI finding to review: say what you see." };
  return h("div", { class: "slide-review" }, h("div", { class: "card" }, findings),
    h("div", { class: "card" }, renderSigning(signatures, base, kind)));
}

/** Render the read of pathology job `jobId` into `main`; returns its cleanup. */
export function renderSlide(main, jobId) {
  const base = `/v1/pathology/jobs/${encodeURIComponent(jobId)}`;
  const layers = [];
  let timer = null;
  let disposed = false;
  const state = h("p", { id: "slide-state", role: "status" }, "Loading the read…");
  const head = (facts) => h("div", { class: "view-head" }, h("h1", { id: "slide-heading" }, "Slide read-out"),
    h("dl", { class: "facts" }, facts), h("a", { href: "#/pathology", class: "back" }, "Back to pathology"));
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
      head([fact("Patient", job.subject || "not given with the upload", "slide-patient"), fact("File", source.name),
        fact("Slide", `${source.width} × ${source.height} px${source.mpp ? `, ${source.mpp} µm/px` : ""}`),
        fact("Model", `${detail.model.name} ${detail.model.version}`)]),
      h("p", { class: caveat ? "nfdu" : "muted", role: "note", id: "nfdu" },
        caveat ? h("strong", {}, "Not for diagnostic use. ") : null, detail.intended_use),
      osd ? null : h("p", { class: "notice", role: "alert", id: "bundle-missing" }, BUNDLE_MISSING),
      h("div", { class: `slide-body ${layout}` }, figure, zoom, resultPanel(job, detail, base)),
      review(job.result, feedback, signatures, base)));
    main.querySelector("h1").focus({ preventScroll: true });
    const call = scored ? resultText({ ...job.result, state: "done", positive: job.result.score.positive })
      : "no tissue found";
    announce(`Slide read done: ${call}`);
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
        state.textContent = `The read failed: ${job.error}`;
        return;
      }
      state.textContent = job.state === "queued" ? "Queued: waiting for a worker…" : "Running: reading the slide…";
      timer = window.setTimeout(poll, POLL_MS);
    } catch (error) {
      if (!disposed) {
        state.className = "error";
        state.textContent = `The read cannot be shown: ${error.message}`;
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
