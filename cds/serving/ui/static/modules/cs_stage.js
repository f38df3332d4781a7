// The image stage on Cornerstone3D: the study's own pixels from cds's WADO-RS (wadors: image ids, the session's
// credential on every request), shown at their true aspect (pixel spacing) in a viewport of any size, with pan,
// zoom to native resolution and beyond, drag window/level, length and angle measurement, the value under the
// cursor (HU for CT), orientation letters, CT slice scrolling, the AI heatmap and CT segmentation outlines.
//
// Imported by viewer.js only when the workspace bundle (../dist/cornerstone.js, built by `make web`) exists; the
// import fails otherwise and the viewer falls back to the server-rendered picture.

import { core, dicomImageLoader, tools } from "../dist/cornerstone.js";
import { api, credentialHeaders } from "./api.js";
import { decimal, h } from "./dom.js";
import { t } from "./i18n.js";
import { Layer, OrientationMarkers, directionLetters, heatCanvas } from "./overlays.js";

const { Enums, RenderingEngine, cache, metaData, utilities } = core;
const { MouseBindings } = tools.Enums;
/**
 * Cornerstone's window/level tool scales a drag by the image's dynamic range, which it finds by reading every pixel
 * on every mouse move (20 ms for a 2048² film on this machine, more than a frame). This one reads each image once.
 */
class WindowLevelOnceTool extends tools.WindowLevelTool {
  static toolName = "CdsWindowLevel";

  _getImageDynamicRangeFromViewport(viewport) {
    const imageId = viewport.getCurrentImageId?.();
    if (!imageId) return super._getImageDynamicRangeFromViewport(viewport);
    if (!dynamicRanges.has(imageId)) {
      if (dynamicRanges.size >= 512) dynamicRanges.delete(dynamicRanges.keys().next().value);
      dynamicRanges.set(imageId, super._getImageDynamicRangeFromViewport(viewport));
    }
    return dynamicRanges.get(imageId);
  }
}
const dynamicRanges = new Map(); // image id -> max - min of its stored values
const MODES = [ // the left button's tool: [key, tool, label]
  ["w", WindowLevelOnceTool, "Window/level"], ["p", tools.PanTool, "Pan"], ["z", tools.ZoomTool, "Zoom"],
  ["l", tools.LengthTool, "Length"], ["a", tools.AngleTool, "Angle"],
];
let initialised = null;
let count = 0;
// Films that give PixelSpacing (0028,0030) but no image plane (CR, DX): Cornerstone would measure them in pixels.
const filmSpacing = new Map();

/**
 * The DICOM loader rejects with the XMLHttpRequest itself when an image request fails or is cut off (a study closed
 * while its images load, the server restarting); the viewer reports a failed load of the image it shows itself
 * (the stage's setStack), so such rejections of loads nobody awaits any more are answered here, not left uncaught.
 */
function handleImageRequestEnd(event) {
  if (typeof XMLHttpRequest !== "undefined" && event.reason instanceof XMLHttpRequest) {
    event.preventDefault();
    console.warn(`an image request ended without the image (HTTP ${event.reason.status || "none"})`);
  }
}

/**
 * A decode worker whose script did not load (the server away while the viewer started) would take requests and
 * never answer: the stage would stay black. Such a worker is ended at once; the loader's worker manager starts a
 * fresh one (its script fetched again) for the next image. The manager's registry is Cornerstone's own, read here
 * as it stands in the bundle's version; without it nothing is done.
 */
function replaceFailedWorkers() {
  const manager = core.getWebWorkerManager();
  const workers = manager?.workerRegistry?.dicomImageLoader?.nativeWorkers ?? [];
  workers.forEach((worker, index) => {
    if (!worker || watchedWorkers.has(worker)) return;
    watchedWorkers.add(worker);
    worker.addEventListener("error", () => {
      console.warn("an image decode worker did not start; a new one starts with the next image");
      manager.terminateWorkerInstance("dicomImageLoader", index);
    }, { once: true });
  });
}
const watchedWorkers = new WeakSet(); // each worker watched once: those started at init, and their replacements

let engine = null;

