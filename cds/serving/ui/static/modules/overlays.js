// What the Cornerstone viewer draws over the pixels itself: the AI heatmap on a fixed 0–1 probability scale, CT
// segmentation outlines, and the orientation letters at the edges.
//
// Layers are canvases inside the viewport element, redrawn on every render onto the rectangle the image's corners
// occupy on screen, so they follow pan and zoom and stay on the pixels they were computed from.

import { h } from "./dom.js";
import { t } from "./i18n.js";

// A map's values are its finding's probability times the normalised map (so none is above the probability); the
// server says below which value nothing is drawn (X-Heatmap-Floor, the view's heatmap_floor). Maps written before
// that scale are scaled to their own peak: the legend says so (heatmap_scale "peak").
export const HEATMAP_FLOOR = 0.05; // the server's floor on the probability scale

/** [r, g, b, alpha] of a heat value on the fixed scale: red (0) to yellow (1), alpha following the heat. */
export function heatColour(value, floor = HEATMAP_FLOOR) {
  const v = Math.min(1, Math.max(0, value));
  return [255, Math.round(255 * v), 0, v > floor ? Math.round(255 * v) : 0];
}

/** A canvas [rows × columns] of the heatmap (float32, row by row) coloured on the fixed scale. */
export function heatCanvas(values, rows, columns, floor = HEATMAP_FLOOR) {
  const canvas = document.createElement("canvas");
  canvas.width = columns;
  canvas.height = rows;
  const context = canvas.getContext("2d");
  const picture = context.createImageData(columns, rows);
  for (let i = 0; i < values.length; i += 1) picture.data.set(heatColour(values[i], floor), i * 4);
  context.putImageData(picture, 0, 0);
  return canvas;
}

/** The legend: the colour bar from 0 to 1 and what its values mean; the same on every map of a scale. */
export function heatLegend(scale = "probability", floor = HEATMAP_FLOOR) {
  const bar = document.createElement("canvas");
  bar.width = 256;
  bar.height = 1;
  bar.className = "heat-bar";
  bar.setAttribute("aria-hidden", "true");
  const context = bar.getContext("2d");
  const picture = context.createImageData(256, 1);
  for (let x = 0; x < 256; x += 1) {
    const [r, g, b, a] = heatColour(x / 255, floor);
    picture.data.set([r, g, b, Math.max(a, 40)], x * 4);
  }
  context.putImageData(picture, 0, 0);
  return h("figure", { class: "ai-heat-legend", id: "heat-legend" }, bar,
    h("div", { class: "heat-ticks", "aria-hidden": "true" }, ["0", "0.25", "0.5", "0.75", "1"].map((t) => {
      const tick = h("span", {}, t);
      tick.style.left = `${Number(t) * 100}%`;
      return tick;
    })),
    h("figcaption", { dataset: { scale } },
      t(scale === "peak" ? "overlays.peak" : "overlays.probability", { floor: String(floor) })));
}

/** A canvas layer over the viewport element's own canvas; `draw(context, rect)` paints it. */
export class Layer {
  constructor(id, parent) {
    this.canvas = h("canvas", { id, class: "cs-layer", "aria-hidden": "true" });
    parent.append(this.canvas);
    this._source = null; // a canvas or ImageBitmap covering the whole image
    this.opacity = 1;
    this.painted = ""; // what was painted last: a window/level change repaints the image, not this layer
  }

  get source() { return this._source; }

  set source(value) {
    this._source = value;
    this.painted = "";
  }

  get hidden() { return this.canvas.hidden; }

  set hidden(value) { this.canvas.hidden = value; }

  /** Repaint onto `rect` (CSS px: x, y, width, height of the image on screen) at device pixel ratio `dpr`. */
  paint(rect, dpr, smooth) {
    const { canvas } = this;
    const width = Math.round(canvas.clientWidth * dpr);
    const height = Math.round(canvas.clientHeight * dpr);
    const key = [width, height, dpr, smooth, this.opacity, ...(this._source && rect
      ? [rect.x, rect.y, rect.width, rect.height] : [])].join();
    if (key === this.painted) return; // the same picture in the same place (only the window changed)
    this.painted = key;
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    const context = canvas.getContext("2d");
    context.clearRect(0, 0, width, height);
    if (!this.source || !rect) return;
    context.globalAlpha = this.opacity;
    context.imageSmoothingEnabled = smooth;
    context.drawImage(this.source, rect.x * dpr, rect.y * dpr, rect.width * dpr, rect.height * dpr);
  }
}

const LETTERS = [["L", "R"], ["P", "A"], ["H", "F"]]; // patient axes (LPS): + and − directions

/** The letters of a direction in patient space, strongest first ("L", "LP"…); "" when none is given. */
export function directionLetters(direction) {
  if (!direction) return "";
  return direction.map((c, axis) => [Math.abs(c), LETTERS[axis][c > 0 ? 0 : 1]])
    .filter(([size]) => size > 0.3).sort((a, b) => b[0] - a[0]).map(([, letter]) => letter).join("");
}

/** The opposite of a letter string from {@link directionLetters} or PatientOrientation (0020,0020). */
export function oppositeLetters(letters) {
  const pairs = { L: "R", R: "L", A: "P", P: "A", H: "F", F: "H" };
  return [...letters].map((c) => pairs[c] ?? "").join("");
}

/** Four edge labels (top, right, bottom, left) kept on the viewport element; `idPrefix` for a second viewport. */
export class OrientationMarkers {
  constructor(parent, idPrefix = "") {
    this.marks = ["top", "right", "bottom", "left"].map((edge) => {
      const mark = h("span", { class: `orientation orientation-${edge}`, id: `${idPrefix}orientation-${edge}` });
      parent.append(mark);
      return mark;
    });
  }

  /** `right` and `down`: letters of the screen's right and down directions in the patient ("" when unknown). */
  show(right, down) {
    const text = [oppositeLetters(down), right, down, oppositeLetters(right)];
    this.marks.forEach((mark, i) => {
      mark.textContent = text[i];
      mark.hidden = !text[i];
    });
  }
}
