// The study viewer: the image stage, window/level with presets, the reading tools, the AI heatmap as a layer with
// a toggle, an opacity slider and a fixed-scale legend, CT slices and segmentation outlines, the model's identity
// and caveat, keyboard shortcuts, and the findings panel with the reader's review, sign-off and referral. Over the
// image, the study's series as thumbnails when it has more than one (series_strip.js: another series replaces the
// analysed one on the stage); the shown instance's DICOM tags in a dialog (tag_view.js); the patient's priors, one
// of them opened in a second stage beside the current one, stacked on a portrait screen (priors.js). The previous
// and next study of the worklist head the panel, so that the view's head stays one line above the film.
//
// The stage is Cornerstone3D on the study's own pixels from WADO-RS (cs_stage.js) when the workspace bundle is
// built (`make web`); without it the viewer says so and shows the server-rendered picture (server_stage.js). A
// bundle that did not load (the server restarting meanwhile) is not remembered: the next study opened tries again.
// Timings (open → first image, each window/level change → on screen) are kept in window.cdsViewerTimings.

import { api, isTransient, loadSession } from "./api.js";
import { h, replace, shortUid } from "./dom.js";
import { displayName, renderFindings } from "./findings.js";
import { t } from "./i18n.js";
import { heatLegend } from "./overlays.js";
import { loadPriors, priorControl, priorView, studyLabel, viewLabel } from "./priors.js";
import { renderReferral } from "./referral.js";
import { seriesMetadata, seriesStrip, seriesView, studySeries } from "./series_strip.js";
import { createServerStage } from "./server_stage.js";
import { renderSigning } from "./signing.js";
import { openTagView } from "./tag_view.js";
import { loadVerdicts } from "./versions.js";
import { shortcutHelp, studyNeighbours, toolControls } from "./viewer_tools.js";

const CT_PRESETS = [["soft", 400, 40, "7"], ["lung", 1500, -600, "8"], ["bone", 1800, 400, "9"]]; // viewer.preset.*
const HEATMAP_METHODS = ["cam", "occlusion"]; // described by viewer.method.<method>

function rangeField(id, label, { min, max, step, value }, onInput) {
  const range = h("input", { type: "range", id, min, max, step, value });
  const number = h("input", { type: "number", id: `${id}-value`, min, max, step, value, class: "number",
    "aria-label": t("viewer.valueOf", { label }) });
  const decimals = String(step).split(".")[1]?.length ?? 0; // the longest value the field can show, in digits
  number.style.setProperty("--chars", String(Math.max(...[min, max].map((v) => Number(v).toFixed(decimals).length))));
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
    ? h("p", { class: "nfdu", role: "note", id: "nfdu" }, h("strong", {}, t("viewer.nfdu")), ` ${model.intended_use}`)
    : h("p", { class: "muted" }, t("viewer.intendedUse", { use: model.intended_use }));
  // Whose film: the name from its header (with sex and birth date) and the ID, so a wrong patient is seen at once.
  const details = [view.patient_sex ? t(`viewer.sex.${view.patient_sex}`) : null,
    view.patient_birth_date ? t("viewer.born", { born: view.patient_birth_date }) : null].filter(Boolean);
  const who = view.patient_name ? [["patient", view.patient_name, details.length
    ? details.join(t("viewer.detailsSeparator")) : null], ["patientId", view.patient_id || "—"]]
    : [["patient", view.patient_id || "—"]];
  const facts = [...who, ["study", shortUid(view.study_uid)],
    ["image", view.kind === "ct" ? t("viewer.ctSeries", { slices: view.image.slices }) : t("viewer.radiograph")],
    ["model", `${model.name} ${model.version}`]];
  return [h("div", { class: "view-head" },
    h("h1", { id: "viewer-heading", tabindex: "-1" }, t("viewer.title")),
    h("dl", { class: "facts" }, facts.map(([term, value, hint]) => h("div", {}, h("dt", {}, t(`viewer.fact.${term}`)),
      h("dd", { title: term === "study" ? view.study_uid : hint ?? null, id: `fact-${term}` }, value,
        hint ? h("span", { class: "muted fact-hint" }, ` (${hint})`) : null)))),
    h("a", { href: "#/worklist", class: "back" }, t("viewer.back"))), caveat];
}

let stageModule = null;

/** Why the bundle did not load: "missing" (not built: the server answers 404) or "unavailable" (anything else). */
async function bundleProblem() {
  try {
    const response = await fetch(new URL("../dist/cornerstone.js", import.meta.url), { method: "HEAD",
      cache: "no-store" });
    return response.status === 404 ? "missing" : "unavailable";
  } catch {
    return "unavailable";
  }
}

/**
 * The Cornerstone stage module, started (once per page): {module}, or {module: null, problem} when the bundle is
 * missing or did not load. A failed load is forgotten, so that the next study opened tries again.
 */