/**
 * The page's one rendering engine: its WebGL contexts and compiled shaders serve every study opened, rather than
 * being made again for each (on this machine's software WebGL that cost ~100 ms before the study's data was asked
 * for, and more before its first image).
 */
function renderingEngine() {
  engine ??= new RenderingEngine("cds-engine");
  return engine;
}

/** Start Cornerstone, its DICOM loader (decode workers) and tools, once per page; a failed start is tried again. */
export function initialise() {
  initialised ??= (async () => {
    window.addEventListener("unhandledrejection", handleImageRequestEnd);
    await core.init({ rendering: { webGlContextCount: 2 } }); // a study and its prior: 2, not Cornerstone's 7
    dicomImageLoader.init({ maxWebWorkers: Math.min(2, navigator.hardwareConcurrency || 1),
      beforeSend: () => credentialHeaders() });
    replaceFailedWorkers();
    tools.init();
    for (const [, tool] of MODES) tools.addTool(tool);
    tools.addTool(tools.StackScrollTool);
    core.metaData.addProvider((type, imageId) => (type === "calibratedPixelSpacing" ? filmSpacing.get(imageId)
      : undefined), 11000);
    renderingEngine(); // its WebGL contexts made now (the worklist preloads this), not when a study opens
  })().catch((error) => {
    initialised = null;
    throw error;
  });
  return initialised;
}

/** wadors: image ids for the view's instances (in display order), their DICOM JSON given to the loader. */
async function imageIds(view) {
  const series = `/dicomweb/studies/${view.study_uid}/series/${view.series_uid}`;
  const instances = await api(`${series}/metadata`);
  const bySop = new Map(instances.map((d) => [d["00080018"]?.Value?.[0], d]));
  return view.image.sop_instance_uids.map((sop) => {
    const id = `wadors:${window.location.origin}${series}/instances/${sop}/frames/1`;
    const json = bySop.get(sop);
    if (!json) throw new Error(`instance ${sop} is not in the series' metadata`);
    dicomImageLoader.wadors.metaDataManager.add(id, json);
    const spacing = json["00280030"]?.Value;
    if (spacing?.length === 2 && !json["00200037"]) {
      filmSpacing.set(id, { rowPixelSpacing: Number(spacing[0]), columnPixelSpacing: Number(spacing[1]) });
    }
    return id;
  });
}

/** Letters for the screen's right and down, from the image plane, else PatientOrientation (0020,0020). */
function orientation(viewport, imageId, instance) {
  const iop = instance?.["00200037"]?.Value;
  if (iop?.length === 6) {
    const canvas = viewport.canvas;
    const [cx, cy] = [canvas.clientWidth / 2, canvas.clientHeight / 2];
    const centre = viewport.canvasToWorld([cx, cy]);
    const towards = (p) => {
      const d = viewport.canvasToWorld(p).map((v, i) => v - centre[i]);
      const n = Math.hypot(...d) || 1;
      return d.map((v) => v / n);
    };
    return [directionLetters(towards([cx + 10, cy])), directionLetters(towards([cx, cy + 10]))];
  }
  const po = instance?.["00200020"]?.Value;
  return po?.length === 2 ? [po[0], po[1]] : ["", ""];
}

/**
 * The stage for `view` (the viewer's /view document, or a series' view from series_strip.js) of outcome `base`:
 * {stage (an element), start()}. `onState({window, level, slice})` is called whenever what is on screen changes
 * (drag, scroll, keys); `timings` collects firstImage (performance.now() of the first image on screen) and
 * windowLevel (ms per change). `idPrefix` tells a second stage's elements apart (prior-image, prior-stage).
 */
