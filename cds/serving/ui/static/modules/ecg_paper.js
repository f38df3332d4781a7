// ECG paper on a <canvas>: the standard grid (1 mm minor, 5 mm major lines) at 25 mm/s and 10 mm/mV, scaled from
// CSS pixels with a stated px-per-mm, the twelve leads as 3 x 4 columns of 2.5 s (6 x 2 when the window is too
// narrow for 3 x 4 at a legible scale), and the 10-s lead II rhythm strip with its beat marks and calipers (drag on
// the strip; or the two number fields; or, on the focused strip, the arrow keys move the end caliper, with Shift the
// start one, by 1 mm = 40 ms). Lead names are HTML labels laid over the canvas (real text: readable by assistive
// technology and by tests). Everything is redrawn when its column changes width.

import { decimal, h, replace } from "./dom.js";
import { number, t } from "./i18n.js";

export const MM_PER_S = 25;
const MM_PER_MV = 10;
const LEFT_MM = 8; // the 1-mV calibration pulse before each row
const RIGHT_MM = 2;
const SEGMENT_S = 2.5;
const MIN_PX_PER_MM = 4; // below this the 1-mm grid blurs into a wash
const MAX_PX_PER_MM = 8;
export const COLOURS = { paper: "#fffaf7", minor: "#f2c4c4", major: "#d9777a", trace: "#111111",
  beat: "#1f5fbf", text: "#3a2020" };
const LAYOUTS = {
  "3x4": { rows: [["I", "aVR", "V1", "V4"], ["II", "aVL", "V2", "V5"], ["III", "aVF", "V3", "V6"]], rowMm: 30 },
  "6x2": { rows: [["I", "V1"], ["II", "V2"], ["III", "V3"], ["aVR", "V4"], ["aVL", "V5"], ["aVF", "V6"]], rowMm: 25 },
};
const STRIP_MM = 35;
const STRIP_S = 10;
const STEP_MS = 1000 / MM_PER_S; // one small box

/** Width in mm of a paper holding `columns` segments of 2.5 s (or `seconds`). */
function paperMm(seconds) {
  return LEFT_MM + seconds * MM_PER_S + RIGHT_MM;
}

/** The layout and scale for a container `width` CSS px wide: 3 x 4 if it fits at a legible scale, else 6 x 2. */
export function chooseScale(width) {
  const wide = paperMm(4 * SEGMENT_S);
  const quarter = (value) => Math.floor(value * 4) / 4; // whole quarter pixels: a stable, stated scale
  if (width / wide >= MIN_PX_PER_MM) {
    return { layout: "3x4", pxPerMm: Math.min(MAX_PX_PER_MM, quarter(width / wide)) };
  }
  const narrow = paperMm(2 * SEGMENT_S);
  return { layout: "6x2", pxPerMm: Math.min(MAX_PX_PER_MM, Math.max(MIN_PX_PER_MM, quarter(width / narrow))) };
}

/** Size `canvas` to `widthMm` x `heightMm` at `pxPerMm` CSS px (sharp on high-density screens); its 2-D context. */
function sized(canvas, widthMm, heightMm, pxPerMm) {
  const ratio = window.devicePixelRatio || 1;
  const [w, hgt] = [widthMm * pxPerMm, heightMm * pxPerMm];
  canvas.width = Math.round(w * ratio);
  canvas.height = Math.round(hgt * ratio);
  canvas.style.width = `${w}px`;
  canvas.style.height = `${hgt}px`;
  const context = canvas.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  return context;
}

/** The grid: paper, then 1-mm lines, then 5-mm lines, each on a whole device pixel so none blurs. */
function drawGrid(context, widthMm, heightMm, pxPerMm) {
  const ratio = window.devicePixelRatio || 1;
  const snap = (mm) => (Math.round(mm * pxPerMm * ratio) + 0.5) / ratio;
  context.fillStyle = COLOURS.paper;
  context.fillRect(0, 0, widthMm * pxPerMm, heightMm * pxPerMm);
  for (const [every, colour, width] of [[1, COLOURS.minor, 1], [5, COLOURS.major, 1]]) {
    context.beginPath();
    for (let mm = 0; mm <= widthMm; mm += every) {
      context.moveTo(snap(mm), 0);
      context.lineTo(snap(mm), heightMm * pxPerMm);
    }
    for (let mm = 0; mm <= heightMm; mm += every) {
      context.moveTo(0, snap(mm));
      context.lineTo(widthMm * pxPerMm, snap(mm));
    }
    context.strokeStyle = colour;
    context.lineWidth = width / ratio;
    context.stroke();
  }
}

