// The slide on OpenSeadragon: the uploaded slide's own pyramid as Deep Zoom tiles (GET .../tiles.dzi and
// .../tiles_files/{level}/{col}_{row}.jpeg, the session's credential on every request), panned and zoomed down to
// the slide's native pixels and beyond (MAX_PIXEL_RATIO screen pixels per slide pixel), a scale bar in µm or mm
// from the slide's microns per pixel, and the AI heatmap (heatmap.png) laid over the whole slide with an opacity
// control. Keyboard on the viewer: arrows pan, + and - zoom, 0 goes home (OpenSeadragon's own keys).
//
// Imported by slide.js only when the workspace bundle (../dist/slide.js, built by `make web`) exists; the import
// fails otherwise and the slide view falls back to the server-rendered zoom.

import { OpenSeadragon } from "../dist/slide.js";
import { api, credentialHeaders } from "./api.js";
import { decimal, h } from "./dom.js";
import { number, t } from "./i18n.js";
import { ApiImage } from "./layers.js";

export const MAX_PIXEL_RATIO = 4; // screen pixels per slide pixel at the deepest zoom
const BAR_MAX_PX = 160; // the scale bar's longest length on screen
const DZI = "http://schemas.microsoft.com/deepzoom/2008";
const CDS = "urn:cds:deepzoom";

// A tile that did not load (a request aborted when the view closes, a session that ended) is the viewer's business,
// not a page error: OpenSeadragon's errors go to the console as warnings, and the viewer notes the last one.
OpenSeadragon.console = Object.assign(Object.create(console), { error: (...args) => console.warn(...args) });

/** The longest "nice" length (1, 2 or 5 × 10^n µm) at most `limit` µm. */
export function niceMicrons(limit) {
  const power = 10 ** Math.floor(Math.log10(limit));
  return [5, 2, 1].map((m) => m * power).find((value) => value <= limit) ?? power;
}

/** `microns` as the scale bar says it: µm below a millimetre, mm from there. */
export function lengthText(microns) {
  const shown = (value) => number(Number(value.toPrecision(3)), { maximumFractionDigits: 20, useGrouping: false });
  return microns >= 1000 ? t("unit.mm", { value: shown(microns / 1000) }) : t("unit.um", { value: shown(microns) });
}

/** The Deep Zoom tile source of the job at `base`, from its descriptor (read with the session's credential). */
async function tileSource(base) {
  const xml = await (await api(`${base}/tiles.dzi`, { raw: true })).text();
  const image = new DOMParser().parseFromString(xml, "application/xml").documentElement;
  const size = image.getElementsByTagNameNS(DZI, "Size")[0];
  if (image.localName !== "Image" || !size) throw new Error(t("osd.descriptorUnreadable"));
  const width = Number(size.getAttribute("Width"));
  const height = Number(size.getAttribute("Height"));
  return new OpenSeadragon.DziTileSource({ width, height, tileSize: Number(image.getAttribute("TileSize")),
    tileOverlap: Number(image.getAttribute("Overlap")), tilesUrl: `${base}/tiles_files/`,
    fileFormat: image.getAttribute("Format"), minLevel: Number(image.getAttributeNS(CDS, "MinLevel") || 0),
    maxLevel: Math.ceil(Math.log2(Math.max(width, height))) });
}

/**
 * The slide viewer for the finished job at `base` (`detail`: its result.json): {figure, controls, dispose()}.
 * `heatmap` says whether there is a heatmap to lay over the slide; `legend` is its legend element (or null).
 */
