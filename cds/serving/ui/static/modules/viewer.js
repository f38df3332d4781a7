// The study viewer: the source image windowed on the server (window/level, CT slices), the AI heatmap as a
// layer with a toggle and an opacity slider, CT segmentation outlines, the model's identity and caveat, and the
// findings panel with the reader's review.
//
// Pictures come from GET .../render/{image,heatmap,outline}.png; layers are stacked <img> elements stretched over
// the same box, so a heatmap on the model's grid lies on the image it was computed from. Opacity and visibility
// change in the browser alone; window, level and slice ask the server for a new picture (debounced).

import { api, loadSession } from "./api.js";
import { h, replace, shortUid } from "./dom.js";
import { displayName, renderFindings } from "./findings.js";
import { renderReferral } from "./referral.js";
import { renderSigning } from "./signing.js";
import { ApiImage } from "./layers.js";

const DEBOUNCE_MS = 150;
const CT_PRESETS = [["Soft tissue", 400, 40], ["Lung", 1500, -600], ["Bone", 1800, 400]];
const HEATMAP_METHODS = {
  cam: "Class activation map from the model's own forward pass: where the evidence for the finding lies, on the model's 7×7 grid.",
  occlusion: "Occlusion saliency on the model's grid: where hiding the image lowers the finding most.",
};

function rangeField(id, label, { min, max, step, value }, onInput) {
  const range = h("input", { type: "range", id, min, max, step, value });
  const number = h("input", { type: "number", id: `${id}-value`, min, max, step, value, class: "number",
    "aria-label": `${label} value` });
  range.addEventListener("input", () => { number.value = range.value; onInput(Number(range.value)); });
  number.addEventListener("change", () => {
    const value = Math.min(Number(max), Math.max(Number(min), Number(number.value)));
    number.value = String(value);
    range.value = String(value);
    onInput(value);
  });
  const field = h("div", { class: "field range-field" }, h("label", { for: id }, label), range, number);
  field.set = (value) => { range.value = String(value); number.value = String(value); };
  return field;
}

function header(view) {
  const model = view.model;
  const caveat = model.not_for_diagnostic_use
    ? h("p", { class: "nfdu", role: "note", id: "nfdu" }, h("strong", {}, "Not for diagnostic use."), ` ${model.intended_use}`)
    : h("p", { class: "muted" }, `Intended use: ${model.intended_use}`);
  const facts = [["Patient", view.patient_id || "—"], ["Study", shortUid(view.study_uid)],
    ["Image", view.kind === "ct" ? `CT series, ${view.image.slices} slices` : "Radiograph"],
    ["Model", `${model.name} ${model.version}`]];
  return [h("div", { class: "view-head" },
    h("h1", { id: "viewer-heading", tabindex: "-1" }, "Study viewer"),
    h("dl", { class: "facts" }, facts.map(([term, value]) => h("div", {}, h("dt", {}, term),
      h("dd", { title: term === "Study" ? view.study_uid : null, id: `fact-${term.toLowerCase()}` }, value)))),
    h("a", { href: "#/worklist", class: "back" }, "Back to worklist")), caveat];
}