/** The 1-mV, 200-ms calibration pulse in the left margin, its foot on the row's baseline `y` (px). */
function drawCalibration(context, y, pxPerMm) {
  const x = (mm) => mm * pxPerMm;
  context.beginPath();
  context.moveTo(x(1), y);
  context.lineTo(x(2), y);
  context.lineTo(x(2), y - MM_PER_MV * pxPerMm);
  context.lineTo(x(7), y - MM_PER_MV * pxPerMm);
  context.lineTo(x(7), y);
  context.lineTo(x(LEFT_MM), y);
  context.strokeStyle = COLOURS.trace;
  context.lineWidth = 1.25;
  context.stroke();
}

/** One lead from `t0` to `t1` s, its time 0 at x0 px and its 0 mV at y0 px. */
function drawTrace(context, values, fs, t0, t1, x0, y0, pxPerMm) {
  const first = Math.max(0, Math.floor(t0 * fs));
  const last = Math.min(values.length - 1, Math.ceil(t1 * fs));
  const pxPerS = MM_PER_S * pxPerMm;
  const pxPerMv = MM_PER_MV * pxPerMm;
  context.beginPath();
  for (let i = first; i <= last; i += 1) {
    const x = x0 + (i / fs - t0) * pxPerS;
    const y = y0 - values[i] * pxPerMv;
    if (i === first) context.moveTo(x, y);
    else context.lineTo(x, y);
  }
  context.strokeStyle = COLOURS.trace;
  context.lineWidth = 1.25;
  context.lineJoin = "round";
  context.stroke();
}

function median(values) {
  const sorted = Float64Array.from(values).sort();
  return sorted.length ? sorted[Math.floor(sorted.length / 2)] : 0;
}

/** The leads by name, each centred on its median (the paper's baseline), in mV. */
function centredLeads(signals) {
  const leads = {};
  signals.leads.forEach((name, index) => {
    const values = signals.values[index];
    const middle = median(values);
    leads[name] = Float64Array.from(values, (v) => v - middle);
  });
  return leads;
}

function label(text, xMm, yMm, pxPerMm) {
  const element = h("span", { class: "lead-label", dataset: { lead: text } }, text);
  element.style.left = `${xMm * pxPerMm}px`;
  element.style.top = `${yMm * pxPerMm}px`;
  return element;
}

/** Draw the twelve leads into `paper` (a positioned box holding `canvas`); answers the layout drawn. */
function drawTwelveLeads(paper, canvas, leads, fs, width) {
  const { layout, pxPerMm } = chooseScale(width);
  const { rows, rowMm } = LAYOUTS[layout];
  const columns = rows[0].length;
  const [widthMm, heightMm] = [paperMm(columns * SEGMENT_S), rows.length * rowMm];
  const context = sized(canvas, widthMm, heightMm, pxPerMm);
  drawGrid(context, widthMm, heightMm, pxPerMm);
  const labels = [];
  rows.forEach((names, r) => {
    const baseline = (r * rowMm + rowMm * 0.6) * pxPerMm;
    drawCalibration(context, baseline, pxPerMm);
    names.forEach((name, c) => {
      const t0 = c * SEGMENT_S;
      const x0 = (LEFT_MM + t0 * MM_PER_S) * pxPerMm;
      if (leads[name]) drawTrace(context, leads[name], fs, t0, t0 + SEGMENT_S, x0, baseline, pxPerMm);
      if (c > 0) { // the lead change, as printed: a short bar across the baseline
        context.beginPath();
        context.moveTo(x0, baseline - 3 * pxPerMm);
        context.lineTo(x0, baseline + 3 * pxPerMm);
        context.strokeStyle = COLOURS.trace;
        context.lineWidth = 1.5;
        context.stroke();
      }
      labels.push(label(name, LEFT_MM + t0 * MM_PER_S + 1, r * rowMm + 1, pxPerMm));
    });
  });
  replace(paper, canvas, labels);
  paper.style.width = canvas.style.width;
  Object.assign(canvas.dataset, { layout, pxPerMm: String(pxPerMm), drawn: "true" });
  return { layout, pxPerMm, widthMm, heightMm };
}