export function createSlideViewer(base, detail, { heatmap, legend }) {
  const { width, height, mpp } = detail.source;
  const host = h("div", { id: "slide-viewer", class: "osd-host" });
  const bar = h("span", { class: "scalebar-line", "aria-hidden": "true" });
  const barText = h("span", { class: "scalebar-text" });
  const scale = h("div", { id: "slide-scalebar", class: "scalebar" }, bar, barText);
  const readout = h("p", { id: "slide-readout", class: "muted", "aria-live": "polite" }, t("osd.loading"));
  const stage = h("div", { class: "osd-stage" }, host, scale);
  const opacity = h("input", { type: "range", id: "heat-opacity", min: "0", max: "100", step: "5", value: "45",
    "aria-describedby": "heat-opacity-value" });
  const opacityValue = h("output", { id: "heat-opacity-value", for: "heat-opacity" });
  const button = (id, text, label) => h("button", { type: "button", id, class: "secondary", "aria-label": label },
    text);
  const zoomOut = button("slide-zoom-out", "−", t("tools.zoomOut"));
  const zoomIn = button("slide-zoom-in", "+", t("tools.zoomIn"));
  const home = button("slide-home", t("osd.wholeSlide"), t("osd.wholeSlideLabel"));
  const native = button("slide-native", "1:1", t("osd.nativeLabel"));
  const controls = h("div", { class: "zoom-controls osd-controls" }, zoomOut, zoomIn, native, home,
    heatmap ? h("label", { for: "heat-opacity" }, t("viewer.heatmapOpacity")) : null, heatmap ? opacity : null,
    heatmap ? opacityValue : null);
  const figure = h("figure", { class: "slide-figure osd-figure" }, controls, stage, readout, legend);
  const heat = h("img", { id: "slide-heat", class: "osd-heat", alt: "", "aria-hidden": "true" });
  const heatImage = new ApiImage(heat);
  let viewer = null;
  let disposed = false;

  function setOpacity() {
    heat.style.opacity = String(Number(opacity.value) / 100);
    opacityValue.textContent = t("unit.percent", { value: decimal(Number(opacity.value)) });
  }
  /** Screen pixels per slide pixel now. */
  function pixelRatio() {
    return viewer.viewport.viewportToImageZoom(viewer.viewport.getZoom(true));
  }
  function update() {
    const headers = credentialHeaders(); // a renewed session's token for the tiles still to come
    if (headers.authorization !== viewer.ajaxHeaders?.authorization) viewer.setAjaxHeaders(headers);
    const ratio = pixelRatio();
    const bounds = viewer.viewport.viewportToImageRectangle(viewer.viewport.getBounds(true));
    const magnification = ratio >= 1 ? t("osd.magnified", { ratio: decimal(ratio, ratio >= 10 ? 0 : 1) })
      : t("osd.reduced", { ratio: decimal(1 / ratio, 1) });
    if (mpp) {
      const micronsPerScreenPx = mpp / ratio;
      const microns = niceMicrons(BAR_MAX_PX * micronsPerScreenPx);
      const px = microns / micronsPerScreenPx;
      bar.style.width = `${px}px`;
      barText.textContent = lengthText(microns);
      Object.assign(scale.dataset, { microns: String(microns), px: px.toFixed(2) });
      scale.hidden = false;
    } else {
      scale.hidden = true;
    }
    readout.textContent = t("osd.showing", { magnification, width: decimal(Math.min(bounds.width, width)),
      height: decimal(Math.min(bounds.height, height)), slideWidth: decimal(width), slideHeight: decimal(height) })
      + (mpp ? t("osd.mpp", { mpp: String(mpp) }) : t("osd.noMpp"));
    stage.dataset.pixelRatio = ratio.toFixed(4);
  }

  async function start() {
    const source = await tileSource(base);
    if (disposed) return;
    viewer = OpenSeadragon({ element: host, tileSources: source, drawer: "canvas", loadTilesWithAjax: true,
      ajaxHeaders: credentialHeaders(), showNavigationControl: false, maxZoomPixelRatio: MAX_PIXEL_RATIO,
      visibilityRatio: 0.5, constrainDuringPan: true, immediateRender: false, timeout: 60000,
      imageLoaderLimit: 4, // the workspace's own requests (verdicts, signing) are not queued behind tiles
      gestureSettingsMouse: { clickToZoom: false }, preserveImageSizeOnResize: true });
    host.osd = viewer; // for tests and the browser's console
    viewer.canvas.setAttribute("aria-label", t("osd.canvasLabel"));
    viewer.canvas.setAttribute("role", "application");
    viewer.addHandler("open", () => {
      if (heatmap) {
        viewer.addOverlay({ element: heat, location: new OpenSeadragon.Rect(0, 0, 1, height / width) });
        heatImage.load(`${base}/heatmap.png`, { loaded: "true" }).catch((error) => {
          readout.textContent = t("slide.heatmapFailed", { error: error.message });
        });
      }
      update();
    });
    viewer.addHandler("open-failed", (event) => {
      readout.textContent = t("osd.notOpened", { error: event.message });
    });
    viewer.addHandler("update-viewport", update);
    viewer.addHandler("tile-load-failed", (event) => { readout.dataset.tileError = String(event.message || ""); });
    zoomIn.addEventListener("click", () => viewer.viewport.zoomBy(2).applyConstraints());
    zoomOut.addEventListener("click", () => viewer.viewport.zoomBy(0.5).applyConstraints());
    home.addEventListener("click", () => viewer.viewport.goHome());
    native.addEventListener("click", () => {
      viewer.viewport.zoomTo(viewer.viewport.imageToViewportZoom(1)).applyConstraints();
    });
  }

  opacity.addEventListener("input", setOpacity);
  setOpacity();
  start().catch((error) => { readout.textContent = t("osd.notOpened", { error: error.message }); });
  return {
    figure,
    dispose() {
      disposed = true;
      heatImage.dispose();
      viewer?.destroy();
      viewer = null;
    },
  };
}
