// The study viewer: the image stage, window/level with presets, the reading tools, the AI heatmap as a layer with
// a toggle, an opacity slider and a fixed-scale legend, CT slices and segmentation outlines, the model's identity
// and caveat, keyboard shortcuts, and the findings panel with the reader's review, sign-off and referral.
//
// The stage is Cornerstone3D on the study's own pixels from WADO-RS (cs_stage.js) when the workspace bundle is
// built (`make web`); without it the viewer says so and shows the server-rendered picture (server_stage.js).
// Timings (open → first image, each window/level change → on screen) are kept in window.cdsViewerTimings.

import { api, isTransient, loadSession } from "./api.js";
import { h, replace, shortUid } from "./dom.js";
import { displayName, renderFindings } from "./findings.js";
import { t } from "./i18n.js";
import { heatLegend } from "./overlays.js";
import { renderReferral } from "./referral.js";
import { createServerStage } from "./server_stage.js";
import { renderSigning } from "./signing.js";
import { loadVerdicts } from "./versions.js";
import { shortcutHelp, studyNeighbours, toolControls } from "./viewer_tools.js";

const CT_PRESETS = [["soft", 400, 40, "7"], ["lung", 1500, -600, "8"], ["bone", 1800, 400, "9"]]; // viewer.preset.*
const HEATMAP_METHODS = ["cam", "occlusion"]; // described by viewer.method.<method>