/** Render the viewer for outcome `uid` of pre-read `jobId`; returns its cleanup. */
export function renderViewer(main, jobId, uid) {
  const base = `/v1/preread/${encodeURIComponent(jobId)}/${encodeURIComponent(uid)}`;
  const layers = [];
  let disposed = false;
  let timer = null;
  replace(main, h("section", { "aria-labelledby": "viewer-heading" }, h("h1", { id: "viewer-heading" }, "Study viewer"),
    h("p", { class: "muted", role: "status" }, "Loading the study…")));

  function build(view, feedback, signatures, outgoing) {
    const image = view.image;
    const s = { window: image.window, level: image.level, slice: image.initial_slice, opacity: 50 };
    const picture = h("img", { id: "image", alt: `${view.kind === "ct" ? "CT slice" : "Radiograph"} of patient `
      + `${view.patient_id || "unknown"}` });
    const heat = h("img", { id: "heatmap", class: "layer heatmap", alt: "", "aria-hidden": "true" });
    const outline = h("img", { id: "outline", class: "layer outline", alt: "", "aria-hidden": "true" });
    heat.style.opacity = String(s.opacity / 100);
    const [imageLayer, heatLayer, outlineLayer] = [picture, heat, outline].map((img) => new ApiImage(img));
    layers.push(imageLayer, heatLayer, outlineLayer);
    const caption = h("figcaption", { id: "image-caption", class: "muted" });
    const stage = h("div", { class: "stage", id: "stage" }, picture, heat, outline);
    stage.style.aspectRatio = `${image.width} / ${image.height}`;

    function describe() {
      const slice = image.slices > 1 ? ` · slice ${s.slice + 1} of ${image.slices}` : "";
      caption.textContent = `Window ${Math.round(s.window)} · level ${Math.round(s.level)}${image.units ? ` ${image.units}` : ""}${slice}`;
    }
    function loadImage() {
      describe();
      window.clearTimeout(timer);
      timer = window.setTimeout(() => {
        const query = `window=${s.window}&level=${s.level}&slice=${s.slice}`;
        imageLayer.load(`${base}/render/image.png?${query}`, { window: String(s.window), level: String(s.level),
          slice: String(s.slice) }).catch((error) => { caption.textContent = `Image not loaded: ${error.message}`; });
        if (view.outlines && !outline.hidden) {
          outlineLayer.load(`${base}/render/outline.png?slice=${s.slice}`, { slice: String(s.slice) }).catch(() => {});
        }
      }, DEBOUNCE_MS);
    }

    const spread = Math.max(image.max - image.min, 1);
    const step = spread > 20 ? 1 : 0.01;
    const windowField = rangeField("window", "Window width", { min: step, max: Math.ceil(spread * 2), step,
      value: s.window }, (v) => { s.window = v; loadImage(); });
    const levelField = rangeField("level", "Window level", { min: Math.floor(image.min - spread / 2),
      max: Math.ceil(image.max + spread / 2), step, value: s.level }, (v) => { s.level = v; loadImage(); });
    function setWindow(width, level) {
      s.window = width;
      s.level = level;
      windowField.set(width);
      levelField.set(level);
      loadImage();
    }
    const presets = (view.kind === "ct" ? CT_PRESETS : []).map(([name, w, l]) => h("button", { type: "button",
      onClick: () => setWindow(w, l) }, name));
    const display = h("fieldset", { class: "controls" }, h("legend", {}, "Display"), windowField, levelField,
      h("div", { class: "buttons" }, presets, h("button", { type: "button", id: "reset-window",
        onClick: () => setWindow(image.window, image.level) }, "Reset window")));

    const controls = [display];
    const withHeatmap = view.findings.filter((f) => f.heatmap);
    if (view.kind !== "ct") {
      controls.push(withHeatmap.length ? heatmapControls(withHeatmap, heat, heatLayer, s, view)
        : h("p", { class: "muted", id: "no-heatmap" }, "No heatmap: the model called no finding positive."));
      heat.hidden = withHeatmap.length === 0;
    } else {
      heat.hidden = true;
      controls.push(sliceControls(image, s, loadImage, stage, outline, view));
    }
    outline.hidden = !view.outlines;
    replace(main, h("section", { class: "viewer", "aria-labelledby": "viewer-heading" }, header(view),
      h("div", { class: "viewer-body" },
        h("figure", { class: "image-column" }, stage, caption),
        h("div", { class: "panel" }, controls, renderFindings(view, feedback, base),
          view.kind === "ct" ? null : renderSigning(signatures, base), renderReferral(jobId, outgoing)))));
    main.querySelector("h1").focus({ preventScroll: true });
    loadImage();
  }

  function heatmapControls(findings, heat, heatLayer, s, view) {
    const toggle = h("input", { type: "checkbox", id: "overlay-toggle", checked: true });
    const strongest = [...findings].sort((a, b) => (b.ratio ?? 0) - (a.ratio ?? 0));
    const which = h("select", { id: "overlay-finding" }, strongest.map((f) => h("option", { value: f.label },
      `${displayName(f.label)} (${f.probability.toFixed(2)}, ${(f.ratio ?? 0).toFixed(1)}× threshold)`)));
    const opacity = h("input", { type: "range", id: "overlay-opacity", min: 0, max: 100, step: 5, value: s.opacity });
    const shown = h("output", { for: "overlay-opacity", id: "overlay-opacity-value" }, `${s.opacity} %`);
    const load = () => heatLayer.load(`${base}/render/heatmap.png?label=${encodeURIComponent(which.value)}`,
      { label: which.value }).catch(() => {});
    toggle.addEventListener("change", () => { heat.hidden = !toggle.checked; });
    which.addEventListener("change", load);
    opacity.addEventListener("input", () => {
      s.opacity = Number(opacity.value);
      heat.style.opacity = String(s.opacity / 100);
      shown.textContent = `${s.opacity} %`;
    });
    load();
    return h("fieldset", { class: "controls" }, h("legend", {}, "AI heatmap"),
      h("div", { class: "field checkbox" }, toggle, h("label", { for: "overlay-toggle" }, "Show AI heatmap")),
      h("div", { class: "field" }, h("label", { for: "overlay-finding" }, "Heatmap of"), which),
      h("div", { class: "field range-field" }, h("label", { for: "overlay-opacity" }, "Heatmap opacity"), opacity, shown),
      h("p", { class: "muted" }, HEATMAP_METHODS[view.heatmap_method] ?? "Saliency on the model's grid."));
  }

  function sliceControls(image, s, loadImage, stage, outline, view) {
    const field = rangeField("slice", "Slice", { min: 1, max: image.slices, step: 1, value: s.slice + 1 },
      (v) => { s.slice = v - 1; loadImage(); });
    const move = (delta) => {
      s.slice = Math.min(image.slices - 1, Math.max(0, s.slice + delta));
      field.set(s.slice + 1);
      loadImage();
    };
    stage.tabIndex = 0;
    stage.setAttribute("role", "group");
    stage.setAttribute("aria-label", "CT image: Up and Down arrows or Page Up and Page Down change the slice");
    stage.addEventListener("keydown", (event) => {
      const delta = { ArrowUp: -1, ArrowDown: 1, PageUp: -10, PageDown: 10 }[event.key];
      if (delta !== undefined) {
        event.preventDefault();
        move(delta);
      }
    });
    const toggle = h("input", { type: "checkbox", id: "outline-toggle", checked: view.outlines, disabled: !view.outlines });
    toggle.addEventListener("change", () => { outline.hidden = !toggle.checked; if (toggle.checked) loadImage(); });
    const legend = view.structures.filter((st) => st.colour).map((st) => {
      const swatch = h("span", { class: "swatch", "aria-hidden": "true" });
      swatch.style.backgroundColor = st.colour;
      return h("li", {}, swatch, displayName(st.label));
    });
    return h("fieldset", { class: "controls" }, h("legend", {}, "Slices and segmentation"), field,
      h("div", { class: "buttons" }, h("button", { type: "button", id: "slice-previous", onClick: () => move(-1) },
        "Previous slice"), h("button", { type: "button", id: "slice-next", onClick: () => move(1) }, "Next slice")),
      h("div", { class: "field checkbox" }, toggle, h("label", { for: "outline-toggle" }, "Show segmentation outlines")),
      h("ul", { class: "legend", "aria-label": "Outline colours" }, legend));
  }

  const outgoing = loadSession()?.hub_site ? api("/v1/referrals?direction=out") : Promise.resolve([]);
  const reads = [api(`${base}/view`), api(`${base}/feedback`), api(`${base}/signatures`), outgoing];
  Promise.all(reads).then(([view, feedback, signatures, referred]) => {
    if (!disposed) build(view, feedback, signatures, referred);
  }).catch((error) => {
    if (disposed) return;
    replace(main, h("section", { class: "card", "aria-labelledby": "viewer-heading" },
      h("h1", { id: "viewer-heading" }, "Study viewer"),
      h("p", { class: "error", role: "alert" }, `The study cannot be shown: ${error.message}`),
      h("p", {}, h("a", { href: "#/worklist" }, "Back to worklist"))));
  });
  return () => {
    disposed = true;
    window.clearTimeout(timer);
    layers.forEach((layer) => layer.dispose());
  };
}
