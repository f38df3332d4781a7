// The viewer's reading tools around the stage: the toolbar (left-button tool, zoom, fit, reset, measurements),
// the list of measurements, the keyboard shortcuts listed in the page, and the previous/next study of the worklist.

import { api } from "./api.js";
import { h } from "./dom.js";

const KEY_NAMES = { "+": "+", "-": "−" };

/**
 * The toolbar for the Cornerstone stage's `controls` (the left button's tool is pressed) and the list of
 * measurements, which goes under the image (not above it: a list growing above would move the image mid-drag).
 */
export function toolControls(controls) {
  const modeButtons = controls.modes.map(([key, label]) => h("button", { type: "button", class: "tool",
    id: `tool-${label.toLowerCase().replace(/\W+/g, "-")}`, "aria-pressed": String(key === "w"),
    "aria-keyshortcuts": key, title: `${label} (${key.toUpperCase()})`, onClick: () => controls.selectMode(key) },
  label === "Window/level" ? "W/L" : label));
  controls.onMode = (key) => modeButtons.forEach((b, i) => b.setAttribute("aria-pressed",
    String(controls.modes[i][0] === key)));
  const action = (id, label, key, run, text = label) => h("button", { type: "button", class: "tool", id,
    "aria-keyshortcuts": key, "aria-label": label, title: `${label} (${KEY_NAMES[key] ?? key.toUpperCase()})`,
    onClick: run }, text);
  const list = h("ol", { class: "measurements", id: "measurements", "aria-live": "polite",
    "aria-label": "Measurements" });
  controls.onMeasurements = (items) => {
    list.replaceChildren(...items.map((m) => h("li", { dataset: { kind: m.kind, value: String(m.value ?? ""), points: m.points } },
      `${m.kind} ${m.value === undefined ? "…" : m.value.toFixed(m.kind === "Angle" ? 1 : 2)} ${m.unit}`)));
  };
  return { list, toolbar: [
    h("div", { class: "cs-toolbar", role: "toolbar", "aria-label": "Left mouse button" }, modeButtons),
    h("div", { class: "cs-toolbar", role: "toolbar", "aria-label": "View" },
      action("zoom-in", "Zoom in", "+", () => controls.zoomBy(1.25), "+"),
      action("zoom-out", "Zoom out", "-", () => controls.zoomBy(0.8), "−"),
      action("actual-size", "Actual pixels", "1", () => controls.actualSize(), "1:1"),
      action("fit", "Fit", "f", () => controls.fit()),
      action("reset-view", "Reset view", "r", () => controls.reset(), "Reset"),
      action("clear-measurements", "Clear measurements", "c", () => controls.clearMeasurements(), "Clear"))] };
}

/** The shortcuts, in the page (a <details> under the panel). */
export function shortcutHelp(ct, serverRendered) {
  const rows = serverRendered ? [] : [
    ["W", "Window/level with the left button (drag: right = wider, down = higher level)"], ["P", "Pan"],
    ["Z", "Zoom"], ["L", "Length (mm from the pixel spacing)"], ["A", "Angle"], ["+ / −", "Zoom in / out"],
    ["1", "Actual pixels (one image pixel per screen pixel)"], ["F", "Fit the image"], ["R", "Reset view and window"],
    ["C", "Clear measurements"], ["Middle drag", "Pan"], ["Right drag", "Zoom"],
    ["Wheel", ct ? "Scroll slices" : "Zoom"]];
  if (ct) rows.push(["↑ / ↓, Page Up / Down", "Previous / next slice (by 1 / 10)"], ["7 / 8 / 9", "Soft tissue / lung / bone window"], ["O", "Segmentation outlines on / off"]);
  else rows.push(["H", "AI heatmap on / off"]);
  rows.push(["[ / ]", "Previous / next study in the worklist"]);
  return h("details", { class: "shortcuts", id: "shortcuts" }, h("summary", {}, "Keyboard shortcuts"),
    h("table", {}, h("tbody", {}, rows.map(([key, what]) => h("tr", {}, h("th", { scope: "row" }, key), h("td", {}, what))))));
}

/** Fill `holder` with previous/next study buttons (finished reads of the worklist's first 200); returns a cleanup. */
export function studyNeighbours(holder, jobId, uid) {
  let stopped = false;
  api("/v1/worklist?limit=200").then((page) => {
    if (stopped) return;
    const reads = page.items.filter((item) => item.state === "done")
      .flatMap((item) => item.outcomes.map((o) => [item.job_id, o.uid]));
    const here = reads.findIndex(([j, u]) => j === jobId && u === uid);
    const go = (entry) => () => {
      window.location.hash = `#/viewer/${encodeURIComponent(entry[0])}/${encodeURIComponent(entry[1])}`;
    };
    const button = (id, label, key, entry) => h("button", { type: "button", id, "aria-keyshortcuts": key,
      disabled: !entry, onClick: entry ? go(entry) : null }, label, h("kbd", {}, key));
    holder.replaceChildren(button("previous-study", "Previous study", "[", here > 0 ? reads[here - 1] : null),
      button("next-study", "Next study", "]", here >= 0 && here + 1 < reads.length ? reads[here + 1] : null));
  }).catch(() => {});
  return () => { stopped = true; };
}
