// The viewer's reading tools around the stage: the toolbar (left-button tool, zoom, fit, reset, measurements),
// the list of measurements, the keyboard shortcuts listed in the page (the tag view, the next series and the
// comparison with a prior among them), and the previous/next study of the worklist.

import { api } from "./api.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";

const KEY_NAMES = { "+": "+", "-": "−" };
const MODE_KEYS = ["w", "p", "z", "l", "a"]; // the stage's left-button tools, named by tools.mode.<key>

function modeName(key, label) {
  return MODE_KEYS.includes(key) ? t(`tools.mode.${key}`) : label;
}

/**
 * The toolbar for the Cornerstone stage's `controls` (the left button's tool is pressed) and the list of
 * measurements, which goes under the image (not above it: a list growing above would move the image mid-drag).
 */
export function toolControls(controls) {
  const modeButtons = controls.modes.map(([key, label]) => h("button", { type: "button", class: "tool",
    id: `tool-${label.toLowerCase().replace(/\W+/g, "-")}`, "aria-pressed": String(key === "w"),
    "aria-keyshortcuts": key, title: t("tools.keyed", { label: modeName(key, label), key: key.toUpperCase() }),
    onClick: () => controls.selectMode(key) }, key === "w" ? t("tools.wl") : modeName(key, label)));
  controls.onMode = (key) => modeButtons.forEach((b, i) => b.setAttribute("aria-pressed",
    String(controls.modes[i][0] === key)));
  const action = (id, label, key, run, text = label) => h("button", { type: "button", class: "tool", id,
    "aria-keyshortcuts": key, "aria-label": label,
    title: t("tools.keyed", { label, key: KEY_NAMES[key] ?? key.toUpperCase() }),
    onClick: run }, text);
  const list = h("ol", { class: "measurements", id: "measurements", "aria-live": "polite",
    "aria-label": t("tools.measurements") });
  controls.onMeasurements = (items) => {
    list.replaceChildren(...items.map((m) => h("li", { dataset: { kind: m.kind, value: String(m.value ?? ""), points: m.points } },
      `${t(`tools.measure.${m.kind}`)} ${m.value === undefined ? "…" : m.value.toFixed(m.kind === "Angle" ? 1 : 2)}`
        + ` ${m.unit}`)));
  };
  return { list, toolbar: [
    h("div", { class: "cs-toolbar", role: "toolbar", "aria-label": t("tools.leftButton") }, modeButtons),
    h("div", { class: "cs-toolbar", role: "toolbar", "aria-label": t("tools.view") },
      action("zoom-in", t("tools.zoomIn"), "+", () => controls.zoomBy(1.25), "+"),
      action("zoom-out", t("tools.zoomOut"), "-", () => controls.zoomBy(0.8), "−"),
      action("actual-size", t("tools.actualSize"), "1", () => controls.actualSize(), "1:1"),
      action("fit", t("tools.fit"), "f", () => controls.fit()),
      action("reset-view", t("tools.resetView"), "r", () => controls.reset(), t("tools.reset")),
      action("clear-measurements", t("tools.clearMeasurements"), "c", () => controls.clearMeasurements(),
        t("tools.clear")))] };
}

/** The shortcuts, in the page (a <details> under the panel). */
export function shortcutHelp(ct, serverRendered) {
  const rows = serverRendered ? [] : [
    ["W", t("tools.key.w")], ["P", t("tools.key.p")], ["Z", t("tools.key.z")], ["L", t("tools.key.l")],
    ["A", t("tools.key.a")], ["+ / −", t("tools.key.zoom")], ["1", t("tools.key.actual")], ["F", t("tools.key.fit")],
    ["R", t("tools.key.reset")], ["C", t("tools.key.clear")], [t("tools.key.middleDrag"), t("tools.key.p")],
    [t("tools.key.rightDrag"), t("tools.key.z")],
    [t("tools.key.wheel"), t(ct ? "tools.key.scrollSlices" : "tools.key.z")]];
  if (ct) {
    rows.push([t("tools.key.pageUpDown"), t("tools.key.slices")], ["7 / 8 / 9", t("tools.key.presets")],
      ["O", t("tools.key.outlines")]);
  } else rows.push(["H", t("tools.key.heatmap")]);
  rows.push(["T", t("tools.key.tags")], ["S", t("tools.key.series")], ["V", t("tools.key.compare")],
    ["[ / ]", t("tools.key.studies")]);
  return h("details", { class: "shortcuts", id: "shortcuts" }, h("summary", {}, t("tools.shortcuts")),
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
    holder.replaceChildren(button("previous-study", t("tools.previousStudy"), "[", here > 0 ? reads[here - 1] : null),
      button("next-study", t("tools.nextStudy"), "]", here >= 0 && here + 1 < reads.length ? reads[here + 1] : null));
  }).catch(() => {});
  return () => { stopped = true; };
}