function rangeField(id, label, { min, max, step, value }, onInput) {
  const range = h("input", { type: "range", id, min, max, step, value });
  const number = h("input", { type: "number", id: `${id}-value`, min, max, step, value, class: "number",
    "aria-label": t("viewer.valueOf", { label }) });
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

function header(view, neighbours) {
  const model = view.model;
  const caveat = model.not_for_diagnostic_use
    ? h("p", { class: "nfdu", role: "note", id: "nfdu" }, h("strong", {}, t("viewer.nfdu")), ` ${model.intended_use}`)
    : h("p", { class: "muted" }, t("viewer.intendedUse", { use: model.intended_use }));
  const facts = [["patient", view.patient_id || "—"], ["study", shortUid(view.study_uid)],
    ["image", view.kind === "ct" ? t("viewer.ctSeries", { slices: view.image.slices }) : t("viewer.radiograph")],
    ["model", `${model.name} ${model.version}`]];
  return [h("div", { class: "view-head" },
    h("h1", { id: "viewer-heading", tabindex: "-1" }, t("viewer.title")),
    h("dl", { class: "facts" }, facts.map(([term, value]) => h("div", {}, h("dt", {}, t(`viewer.fact.${term}`)),
      h("dd", { title: term === "study" ? view.study_uid : null, id: `fact-${term}` }, value)))),
    neighbours, h("a", { href: "#/worklist", class: "back" }, t("viewer.back"))), caveat];
}

let stageModule = null;

/** The Cornerstone stage module, started (once per page), or null without the bundle. */
function loadStageModule() {
  stageModule ??= import("./cs_stage.js").then(async (module) => { await module.initialise(); return module; },
    () => null);
  return stageModule;
}

/** Load and start Cornerstone while the reader is elsewhere (the worklist), so a study opens without waiting. */
export function preloadViewer() {
  const later = window.requestIdleCallback ?? ((fn) => window.setTimeout(fn, 200));
  later(() => loadStageModule());
}

/** The Cornerstone stage, or the server-rendered one with the reason when the bundle is missing. */
async function makeStage(module, view, base, onState, timings) {
  if (!module) return { ...createServerStage(view, base, onState), notice: t("viewer.bundleMissing") };
  return { ...(await module.createStage(view, base, onState, timings)), notice: null };
}

/** The image box as tall as the window leaves below its top (caption and read-out under it), at least 320 px. */
function fitStageHeight(stageElement) {
  const box = stageElement.querySelector(".cs-viewport") ?? stageElement;
  const available = window.innerHeight - (box.getBoundingClientRect().top + window.scrollY) - 72;
  box.style.height = `${Math.round(Math.max(320, Math.min(available, box.clientWidth * 1.25)))}px`;
}

/** Render the viewer for outcome `uid` of pre-read `jobId`; returns its cleanup. */
export function renderViewer(main, jobId, uid) {
  const base = `/v1/preread/${encodeURIComponent(jobId)}/${encodeURIComponent(uid)}`;
  const timings = { opened: performance.now(), firstImage: null, windowLevel: [] };
  const stageReady = loadStageModule(); // (if not loaded yet) while the study's data is on its way
  window.cdsViewerTimings = timings;
  let disposed = false;
  let sliceField = null;
  let stage = null;
  let controls = null;
  const cleanups = [];
  replace(main, h("section", { "aria-labelledby": "viewer-heading" }, h("h1", { id: "viewer-heading" }, t("viewer.title")),
    h("p", { class: "muted", role: "status" }, t("viewer.loading"))));

  async function build(view, feedback, signatures, outgoing) {
    timings.dataLoaded = performance.now();
    const image = view.image;
    const ct = view.kind === "ct";
    const caption = h("figcaption", { id: "image-caption", class: "muted" });
    const spread = Math.max(image.max - image.min, 1);
    const step = spread > 20 ? 1 : 0.01;
    const windowField = rangeField("window", t("viewer.windowWidth"), { min: step, max: Math.ceil(spread * 2), step,
      value: image.window }, (v) => controls?.setWindow(v, controls.state.level));
    const levelField = rangeField("level", t("viewer.windowLevel"), { min: Math.floor(image.min - spread / 2),
      max: Math.ceil(image.max + spread / 2), step, value: image.level }, (v) => controls?.setWindow(controls.state.window, v));
    function onState(state) {
      const slice = image.slices > 1 ? t("viewer.sliceOf", { slice: state.slice + 1, slices: image.slices }) : "";
      const where = state.position !== undefined ? t("viewer.position", { position: state.position }) : "";
      caption.textContent = t("viewer.caption", { window: String(Math.round(state.window)),
        level: String(Math.round(state.level)) })
        + `${image.units ? ` ${image.units}` : ""}${slice}${where}`;
      if (document.activeElement?.id !== "window-value") windowField.set(state.window);
      if (document.activeElement?.id !== "level-value") levelField.set(state.level);
      sliceField?.set(state.slice + 1);
    }
    stage = await makeStage(await stageReady, view, base, onState, timings);
    if (disposed) return stage.dispose();
    const presets = (ct ? CT_PRESETS : []).map(([name, w, l, key]) => h("button", { type: "button",
      "aria-keyshortcuts": key, onClick: () => controls?.setWindow(w, l) }, t(`viewer.preset.${name}`)));
    const display = h("fieldset", { class: "controls" }, h("legend", {}, t("viewer.display")), windowField, levelField,
      h("div", { class: "buttons" }, presets, h("button", { type: "button", id: "reset-window",
        onClick: () => controls?.setWindow(image.window, image.level) }, t("viewer.resetWindow"))));
    const panel = [display];
    const withHeatmap = view.findings.filter((f) => f.heatmap);
    if (!ct) {
      panel.push(withHeatmap.length ? heatmapControls(withHeatmap, view)
        : h("p", { class: "muted", id: "no-heatmap" }, t("viewer.noHeatmap")));
    } else {
      panel.push(sliceControls(view));
    }
    const neighbours = h("div", { class: "study-nav" });
    const notice = stage.notice ? h("p", { class: "notice", role: "alert", id: "bundle-missing" }, stage.notice) : null;
    const toolbar = h("div", { class: "cs-tools", id: "cs-tools" });
    replace(main, h("section", { class: "viewer", "aria-labelledby": "viewer-heading" }, header(view, neighbours),
      notice, h("div", { class: "viewer-body" },
        h("figure", { class: "image-column" }, toolbar, stage.stage, caption),
        h("div", { class: "panel" }, panel, renderFindings(view, feedback, base),
          ct ? null : renderSigning(signatures, base), renderReferral(jobId, outgoing), shortcutHelp(ct, !!stage.notice)))));
    main.querySelector("h1").focus({ preventScroll: true });
    const fitHeight = () => fitStageHeight(stage.stage);
    const above = new ResizeObserver(fitHeight); // what sits above the image grows as it fills in
    [main.querySelector(".view-head"), main.querySelector(".nfdu"), toolbar].forEach((e) => e && above.observe(e));
    fitHeight();
    window.addEventListener("resize", fitHeight);
    cleanups.push(() => { above.disconnect(); window.removeEventListener("resize", fitHeight); });
    controls = await stage.start();
    if (disposed) return undefined;
    controls.onState = onState;
    if (controls.modes.length) {
      const { toolbar: buttons, list } = toolControls(controls);
      replace(toolbar, buttons);
      stage.stage.append(list);
    }
    initialOverlays(view, withHeatmap);
    cleanups.push(studyNeighbours(neighbours, jobId, uid));
    cleanups.push(keyboard(view));
    return undefined;
  }

  let heatToggle = null;
  let outlineToggle = null;
  function initialOverlays(view, withHeatmap) {
    if (withHeatmap.length) {
      const which = main.querySelector("#overlay-finding");
      controls.setHeatmapOpacity(Number(main.querySelector("#overlay-opacity").value));
      controls.setHeatmap(which.value).catch(() => {});
      controls.setHeatmapVisible(true);
    }
    if (view.outlines) controls.setOutlinesVisible(true);
  }

  function heatmapControls(findings, view) {
    heatToggle = h("input", { type: "checkbox", id: "overlay-toggle", checked: true, "aria-keyshortcuts": "h" });
    const strongest = [...findings].sort((a, b) => (b.ratio ?? 0) - (a.ratio ?? 0));
    const which = h("select", { id: "overlay-finding" }, strongest.map((f) => h("option", { value: f.label },
      t("viewer.heatOption", { name: displayName(f.label), probability: f.probability.toFixed(2),
        ratio: (f.ratio ?? 0).toFixed(1) }))));
    const opacity = h("input", { type: "range", id: "overlay-opacity", min: 0, max: 100, step: 5, value: 50 });
    const shown = h("output", { for: "overlay-opacity", id: "overlay-opacity-value" }, "50 %");
    heatToggle.addEventListener("change", () => controls?.setHeatmapVisible(heatToggle.checked));
    which.addEventListener("change", () => controls?.setHeatmap(which.value).catch(() => {}));
    opacity.addEventListener("input", () => {
      controls?.setHeatmapOpacity(Number(opacity.value));
      shown.textContent = `${opacity.value} %`;
    });
    return h("fieldset", { class: "controls" }, h("legend", {}, t("viewer.heatmap")),
      h("div", { class: "field checkbox" }, heatToggle, h("label", { for: "overlay-toggle" }, t("viewer.showHeatmap"))),
      h("div", { class: "field" }, h("label", { for: "overlay-finding" }, t("viewer.heatmapOf")), which),
      h("div", { class: "field range-field" }, h("label", { for: "overlay-opacity" }, t("viewer.heatmapOpacity")), opacity,
        shown),
      heatLegend(view.heatmap_scale, view.heatmap_floor),
      h("p", { class: "muted" }, t(`viewer.method.${HEATMAP_METHODS.includes(view.heatmap_method) ? view.heatmap_method
        : "other"}`)));
  }

  function sliceControls(view) {
    const image = view.image;
    const field = rangeField("slice", t("viewer.slice"), { min: 1, max: image.slices, step: 1, value: image.initial_slice + 1 },
      (v) => controls?.setSlice(v - 1));
    outlineToggle = h("input", { type: "checkbox", id: "outline-toggle", checked: view.outlines,
      disabled: !view.outlines, "aria-keyshortcuts": "o" });
    outlineToggle.addEventListener("change", () => controls?.setOutlinesVisible(outlineToggle.checked));
    const legend = view.structures.filter((st) => st.colour).map((st) => {
      const swatch = h("span", { class: "swatch", "aria-hidden": "true" });
      swatch.style.backgroundColor = st.colour;
      return h("li", {}, swatch, displayName(st.label));
    });
    const fieldset = h("fieldset", { class: "controls" }, h("legend", {}, t("viewer.slices")), field,
      h("div", { class: "buttons" }, h("button", { type: "button", id: "slice-previous", "aria-keyshortcuts": "ArrowUp",
        onClick: () => controls?.moveSlice(-1) }, t("viewer.previousSlice")), h("button", { type: "button", id: "slice-next",
        "aria-keyshortcuts": "ArrowDown", onClick: () => controls?.moveSlice(1) }, t("viewer.nextSlice"))),
      h("div", { class: "field checkbox" }, outlineToggle, h("label", { for: "outline-toggle" },
        t("viewer.showOutlines"))),
      h("ul", { class: "legend", "aria-label": t("viewer.outlineColours") }, legend));
    sliceField = field;
    return fieldset;
  }

  function keyboard(view) {
    const ct = view.kind === "ct";
    const toggle = (box) => { if (box && !box.disabled) { box.checked = !box.checked; box.dispatchEvent(new Event("change")); } };
    const keys = {
      "+": () => controls.zoomBy?.(1.25), "=": () => controls.zoomBy?.(1.25), "-": () => controls.zoomBy?.(0.8),
      1: () => controls.actualSize?.(), f: () => controls.fit?.(), r: () => controls.reset?.(),
      c: () => controls.clearMeasurements?.(), h: () => toggle(heatToggle), o: () => toggle(outlineToggle),
      "[": () => main.querySelector("#previous-study:not([disabled])")?.click(),
      "]": () => main.querySelector("#next-study:not([disabled])")?.click(),
    };
    for (const [key] of controls.modes) keys[key] = () => controls.selectMode(key);
    if (ct) {
      Object.assign(keys, { ArrowUp: () => controls.moveSlice(-1), ArrowDown: () => controls.moveSlice(1),
        PageUp: () => controls.moveSlice(-10), PageDown: () => controls.moveSlice(10) });
      for (const [, w, l, key] of CT_PRESETS) keys[key] = () => controls.setWindow(w, l);
    }
    const onKey = (event) => {
      const target = event.target;
      if (event.ctrlKey || event.metaKey || event.altKey || target.closest?.("input, select, textarea, [contenteditable]")) return;
      const act = keys[event.key.length === 1 ? event.key.toLowerCase() : event.key];
      if (!act) return;
      event.preventDefault();
      act();
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }

  const reconnected = (event) => { if (event.detail.state === "restored") load(); };
  function load() {
    window.removeEventListener("cds:connection", reconnected);
    const outgoing = loadSession()?.hub_site ? api("/v1/referrals?direction=out") : Promise.resolve([]);
    const reads = [api(`${base}/view`), loadVerdicts(base), api(`${base}/signatures`), outgoing]; // verdicts' version kept
    Promise.all(reads).then(([view, feedback, signatures, referred]) => {
      if (!disposed) return build(view, feedback, signatures, referred);
      return undefined;
    }).catch((error) => {
      if (disposed) return;
      const later = isTransient(error); // the server is away: open the study when it is back
      if (later) window.addEventListener("cds:connection", reconnected);
      replace(main, h("section", { class: "card", "aria-labelledby": "viewer-heading" },
        h("h1", { id: "viewer-heading" }, t("viewer.title")),
        h("p", { class: "error", role: "alert" }, t("viewer.cannotShow", { error: error.message })
          + (later ? t("viewer.opensLater") : "")),
        h("p", {}, h("a", { href: "#/worklist" }, t("viewer.back")))));
    });
  }
  load();
  return () => {
    window.removeEventListener("cds:connection", reconnected);
    disposed = true;
    cleanups.forEach((cleanup) => cleanup());
    (controls ?? stage)?.dispose();
  };
}