/** Draw the 10-s lead II rhythm strip with its beat marks; answers {pxPerMm, x0} (x0: time 0 in CSS px). */
function drawRhythmStrip(paper, canvas, overlay, lead, fs, beats, pxPerMm) {
  const widthMm = paperMm(STRIP_S);
  const context = sized(canvas, widthMm, STRIP_MM, pxPerMm);
  sized(overlay, widthMm, STRIP_MM, pxPerMm);
  drawGrid(context, widthMm, STRIP_MM, pxPerMm);
  const baseline = STRIP_MM * 0.6 * pxPerMm;
  const x0 = LEFT_MM * pxPerMm;
  drawCalibration(context, baseline, pxPerMm);
  if (lead) drawTrace(context, lead, fs, 0, STRIP_S, x0, baseline, pxPerMm);
  context.fillStyle = COLOURS.beat;
  for (const t of beats) { // a small triangle above each detected beat
    if (t > STRIP_S) break;
    const x = x0 + t * MM_PER_S * pxPerMm;
    context.beginPath();
    context.moveTo(x - 1.2 * pxPerMm, 1 * pxPerMm);
    context.lineTo(x + 1.2 * pxPerMm, 1 * pxPerMm);
    context.lineTo(x, 3 * pxPerMm);
    context.closePath();
    context.fill();
  }
  context.fillStyle = COLOURS.text;
  context.font = "11px system-ui, sans-serif";
  context.textBaseline = "bottom";
  const bottom = STRIP_MM * pxPerMm - 2;
  const second = (s) => t("unit.seconds", { value: decimal(s) });
  for (let s = 0; s < STRIP_S; s += 1) context.fillText(second(s), x0 + s * MM_PER_S * pxPerMm + 2, bottom);
  context.textAlign = "right"; // the last second's mark ends at the paper's edge
  context.fillText(second(STRIP_S), x0 + STRIP_S * MM_PER_S * pxPerMm - 2, bottom);
  replace(paper, canvas, overlay, label("II", LEFT_MM + 1, 4, pxPerMm));
  paper.style.width = canvas.style.width;
  Object.assign(canvas.dataset, { pxPerMm: String(pxPerMm), x0: String(x0), drawn: "true" });
  return { pxPerMm, x0, widthMm };
}

/** Calipers on the rhythm strip: drag with the pointer, type the two times, or use the arrow keys. */
class Calipers {
  constructor(beats, durationS) {
    this.beats = beats;
    this.maxMs = Math.round(durationS * 1000);
    this.start = null;
    this.end = null;
    this.scale = null;
    const field = (id) => h("input", { type: "number", id, min: 0, max: this.maxMs, step: 10,
      inputmode: "numeric", "aria-describedby": "caliper-help" });
    this.startInput = field("caliper-start");
    this.endInput = field("caliper-end");
    this.readout = h("p", { id: "caliper-readout", "aria-live": "polite" }, t("ecgPaper.idle"));
    for (const input of [this.startInput, this.endInput]) {
      input.addEventListener("input", () => this.fromInputs());
    }
  }

  controls() {
    return h("div", { class: "caliper-controls" },
      h("div", { class: "field inline" }, h("label", { for: "caliper-start" }, t("ecgPaper.caliperStart")),
        this.startInput),
      h("div", { class: "field inline" }, h("label", { for: "caliper-end" }, t("ecgPaper.caliperEnd")),
        this.endInput),
      this.readout,
      h("p", { id: "caliper-help", class: "muted" }, t("ecgPaper.help")));
  }

  attach(strip, overlay) {
    this.overlay = overlay;
    let dragging = false;
    overlay.addEventListener("pointerdown", (event) => {
      dragging = true;
      overlay.setPointerCapture(event.pointerId);
      this.start = this.end = this.msAt(event.clientX);
      this.update({ live: true });
    });
    overlay.addEventListener("pointermove", (event) => {
      if (!dragging) return;
      this.end = this.msAt(event.clientX);
      this.update({ live: true });
    });
    const stop = () => {
      if (!dragging) return;
      dragging = false;
      this.update(); // the readout (a live region) speaks once, when the drag ends
    };
    overlay.addEventListener("pointerup", stop);
    overlay.addEventListener("pointercancel", stop);
    strip.addEventListener("keydown", (event) => {
      const step = { ArrowLeft: -STEP_MS, ArrowRight: STEP_MS }[event.key];
      if (step === undefined) return;
      event.preventDefault();
      if (this.start === null) this.placeOnFirstBeats();
      if (event.shiftKey) this.start = this.clamp(this.start + step);
      else this.end = this.clamp(this.end + step);
      this.update();
    });
  }

  placeOnFirstBeats() {
    const [a = 1, b = a + 1] = this.beats;
    this.start = Math.round(a * 1000);
    this.end = Math.round(b * 1000);
  }

  clamp(ms) {
    return Math.min(this.maxMs, Math.max(0, ms));
  }

  msAt(clientX) {
    const rect = this.overlay.getBoundingClientRect();
    const { pxPerMm, x0 } = this.scale;
    return this.clamp(((clientX - rect.left - x0) / (pxPerMm * MM_PER_S)) * 1000);
  }

  fromInputs() {
    const [a, b] = [this.startInput.value, this.endInput.value].map((v) => (v === "" ? null : Number(v)));
    if (a === null || b === null || !Number.isFinite(a) || !Number.isFinite(b)) return;
    this.start = this.clamp(a);
    this.end = this.clamp(b);
    this.update({ writeInputs: false });
  }

