// The image stage without the workspace bundle: pictures windowed on the server (GET .../render/{image,heatmap,
// outline}.png), stacked <img> layers in a box of the image's aspect. No pan, zoom, measurement or value read-out;
// window, level and slice ask the server for a new picture (debounced). The viewer uses it only when
// ../dist/cornerstone.js is missing (`make web` builds it) and says so above the image. Another series of the study
// or a prior (a view from series_strip.js, `other_series`) is drawn by WADO-RS rendered, without layers.

import { h } from "./dom.js";
import { t } from "./i18n.js";
import { ApiImage } from "./layers.js";

const DEBOUNCE_MS = 150;

/** WADO-RS rendered: instance `sop` of the view's series, windowed on the server, fitted in 1024 pixels. */
function renderedPath(view, sop, width, level) {
  const [study, series, instance] = [view.study_uid, view.series_uid, sop].map(encodeURIComponent);
  const number = (v) => String(Math.round(v * 100) / 100);
  const windowing = width === null ? "" : `window=${number(level)},${number(Math.max(width, 1))}&`; // else the server's
  return `/dicomweb/studies/${study}/series/${series}/instances/${instance}/rendered?${windowing}viewport=1024,1024`;
}

/**
 * The same shape as cs_stage.js's createStage: {stage, start(), dispose()}; start() resolves with the controls.
 * `idPrefix` tells a second stage's elements apart (prior-image, prior-stage).
 */
export function createServerStage(view, base, onState, { idPrefix = "" } = {}) {
  const image = view.image;
  const state = { window: image.window, level: image.level, slice: image.initial_slice };
  const picture = h("img", { id: `${idPrefix}image`, alt: t(view.kind === "ct" ? "stage.ctOf" : "stage.radiographOf",
    { patient: view.patient_id || t("stage.unknown") }) });
  const heat = h("img", { id: `${idPrefix}heatmap`, class: "layer heatmap", alt: "", "aria-hidden": "true",
    hidden: true });
  const outline = h("img", { id: `${idPrefix}outline`, class: "layer outline", alt: "", "aria-hidden": "true" });
  outline.hidden = !view.outlines;
  const layers = [picture, heat, outline].map((img) => new ApiImage(img));
  const [imageLayer, heatLayer, outlineLayer] = layers;
  const box = h("div", { class: "stage-box" }, picture, heat, outline);
  const stage = h("div", { class: "stage", id: `${idPrefix}stage`, tabindex: "0", role: "group" }, box);
  let timer = null;
  const fit = new ResizeObserver(() => { // the largest box of the image's aspect inside the stage
    const scale = Math.min(stage.clientWidth / image.width, stage.clientHeight / image.height);
    box.style.width = `${Math.floor(image.width * scale)}px`;
    box.style.height = `${Math.floor(image.height * scale)}px`;
  });
  fit.observe(stage);

  function load() {
    onState({ ...state });
    window.clearTimeout(timer);
    timer = window.setTimeout(() => {
      const shown = { window: String(state.window), level: String(state.level), slice: String(state.slice) };
      if (view.other_series) {
        const sop = image.sop_instance_uids[state.slice];
        imageLayer.load(renderedPath(view, sop, state.window, state.level), shown, { accept: "image/png" })
          .catch(() => {});
        return;
      }
      const query = `window=${state.window}&level=${state.level}&slice=${state.slice}`;
      imageLayer.load(`${base}/render/image.png?${query}`, shown).catch(() => {});
      if (view.outlines && !outline.hidden) {
        outlineLayer.load(`${base}/render/outline.png?slice=${state.slice}`, { slice: String(state.slice) })
          .catch(() => {});
      }
    }, DEBOUNCE_MS);
  }

  const controls = {
    stage, state, modes: [],
    setWindow(width, level) { Object.assign(state, { window: width, level }); load(); },
    resetWindow() { Object.assign(state, { window: image.window, level: image.level }); load(); },
    setSlice(index) { state.slice = Math.min(image.slices - 1, Math.max(0, index)); load(); },
    moveSlice(delta) { controls.setSlice(state.slice + delta); },
    setHeatmap: (label) => heatLayer.load(`${base}/render/heatmap.png?label=${encodeURIComponent(label)}`, { label }),
    setHeatmapOpacity(percent) { heat.style.opacity = String(percent / 100); },
    setHeatmapVisible(shown) { heat.hidden = !shown; },
    setOutlinesVisible(shown) { outline.hidden = !shown; if (shown) load(); },
    dispose() {
      window.clearTimeout(timer);
      fit.disconnect();
      layers.forEach((layer) => layer.dispose());
    },
  };
  return { stage, start: async () => { load(); return controls; }, dispose: controls.dispose };
}
