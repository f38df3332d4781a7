// Small DOM helpers. Everything is built with createElement and textContent, never innerHTML, so data from the
// server (patient IDs, comments, labels) can never become markup.

import { dateTime, has, number, t } from "./i18n.js";

/**
 * Create an element: h("button", {class: "primary", onClick: fn, "aria-label": "Accept"}, "Accept").
 * Props: "class", "text", "dataset" (object), on<Event> (listener), true (boolean attribute), other attributes.
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** Replace the children of `element`. */
export function replace(element, ...children) {
  element.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

/** Say `message` to screen-reader users through the page's polite live region. */
export function announce(message) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  // A new text node after clearing makes screen readers speak a repeated message too.
  window.setTimeout(() => { region.textContent = message; }, 50);
}

/** "12:03:04" in the workspace's language (i18n.js). */
export function clock(date) {
  return dateTime(date, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** A short, readable date and time of an ISO 8601 string, in the workspace's language. */
export function when(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return dateTime(date, { dateStyle: "short", timeStyle: "medium" });
}

/** A calendar day (ISO "2024-03-05" or DICOM "20240305") in the workspace's language; "" if it is neither. */
export function day(value) {
  const match = /^(\d{4})-?(\d{2})-?(\d{2})$/.exec(value || "");
  if (!match) return "";
  const date = new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])));
  return dateTime(date, { dateStyle: "medium", timeZone: "UTC" });
}

/** `value` with exactly `digits` decimals in the workspace's language, never grouped (0.490, 3072, 12.5). */
export function decimal(value, digits = 0) {
  return number(value, { minimumFractionDigits: digits, maximumFractionDigits: digits, useGrouping: false });
}

/** A read's state in words (queued, running, done, failed), as the worklist names them; an unknown one as it is. */
export function stateText(state) {
  return has(`worklist.stateName.${state}`) ? t(`worklist.stateName.${state}`) : state;
}

/** A long DICOM UID shortened for display (the full UID goes in a title attribute). */
export function shortUid(uid) {
  return uid.length > 20 ? `…${uid.slice(-16)}` : uid;
}