  /** Show the calipers; `live` (while dragging) leaves the spoken readout until the drag ends. */
  update({ writeInputs = true, live = false } = {}) {
    if (writeInputs) {
      this.startInput.value = String(Math.round(this.start));
      this.endInput.value = String(Math.round(this.end));
    }
    this.draw();
    if (live) return;
    const ms = Math.abs(this.end - this.start);
    this.readout.dataset.ms = ms.toFixed(1);
    this.readout.textContent = ms < 1 ? t("ecgPaper.idle")
      : t("ecgPaper.readout", { ms: Math.round(ms), bpm: Math.round(60000 / ms) });
  }

  /** Draw the two calipers (after the strip was drawn at `scale`, or again at the current one). */
  draw(scale = this.scale) {
    this.scale = scale;
    if (!this.overlay || !scale) return;
    const context = this.overlay.getContext("2d");
    const ratio = window.devicePixelRatio || 1;
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, this.overlay.width, this.overlay.height);
    if (this.start === null || Math.abs(this.end - this.start) < 1) return;
    const x = (ms) => scale.x0 + (ms / 1000) * MM_PER_S * scale.pxPerMm;
    const height = this.overlay.height / ratio;
    const [a, b] = [x(this.start), x(this.end)].sort((p, q) => p - q);
    const y = 5 * scale.pxPerMm;
    context.strokeStyle = "#0b4fa8";
    context.lineWidth = 2;
    context.beginPath();
    context.moveTo(a, 0); context.lineTo(a, height);
    context.moveTo(b, 0); context.lineTo(b, height);
    context.moveTo(a, y); context.lineTo(b, y);
    context.stroke();
    const ms = Math.abs(this.end - this.start);
    const text = t("ecgPaper.caliperLabel", { ms: Math.round(ms), bpm: Math.round(60000 / ms) });
    context.font = "bold 13px system-ui, sans-serif";
    const width = context.measureText(text).width + 8;
    const left = Math.min(Math.max(0, (a + b) / 2 - width / 2), this.overlay.width / ratio - width);
    context.fillStyle = "#0b4fa8";
    context.fillRect(left, y + 3, width, 18);
    context.fillStyle = "#ffffff";
    context.textBaseline = "middle";
    context.fillText(text, left + 4, y + 12);
  }
}

/** The twelve leads and the rhythm strip with calipers: {element, dispose}. */
export function tracings(signals, beats, durationS) {
  const leads = centredLeads(signals);
  const calipers = new Calipers(beats, durationS);
  const twelve = h("canvas", { id: "ecg-leads", role: "img",
    "aria-label": t("ecgPaper.leadsLabel") });
  const leadPaper = h("div", { class: "ecg-paper", id: "ecg-leads-paper" }, twelve);
  const strip = h("canvas", { id: "ecg-strip", "aria-hidden": "true" });
  const overlay = h("canvas", { id: "ecg-calipers", class: "calipers", "aria-hidden": "true" });
  const stripPaper = h("div", { class: "ecg-paper strip", id: "ecg-strip-paper", tabindex: 0, role: "group",
    "aria-label": t("ecgPaper.stripLabel"), "aria-describedby": "caliper-readout" }, strip, overlay);
  const scaleNote = h("p", { id: "ecg-scale", class: "muted" });
  const column = h("div", { class: "ecg-tracings" },
    h("figure", { class: "ecg-figure" }, leadPaper, h("figcaption", {}, scaleNote)),
    h("figure", { class: "ecg-figure" }, h("figcaption", {},
      h("h2", { id: "strip-heading" }, t("ecgPaper.stripTitle")),
      h("span", { class: "muted" }, t("ecgPaper.beatMarks"))),
    h("div", { class: "strip-scroll" }, stripPaper), calipers.controls()));
  calipers.attach(stripPaper, overlay);
  let drawnWidth = -1;
  function draw() {
    const width = Math.floor(column.clientWidth);
    if (width === drawnWidth || width <= 0) return;
    drawnWidth = width;
    const { layout, pxPerMm } = drawTwelveLeads(leadPaper, twelve, leads, signals.sampling_hz, width);
    const scale = drawRhythmStrip(stripPaper, strip, overlay, leads.II, signals.sampling_hz, beats, pxPerMm);
    calipers.draw(scale);
    scaleNote.textContent = t("ecgPaper.scale", { px: number(pxPerMm, { maximumFractionDigits: 2 }),
      layout: t(layout === "3x4" ? "ecgPaper.layout3x4" : "ecgPaper.layout6x2") });
  }
  let frame = 0;
  const observer = new ResizeObserver(() => {
    window.cancelAnimationFrame(frame);
    frame = window.requestAnimationFrame(draw);
  });
  observer.observe(column);
  return { element: column, dispose: () => { observer.disconnect(); window.cancelAnimationFrame(frame); } };
}
