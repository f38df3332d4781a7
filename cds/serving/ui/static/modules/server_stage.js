// The image stage without the workspace bundle: pictures windowed on the server (GET .../render/{image,heatmap,
// outline}.png), stacked <img> layers in a box of the image's aspect. No pan, zoom, measurement or value read-out;
// window, level and slice ask the server for a new picture (debounced). The viewer uses it only when
// ../dist/cornerstone.js is missing (`make web` builds it) and says so above the image.

import { h } from "./dom.js";
import { t } from "./i18n.js";
import { ApiImage } from "./layers.js";

const DEBOUNCE_MS = 150;

/** The same shape as cs_stage.js's createStage: {stage, start(), dispose()}; start() resolves with the controls. */
export function createServerStage(view, base, onState) {
  const image = view.image;
  const state = { window: image.window, level: image.level, slice: image.initial_slice };
  const picture = h("img", { id: "image", alt: t(view.kind === "ct" ? "stage.ctOf" : "stage.radiographOf",
    { patient: view.patient_id || t("stage.unknown") }) });
  const heat = h("img", { id: "heatmap", class: "layer heatmap", alt: "", "aria-hidden": "true", hidden: true });
  const outline = h("img", { id: "outline", class: "layer outline", alt: "", "aria-hidden": "true" });
  outline.hidden = !view.outlines;
  const layers = [picture, heat, outline].map((img) => new ApiImage(img));
  const [imageLayer, heatLayer, outlineLayer] = layers;
  const box = h("div", { class: "stage-box" }, picture, heat, outline);
  const stage = h("div", { class: "stage", id: "stage", tabindex: "0", role: "group" }, box);
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
      const query = `window=${state.window}&level=${state.level}&slice=${state.slice}`;
      imageLayer.load(`${base}/render/image.png?${query}`, { window: String(state.window),
        level: String(state.level), slice: String(state.slice) }).catch(() => {});
      if (view.outlines && !outline.hidden) {
        outlineLayer.load(`${base}/render/outline.png?slice=${state.slice}`, { slice: String(state.slice) })
          .catch(() => {});
      }
    }, DEBOUNCE_MS);
  }

  const controls = {
    stage, state, modes: [],
    setWindow(width, level) { Object.assign(state, { window: width, level }); load(); },
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
