// A stacked bar chart drawn as inline SVG (no library): one bar per day, one colour per series, with a legend.
// The SVG is an image with a title and a description for screen readers; callers also render the numbers as a
// table (the accessible alternative), so nothing is conveyed by colour alone.

import { dateTime, t } from "./i18n.js";

const SVG = "http://www.w3.org/2000/svg";
// Distinct on the dark surface (each at least 3:1 against it) and told apart by the legend's text too.
export const PALETTE = ["#8cc4ff", "#ffb366", "#b39dff", "#7ee0b0", "#ff8fa3", "#f2e07a", "#6fd3e8", "#d9a3ff"];

function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  element.append(...children);
  return element;
}

function niceMax(value) {
  if (value <= 5) return 5;
  const step = 10 ** Math.floor(Math.log10(value));
  return Math.ceil(value / step) * step;
}

/**
 * An SVG stacked bar chart.
 * @param {string[]} categories  x-axis labels (days), in order
 * @param {{label: string, values: number[]}[]} series  one value per category each
 * @param {{id: string, title: string, description: string, width?: number, height?: number}} options
 */
export function stackedBars(categories, series, options) {
  const width = options.width ?? 560;
  const height = options.height ?? 220;
  const margin = { top: 10, right: 10, bottom: 34, left: 36 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const totals = categories.map((_, i) => series.reduce((sum, s) => sum + s.values[i], 0));
  const top = niceMax(Math.max(0, ...totals));
  const y = (value) => margin.top + plotH - (value / top) * plotH;
  const slot = plotW / Math.max(1, categories.length);
  const barW = Math.max(2, Math.min(36, slot * 0.7));

  const titleId = `${options.id}-title`;
  const descId = `${options.id}-desc`;
  const chart = svg("svg", { id: options.id, class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-labelledby": `${titleId} ${descId}`, width, height },
  svg("title", { id: titleId }, options.title), svg("desc", { id: descId }, options.description));

  for (const tick of [0, top / 2, top]) {
    chart.append(svg("line", { x1: margin.left, x2: width - margin.right, y1: y(tick), y2: y(tick), class: "grid" }),
      svg("text", { x: margin.left - 6, y: y(tick) + 4, "text-anchor": "end", class: "tick" },
        Number.isInteger(tick) ? String(tick) : tick.toFixed(1)));
  }
  const labelEvery = Math.ceil(categories.length / 8);
  const last = categories.length - 1; // always labelled; the regular label before it only a whole gap away
  const labelled = (i) => i === last || (i % labelEvery === 0 && last - i >= labelEvery);
  categories.forEach((category, i) => {
    const x = margin.left + i * slot + (slot - barW) / 2;
    let base = 0;
    series.forEach((s, k) => {
      const value = s.values[i];
      if (!value) return;
      const rect = svg("rect", { x, y: y(base + value), width: barW, height: y(base) - y(base + value),
        fill: PALETTE[k % PALETTE.length], class: "bar-segment", "data-series": s.label, "data-category": category },
      svg("title", {}, `${category}: ${s.label}: ${value}`));
      chart.append(rect);
      base += value;
    });
    if (labelled(i)) {
      chart.append(svg("text", { x: x + barW / 2, y: height - margin.bottom + 16, "text-anchor": "middle",
        class: "tick" }, category.slice(5)));
    }
  });
  chart.append(svg("line", { x1: margin.left, x2: width - margin.right, y1: y(0), y2: y(0), class: "axis" }));
  return chart;
}

function niceRange(values, floor) {
  let low = Math.min(...values);
  let high = Math.max(...values);
  if (floor !== undefined) low = Math.min(low, floor);
  if (low === high) { low -= 1; high += 1; }
  const pad = (high - low) * 0.08;
  return [floor !== undefined && low === floor ? floor : low - pad, high + pad]; // nothing below a floor (scores)
}

function timeLabel(ms, spanMs) {
  const date = new Date(ms);
  return spanMs > 36 * 3600e3
    ? `${dateTime(date, { month: "2-digit", day: "2-digit" })} ${dateTime(date, { hour: "2-digit", minute: "2-digit" })}`
    : dateTime(date, { hour: "2-digit", minute: "2-digit" });
}

/**
 * An SVG line chart of values over time: one line with dots per series, on a time axis from `start` to `end`
 * shared by every chart of a page, with vertical markers (alerts) and horizontal reference lines (thresholds).
 * @param {{label: string, points: {t: number, v: number}[]}[]} series  times in ms since the epoch
 * @param {{id: string, title: string, description: string, start: number, end: number, unit: string,
 *          markers?: {t: number, label: string, kind: string}[], references?: {v: number, label: string}[],
 *          floor?: number, width?: number, height?: number}} options
 */
export function timeSeries(series, options) {
  const width = options.width ?? 640;
  const height = options.height ?? 170;
  const margin = { top: 12, right: 12, bottom: 24, left: 44 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const values = series.flatMap((s) => s.points.map((p) => p.v)).concat((options.references ?? []).map((r) => r.v));
  const [low, high] = niceRange(values.length ? values : [0, 1], options.floor);
  const span = Math.max(1, options.end - options.start);
  const x = (t) => margin.left + ((t - options.start) / span) * plotW;
  const y = (v) => margin.top + plotH - ((v - low) / (high - low)) * plotH;
  const titleId = `${options.id}-title`;
  const descId = `${options.id}-desc`;
  const chart = svg("svg", { id: options.id, class: "chart timeseries", viewBox: `0 0 ${width} ${height}`,
    role: "img", "aria-labelledby": `${titleId} ${descId}`, preserveAspectRatio: "xMidYMid meet" },
  svg("title", { id: titleId }, options.title), svg("desc", { id: descId }, options.description));

  for (const tick of [low, (low + high) / 2, high]) {
    const shown = Math.abs(high - low) >= 10 ? Math.round(tick) : tick.toFixed(1);
    chart.append(svg("line", { x1: margin.left, x2: width - margin.right, y1: y(tick), y2: y(tick), class: "grid" }),
      svg("text", { x: margin.left - 6, y: y(tick) + 4, "text-anchor": "end", class: "tick" }, String(shown)));
  }
  for (let i = 0; i <= 4; i += 1) {
    const t = options.start + (span * i) / 4;
    chart.append(svg("text", { x: x(t), y: height - 6, class: "tick",
      "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" }, timeLabel(t, span)));
  }
  const markerXs = [];
  for (const marker of options.markers ?? []) {
    if (marker.t < options.start || marker.t > options.end) continue;
    markerXs.push(x(marker.t));
    chart.append(svg("line", { x1: x(marker.t), x2: x(marker.t), y1: margin.top, y2: margin.top + plotH,
      class: `marker marker-${marker.kind}`, "data-kind": marker.kind }, svg("title", {}, marker.label)));
  }
  // A threshold's label ends at the right end of its line, or just before the alert markers that would cross it
  // there (a live view's alerts are at the right, now); it is drawn last, on its halo (.tick).
  const labelEnd = (wide) => {
    let end = width - margin.right - 2;
    for (;;) {
      const crossing = markerXs.filter((mx) => mx >= end - wide - 4 && mx <= end + 4);
      if (!crossing.length || Math.min(...crossing) - 6 - wide < margin.left) return end;
      end = Math.min(...crossing) - 6;
    }
  };
  const referenceLabels = [];
  for (const reference of options.references ?? []) {
    chart.append(svg("line", { x1: margin.left, x2: width - margin.right, y1: y(reference.v), y2: y(reference.v),
      class: "reference" }, svg("title", {}, reference.label)));
    referenceLabels.push(svg("text", { x: labelEnd(reference.label.length * 6.5), y: y(reference.v) - 3, // 11-px text
      "text-anchor": "end", class: "tick reference-label" }, reference.label));
  }
  series.forEach((s, k) => {
    const colour = PALETTE[k % PALETTE.length];
    const points = s.points.filter((p) => p.t >= options.start && p.t <= options.end);
    if (points.length > 1) {
      chart.append(svg("polyline", { points: points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" "),
        fill: "none", stroke: colour, "stroke-width": 2, class: "series-line", "data-series": s.label }));
    }
    for (const p of points) {
      chart.append(svg("circle", { cx: x(p.t), cy: y(p.v), r: 3, fill: colour, class: "point",
        "data-series": s.label }, svg("title", {}, t("chart.point", { series: s.label,
          value: `${p.v}${options.unit ? ` ${options.unit}` : ""}`,
          time: dateTime(new Date(p.t), { dateStyle: "short", timeStyle: "medium" }) }))));
    }
  });
  chart.append(svg("line", { x1: margin.left, x2: width - margin.right, y1: margin.top + plotH,
    y2: margin.top + plotH, class: "axis" }), ...referenceLabels);
  return chart;
}