export async function createStage(view, base, onState, timings, { idPrefix = "" } = {}) {
  await initialise();
  replaceFailedWorkers(); // replacements started since the last study are watched too
  const image = view.image;
  const ct = view.kind === "ct";
  const stacked = image.slices > 1; // the wheel scrolls through the images
  count += 1;
  const ids = { viewport: `cds-viewport-${count}`, group: `cds-tools-${count}` };
  const element = h("div", { class: "cs-viewport", id: `${idPrefix}image`, role: "img",
    "aria-label": t(ct ? "stage.ctOf" : "stage.radiographOf", { patient: view.patient_id || t("stage.unknown") }) });
  element.addEventListener("contextmenu", (event) => event.preventDefault()); // right drag zooms
  const readout = h("p", { class: "readout", id: `${idPrefix}readout` }, t("stage.pointAt"));
  const stage = h("div", { class: "cs-stage", id: `${idPrefix}stage`, tabindex: "0", role: "group" }, element, readout);
  const engine = renderingEngine();
  const state = { window: image.window, level: image.level, slice: image.initial_slice, mode: "w" };
  const listeners = [];
  const listen = (target, type, fn) => { target.addEventListener(type, fn); listeners.push([target, type, fn]); };

  const stack = await imageIds(view);
  timings.metadataLoaded = performance.now();
  const metadata = new Map(stack.map((id) => [id, dicomImageLoader.wadors.metaDataManager.get(id)]));
  // The element must be in the page (with a size) before Cornerstone enables it: the caller places `stage`, then
  // calls start(), which resolves with the stage's controls once the first image is on screen.
  const start = () => new Promise((resolve, reject) => {
    {
      engine.enableElement({ viewportId: ids.viewport, type: Enums.ViewportType.STACK, element,
        defaultOptions: { background: [0, 0, 0] } });
      const viewport = engine.getViewport(ids.viewport);
      const host = element.querySelector(".viewport-element") ?? element;
      const svg = host.querySelector("svg");
      const heat = new Layer(`${idPrefix}heatmap`, host);
      const outline = new Layer(`${idPrefix}outline`, host);
      if (svg) host.append(svg); // measurements stay above the layers
      const markers = new OrientationMarkers(element, idPrefix);
      const group = tools.ToolGroupManager.createToolGroup(ids.group);
      for (const [, tool] of MODES) group.addTool(tool.toolName);
      group.addTool(tools.StackScrollTool.toolName);
      group.addViewport(ids.viewport, engine.id);
      group.setToolActive(WindowLevelOnceTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
      group.setToolActive(tools.PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
      group.setToolActive(tools.ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
      group.setToolActive(stacked ? tools.StackScrollTool.toolName : tools.ZoomTool.toolName,
        { bindings: [{ mouseButton: MouseBindings.Wheel }] });
      group.setToolPassive(tools.LengthTool.toolName);
      group.setToolPassive(tools.AngleTool.toolName);

      let first = true;
      let pendingWindow = null;
      const imageRect = () => {
        const data = viewport.getImageData();
        if (!data) return null;
        const [columns, rows] = data.dimensions;
        const a = viewport.worldToCanvas(data.imageData.indexToWorld([-0.5, -0.5, 0]));
        const b = viewport.worldToCanvas(data.imageData.indexToWorld([columns - 0.5, rows - 0.5, 0]));
        return { x: Math.min(a[0], b[0]), y: Math.min(a[1], b[1]), width: Math.abs(b[0] - a[0]),
          height: Math.abs(b[1] - a[1]) };
      };
      const rendered = () => {
        const now = performance.now();
        const voi = viewport.getProperties().voiRange;
        if (voi) {
          const { windowWidth, windowCenter } = utilities.windowLevel.toWindowLevel(voi.lower, voi.upper);
          state.window = Math.round(windowWidth * 100) / 100;
          state.level = Math.round(windowCenter * 100) / 100;
        }
        state.slice = viewport.getCurrentImageIdIndex();
        const imageId = viewport.getCurrentImageId();
        const ipp = metaData.get("imagePlaneModule", imageId)?.imagePositionPatient;
        if (stacked && ipp) state.position = `z ${Number(ipp[2]).toFixed(1)} mm`;
        const rect = imageRect();
        const dpr = window.devicePixelRatio || 1;
        heat.paint(rect, dpr, true);
        outline.paint(rect, dpr, false);
        markers.show(...orientation(viewport, imageId, metadata.get(imageId)));
        Object.assign(element.dataset, { window: String(state.window), level: String(state.level),
          slice: String(state.slice), zoom: String(screenPerImagePixel().toFixed(3)) });
        if (pendingWindow !== null) {
          if (timings.windowLevel.push(now - pendingWindow) > 1000) timings.windowLevel.shift();
          pendingWindow = null;
        }
        if (first) {
          first = false;
          timings.firstImage = now;
          resolve(api_);
        }
        onState({ ...state });
        if (ct) loadOutline(state.slice);
      };
      listen(element, Enums.Events.IMAGE_RENDERED, rendered);

      function screenPerImagePixel() {
        const rect = imageRect();
        const data = viewport.getImageData();
        return rect && data ? rect.width / data.dimensions[0] : 0;
      }

      listen(element, Enums.Events.VOI_MODIFIED, () => { pendingWindow ??= performance.now(); });

      function setWindow(width, level) {
        viewport.setProperties({ voiRange: utilities.windowLevel.toLowHighRange(width, level) });
        viewport.render();
      }

      // The value under the cursor: modality values (after rescale: HU for CT).
      listen(element, "mousemove", (event) => {
        const bounds = viewport.canvas.getBoundingClientRect();
        const world = viewport.canvasToWorld([event.clientX - bounds.left, event.clientY - bounds.top]);
        const data = viewport.getImageData();
        const picture = cache.getImage(viewport.getCurrentImageId());
        if (!data || !picture) return;
        const [i, j] = data.imageData.worldToIndex(world).map(Math.round);
        const [columns, rows] = data.dimensions;
        if (i < 0 || j < 0 || i >= columns || j >= rows) {
          readout.textContent = t("stage.outside");
          return;
        }
        const stored = picture.getPixelData()[j * columns + i];
        const value = picture.preScale?.scaled ? stored : stored * (picture.slope ?? 1) + (picture.intercept ?? 0);
        const shown = decimal(value, Number.isInteger(value) ? 0 : 1); // -1002 HU, never "-1,002"
        readout.textContent = t(ct ? "stage.readoutHu" : "stage.readoutValue", { column: String(i + 1),
          row: String(j + 1), value: shown });
        readout.dataset.value = String(value);
      });

      let outlineSlice = null;
      let outlineRequest = null;
      async function loadOutline(slice) {
        if (!view.outlines || outline.hidden || outlineSlice === slice) return;
        outlineSlice = slice;
        outlineRequest?.abort();
        const request = new AbortController();
        outlineRequest = request;
        try {
          const response = await api(`${base}/render/outline.png?slice=${slice}`, { raw: true, signal: request.signal });
          const bitmap = await createImageBitmap(await response.blob());
          if (request.signal.aborted) return;
          outline.source = bitmap;
          outline.canvas.dataset.slice = String(slice);
          outline.paint(imageRect(), window.devicePixelRatio || 1, false);
        } catch (error) {
          if (error.name !== "AbortError") outlineSlice = null;
        }
      }

      function selectMode(key) {
        const entry = MODES.find(([k]) => k === key);
        if (!entry) return;
        const current = MODES.find(([k]) => k === state.mode);
        group.setToolPassive(current[1].toolName);
        group.setToolActive(entry[1].toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
        state.mode = key;
        stage.dataset.mode = entry[2];
        api_.onMode?.(key);
      }

      // A film the reader has not zoomed or panned stays fitted when its box changes size (a prior opened beside
      // it, the window resized); one they have keeps their zoom and pan.
      let fitted = true;
      listen(element, "mousedown", (event) => {
        if (event.button !== 0 || state.mode === "p" || state.mode === "z") fitted = false;
      });
      listen(element, "wheel", () => { if (!stacked) fitted = false; });

      function zoomBy(factor) {
        fitted = false;
        const camera = viewport.getCamera();
        viewport.setCamera({ parallelScale: camera.parallelScale / factor });
        viewport.render();
      }

      const api_ = {
        stage, state, modes: MODES.map(([key, , label]) => [key, label]),
        setWindow,
        setSlice(index) {
          const target = Math.min(stack.length - 1, Math.max(0, index));
          if (target !== viewport.getCurrentImageIdIndex()) viewport.setImageIdIndex(target);
        },
        moveSlice(delta) { api_.setSlice(viewport.getCurrentImageIdIndex() + delta); },
        selectMode,
        zoomBy,
        /** Zoom so that one image pixel is one screen pixel (the film's native resolution). */
        actualSize() { zoomBy(1 / screenPerImagePixel()); },
        fit() { fitted = true; viewport.resetCamera(); viewport.render(); },
        reset() {
          fitted = true;
          viewport.resetCamera();
          api_.resetWindow();
        },
        resetWindow() {
          if (image.window === null) { // no window in the file: Cornerstone's, from the pixels
            viewport.resetProperties();
            viewport.render();
          } else setWindow(image.window, image.level);
        },
        clearMeasurements() {
          tools.annotation.state.removeAllAnnotations();
          viewport.render();
          api_.onMeasurements?.([]);
        },
        screenPerImagePixel,
        async setHeatmap(label) {
          const response = await api(`${base}/render/heatmap.f32?label=${encodeURIComponent(label)}`, { raw: true });
          const [rows, columns] = (response.headers.get("X-Heatmap-Shape") || "").split(",").map(Number);
          const floor = Number(response.headers.get("X-Heatmap-Floor") ?? Number.NaN);
          heat.source = heatCanvas(new Float32Array(await response.arrayBuffer()), rows, columns,
            Number.isFinite(floor) ? floor : undefined);
          heat.canvas.dataset.label = label;
          heat.paint(imageRect(), window.devicePixelRatio || 1, true);
        },
        setHeatmapOpacity(percent) { heat.canvas.style.opacity = String(percent / 100); },
        setHeatmapVisible(shown) {
          heat.hidden = !shown;
          if (shown) heat.paint(imageRect(), window.devicePixelRatio || 1, true); // sized while it was hidden
        },
        setOutlinesVisible(shown) {
          outline.hidden = !shown;
          if (shown) loadOutline(state.slice);
        },
        heatmapHidden: () => heat.hidden,
        outlinesHidden: () => outline.hidden,
        dispose: destroy,
      };
      outline.hidden = !view.outlines;
      heat.hidden = true;

      // Measurements: listed in the panel with their values as Cornerstone computes them (mm from pixel spacing).
      const measured = () => {
        const all = tools.annotation.state.getAllAnnotations().filter((a) => a.metadata?.toolName === "Length"
          || a.metadata?.toolName === "Angle");
        api_.onMeasurements?.(all.map((a) => {
          const stats = Object.values(a.data?.cachedStats ?? {})[0] ?? {};
          const data = viewport.getImageData();
          const points = data ? a.data.handles.points.map((p) => data.imageData.worldToIndex(p).slice(0, 2)
            .map((v) => Math.round(v * 10) / 10).join(",")).join(" ") : "";
          return a.metadata.toolName === "Length"
            ? { kind: "Length", value: stats.length, unit: stats.unit ?? "px", points }
            : { kind: "Angle", value: stats.angle, unit: "°", points };
        }));
      };
      for (const type of [tools.Enums.Events.ANNOTATION_COMPLETED, tools.Enums.Events.ANNOTATION_MODIFIED,
        tools.Enums.Events.ANNOTATION_REMOVED]) listen(core.eventTarget, type, measured);
      listen(element, tools.Enums.Events.ANNOTATION_RENDERED, measured); // stats are computed as they are drawn

      const resizer = new ResizeObserver(() => {
        engine.resize(true, true);
        if (fitted) api_.fit();
      });
      resizer.observe(element);
      listeners.push([{ removeEventListener: () => resizer.disconnect() }, "resize", null]);
      viewport.setStack(stack, Math.min(stack.length - 1, image.initial_slice)).then(() => {
        if (image.window !== null) { // else Cornerstone's window from the pixels
          viewport.setProperties({ voiRange: utilities.windowLevel.toLowHighRange(image.window, image.level) });
        }
        viewport.render();
      }).catch((error) => reject(error instanceof Error ? error : new Error(String(error?.message ?? error))));
    }
  });
  let destroyed = false;
  function destroy() {
    if (destroyed) return;
    destroyed = true;
    listeners.forEach(([target, type, fn]) => target.removeEventListener(type, fn));
    if (tools.ToolGroupManager.getToolGroup(ids.group)) tools.ToolGroupManager.destroyToolGroup(ids.group);
    if (engine.getViewport(ids.viewport)) engine.disableElement(ids.viewport); // the engine serves the next study
  }
  return { stage, start, dispose: destroy };
}