function loadStageModule() {
  stageModule ??= import("./cs_stage.js").then(async (module) => { await module.initialise(); return { module }; })
    .catch(async () => {
      stageModule = null;
      return { module: null, problem: await bundleProblem() };
    });
  return stageModule;
}

/** Load and start Cornerstone while the reader is elsewhere (the worklist), so a study opens without waiting. */
export function preloadViewer() {
  const later = window.requestIdleCallback ?? ((fn) => window.setTimeout(fn, 200));
  later(() => loadStageModule());
}

/** The Cornerstone stage, or the server-rendered one with the reason when the bundle is missing or did not load. */
async function makeStage({ module, problem }, view, base, onState, timings, options = {}) {
  if (!module) {
    const notice = t(problem === "missing" ? "viewer.bundleMissing" : "viewer.bundleUnavailable");
    return { ...createServerStage(view, base, onState, options), notice };
  }
  return { ...(await module.createStage(view, base, onState, timings, options)), notice: null };
}

/**
 * The image boxes of `stageElements` as tall as the window leaves below the first one's top (caption and read-out
 * under it), shared by `share` boxes stacked one above the other with `reserve` px between them; at least 320 px
 * (240 px each when stacked).
 */
function fitStageHeight(stageElements, share = 1, reserve = 0) {
  const boxes = stageElements.map((element) => element.querySelector(".cs-viewport") ?? element);
  const available = (window.innerHeight - (boxes[0].getBoundingClientRect().top + window.scrollY) - 72 - reserve)
    / share;
  for (const box of boxes) {
    box.style.height = `${Math.round(Math.max(share > 1 ? 240 : 320, Math.min(available, box.clientWidth * 1.25)))}px`;
  }
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
  let shown = null; // the view on the main stage: the outcome's, or another series of the study
  let strip = null;
  let seriesList = [];
  let switching = 0;
  let prior = null; // the prior opened beside: {stage, controls, pane}
  let priorUi = null;
  let comparing = 0;
  let closeTags = null;
  const cleanups = [];
  replace(main, h("section", { "aria-labelledby": "viewer-heading" }, h("h1", { id: "viewer-heading" }, t("viewer.title")),
    h("p", { class: "muted", role: "status" }, t("viewer.loading"))));

  async function build(view, feedback, signatures, outgoing) {
    timings.dataLoaded = performance.now();
    shown = view;
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
      const slices = shown.image.slices;
      const slice = slices > 1 ? t("viewer.sliceOf", { slice: state.slice + 1, slices }) : "";
      const where = state.position !== undefined ? t("viewer.position", { position: state.position }) : "";
      caption.textContent = t("viewer.caption", { window: String(Math.round(state.window)),
        level: String(Math.round(state.level)) })
        + `${shown.image.units ? ` ${shown.image.units}` : ""}${slice}${where}`;
      if (document.activeElement?.id !== "window-value") windowField.set(state.window);
      if (document.activeElement?.id !== "level-value") levelField.set(state.level);
      if (shown === view) sliceField?.set(state.slice + 1);
    }
    stage = await makeStage(await stageReady, view, base, onState, timings);
    if (disposed) return stage.dispose();
    const presets = (ct ? CT_PRESETS : []).map(([name, w, l, key]) => h("button", { type: "button",
      "aria-keyshortcuts": key, onClick: () => controls?.setWindow(w, l) }, t(`viewer.preset.${name}`)));
    const display = h("fieldset", { class: "controls" }, h("legend", {}, t("viewer.display")), windowField, levelField,
      h("div", { class: "buttons" }, presets, h("button", { type: "button", id: "reset-window",
        onClick: () => controls?.resetWindow() }, t("viewer.resetWindow")),
      h("button", { type: "button", id: "show-tags", "aria-keyshortcuts": "t", onClick: () => toggleTags() },
        t("tags.open"))));
    const panel = [display];
    const withHeatmap = view.findings.filter((f) => f.heatmap);
    if (!ct) {
      panel.push(withHeatmap.length ? heatmapControls(withHeatmap, view)
        : h("p", { class: "muted", id: "no-heatmap" }, t("viewer.noHeatmap")));
    } else {
      panel.push(sliceControls(view));
    }
    const analysedOnly = panel.slice(1).filter((element) => element.tagName === "FIELDSET"); // heatmap, slices
    const priorsHolder = h("div", { class: "priors-holder", id: "priors-holder" });
    panel.splice(1, 0, priorsHolder); // under the display, before the heatmap or slices
    const neighbours = h("nav", { class: "study-nav", id: "study-nav", "aria-label": t("viewer.studyNav") });
    const notice = stage.notice ? h("p", { class: "notice", role: "alert", id: "bundle-missing" }, stage.notice) : null;
    const toolbar = h("div", { class: "cs-tools", id: "cs-tools" });
    const stripHolder = h("div", { class: "series-holder", id: "series-holder" });
    const currentLabel = h("p", { class: "pane-label", id: "current-label", hidden: true });
    const currentPane = h("div", { class: "stage-pane", id: "current-pane", dataset: { series: view.series_uid } },
      currentLabel, stage.stage);
    const pair = h("div", { class: "stage-pair", id: "stage-pair" }, currentPane);
    replace(main, h("section", { class: "viewer", "aria-labelledby": "viewer-heading" }, header(view),
      notice, h("div", { class: "viewer-body" },
        h("figure", { class: "image-column" }, toolbar, stripHolder, pair, caption),
        h("div", { class: "panel" }, neighbours, panel, renderFindings(view, feedback, base),
          ct ? null : renderSigning(signatures, base), renderReferral(jobId, outgoing), shortcutHelp(ct, !!stage.notice)))));
    main.querySelector("h1").focus({ preventScroll: true });
    const fitHeight = () => {
      if (!prior) return fitStageHeight([stage.stage]);
      const stacked = getComputedStyle(pair).gridTemplateColumns.trim().split(/\s+/).length < 2;
      const box = prior.stage.stage.querySelector(".cs-viewport") ?? prior.stage.stage;
      const between = prior.pane.offsetHeight - box.offsetHeight + 16; // the prior's label, read-out and caption
      return stacked ? fitStageHeight([stage.stage, prior.stage.stage], 2, between)
        : fitStageHeight([stage.stage, prior.stage.stage]);
    };
    const above = new ResizeObserver(fitHeight); // what sits above the image grows as it fills in
    [main.querySelector(".view-head"), main.querySelector(".nfdu"), toolbar, stripHolder, currentLabel]
      .forEach((e) => e && above.observe(e));
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
    applyOverlays(view, withHeatmap);
    cleanups.push(studyNeighbours(neighbours, jobId, uid));
    cleanups.push(keyboard(view));
    cleanups.push(() => { closeTags?.(); strip?.dispose(); closePrior(); });

    studySeries(view.study_uid).then((series) => {
      if (disposed) return;
      seriesList = series;
      if (series.length < 2) return; // one series: nothing to choose, the film keeps the room
      strip = seriesStrip(view.study_uid, series, view.series_uid, (chosen) => showSeries(chosen.uid));
      replace(stripHolder, strip.element);
    }).catch(() => {}); // without the strip the analysed series still shows
    loadPriors(base).then((priors) => {
      if (disposed) return;
      if (!priors.length) {
        replace(priorsHolder, h("p", { class: "muted", id: "no-priors" }, t("priors.none")));
        return;
      }
      priorUi = priorControl(priors, (chosen) => openPrior(chosen), () => closePrior());
      replace(priorsHolder, priorUi.element);
    }).catch(() => {});

    /** Show series `seriesUid` of the study on the main stage (the analysed one with its heatmap and outlines). */
    async function showSeries(seriesUid) {
      const token = ++switching; // a click on the series shown cancels a switch on its way
      if (seriesUid === shown.series_uid) {
        strip?.select(seriesUid);
        return;
      }
      strip?.select(seriesUid);
      try {
        const next = seriesUid === view.series_uid ? view
          : seriesView(view, view.study_uid, seriesUid, await seriesMetadata(view.study_uid, seriesUid));
        if (disposed || token !== switching) return;
        const fresh = await makeStage(await stageReady, next, base, onState, { windowLevel: [] });
        if (disposed || token !== switching) { fresh.dispose(); return; }
        closeTags?.();
        (controls ?? stage).dispose();
        controls = null;
        currentPane.replaceChild(fresh.stage, stage.stage);
        stage = fresh;
        shown = next;
        analysedOnly.forEach((element) => { element.disabled = next !== view; });
        fitHeight();
        const started = await fresh.start();
        if (disposed || stage !== fresh) return;
        controls = started;
        controls.onState = onState;
        if (controls.modes.length) {
          const { toolbar: buttons, list } = toolControls(controls);
          replace(toolbar, buttons);
          fresh.stage.append(list);
        }
        if (next === view) applyOverlays(view, withHeatmap);
        currentPane.dataset.series = seriesUid;
      } catch (error) {
        if (disposed || token !== switching) return;
        strip?.select(shown.series_uid); // the strip marks the series on the stage, never one that failed to load
        caption.textContent = t("series.cannotShow", { error: error.message });
      }
    }
    nextSeries = () => {
      if (seriesList.length < 2) return;
      const here = seriesList.findIndex((s) => s.uid === shown.series_uid);
      showSeries(seriesList[(here + 1) % seriesList.length].uid);
    };

    /** Open `chosen` (a prior) in a second stage beside the current one, labelled with its date and description. */
    async function openPrior(chosen) {
      closePrior();
      const token = ++comparing;
      priorUi?.setOpen(true);
      const status = h("p", { class: "muted", role: "status", id: "prior-status" }, t("priors.loading"));
      priorUi?.element.append(status);
      try {
        const modality = seriesList.find((s) => s.uid === view.series_uid)?.modality;
        const next = await priorView(view, chosen, modality);
        if (disposed || token !== comparing) return;
        const priorCaption = h("p", { class: "pane-caption muted", id: "prior-caption" });
        const fresh = await makeStage(await stageReady, next, base, (state) => {
          priorCaption.textContent = t("viewer.caption", { window: String(Math.round(state.window)),
            level: String(Math.round(state.level)) }) + (next.image.units ? ` ${next.image.units}` : "");
        }, { windowLevel: [] }, { idPrefix: "prior-" });
        if (disposed || token !== comparing) { fresh.dispose(); return; }
        const label = h("p", { class: "pane-label", id: "prior-label" },
          t("priors.priorLabel", { label: studyLabel(chosen.study_date, chosen.description) }));
        const pane = h("div", { class: "stage-pane prior", id: "prior-pane",
          dataset: { study: chosen.study_uid, date: chosen.study_date } }, label, fresh.stage, priorCaption);
        const currentText = await viewLabel(view).catch(() => "…"); // before the layout settles: no later reflow
        if (disposed || token !== comparing) { fresh.dispose(); return; }
        prior = { stage: fresh, controls: null, pane };
        currentLabel.textContent = t("priors.currentLabel", { label: currentText });
        currentLabel.hidden = false;
        pair.append(pane);
        pair.classList.add("comparing");
        fitHeight();
        const started = await fresh.start();
        if (prior?.stage !== fresh) return;
        prior.controls = started;
        status.remove();
      } catch (error) {
        if (disposed || token !== comparing) return;
        closePrior();
        status.textContent = t("priors.cannotShow", { error: error.message });
        status.setAttribute("role", "alert");
        priorUi?.element.append(status);
      }
    }
    return undefined;
  }

  let nextSeries = () => {};

  /** Close the prior beside the current study. */
  function closePrior() {
    comparing += 1;
    main.querySelector("#prior-status")?.remove();
    priorUi?.setOpen(false);
    if (!prior) return;
    (prior.controls ?? prior.stage).dispose();
    prior.pane.remove();
    prior = null;
    const pair = main.querySelector("#stage-pair");
    pair?.classList.remove("comparing");
    const label = main.querySelector("#current-label");
    if (label) label.hidden = true;
    window.dispatchEvent(new Event("resize")); // the current stage takes the whole width again
  }

  /** Open (or close) the DICOM tags of the instance on the main stage. */
  function toggleTags() {
    if (closeTags) {
      closeTags();
      return;
    }
    const uids = shown.image.sop_instance_uids;
    const sop = uids[controls?.state.slice ?? shown.image.initial_slice] ?? uids[0];
    const back = document.activeElement;
    closeTags = openTagView({ studyUid: shown.study_uid, seriesUid: shown.series_uid, sopUid: sop }, () => {
      closeTags = null;
      back?.focus?.({ preventScroll: true });
    });
  }

  let heatToggle = null;
  let outlineToggle = null;
  function applyOverlays(view, withHeatmap) {
    if (withHeatmap.length) {
      const which = main.querySelector("#overlay-finding");
      controls.setHeatmapOpacity(Number(main.querySelector("#overlay-opacity").value));
      controls.setHeatmap(which.value).catch(() => {});
      controls.setHeatmapVisible(heatToggle?.checked ?? true);
    }
    if (view.outlines) controls.setOutlinesVisible(outlineToggle?.checked ?? true);
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
    const toggle = (box) => { if (box && !box.matches(":disabled")) { box.checked = !box.checked; box.dispatchEvent(new Event("change")); } };
    const keys = {
      "+": () => controls.zoomBy?.(1.25), "=": () => controls.zoomBy?.(1.25), "-": () => controls.zoomBy?.(0.8),
      1: () => controls.actualSize?.(), f: () => controls.fit?.(), r: () => controls.reset?.(),
      c: () => controls.clearMeasurements?.(), h: () => toggle(heatToggle), o: () => toggle(outlineToggle),
      "[": () => main.querySelector("#previous-study:not([disabled])")?.click(),
      "]": () => main.querySelector("#next-study:not([disabled])")?.click(),
      t: () => toggleTags(), s: () => nextSeries(), v: () => priorUi?.toggle(),
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
      const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
      const act = keys[key];
      if (!act || !controls || (closeTags && key !== "t")) return; // the tag view over the image takes the keys
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
