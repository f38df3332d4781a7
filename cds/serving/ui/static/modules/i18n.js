// The workspace's languages: English and Simplified Chinese. A plain ES module rather than i18next: the shell is
// served as unbundled ES modules (only the image viewer is bundled, from web/), and what it needs is small: keys,
// {name} interpolation, plural forms chosen by Intl.PluralRules, and Intl formatting of dates and numbers.
//
// The language is the user's choice (the header's switch, kept in localStorage), else the browser's
// (navigator.languages: zh* -> zh-CN, en* -> en), else the deployment's (config.json "language", set by
// CDS_LANGUAGE), else English. <html lang> follows it; API calls send it as Accept-Language (api.js), so text the
// server writes (the risk panel's headlines) comes in the same language.
//
// A message is a string, or {one, other} (English) / {other} (Chinese) for plurals, picked by the `count` value.

import en from "./messages/en.js";
import zhCN from "./messages/zh-CN.js";

export const CATALOGUES = { en, "zh-CN": zhCN };
/** The languages offered in the header: [tag, the language's own name]. */
export const LANGUAGES = [["en", "English"], ["zh-CN", "中文"]];
const STORAGE_KEY = "cds.language";
let current = "en";

/** The supported language a BCP 47 tag means (zh, zh-Hans, zh-CN -> zh-CN; en-* -> en), or null. */
export function supported(tag) {
  const primary = String(tag || "").trim().toLowerCase().split(/[-_]/)[0];
  return primary === "zh" ? "zh-CN" : primary === "en" ? "en" : null;
}

/** The language to use: the stored choice, else the first supported browser language, else the deployment's. */
export function chooseLanguage(stored, browserLanguages, deployment) {
  for (const tag of [stored, ...(browserLanguages || []), deployment]) {
    const found = supported(tag);
    if (found) return found;
  }
  return "en";
}

function storedChoice() {
  try {
    return window.localStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage disabled: the browser's language
  }
}

function apply(tag) {
  current = tag;
  document.documentElement.lang = tag;
}

/** Pick the language at start-up (`deployment`: config.json's "language", or null). */
export function initLanguage(deployment) {
  const browser = navigator.languages?.length ? navigator.languages : [navigator.language];
  apply(chooseLanguage(storedChoice(), browser, deployment));
  return current;
}

/** The user's choice from the header: used now and remembered in this browser. */
export function setLanguage(tag) {
  const found = supported(tag) ?? "en";
  try {
    window.localStorage.setItem(STORAGE_KEY, found);
  } catch {
    // not remembered; still used in this page
  }
  apply(found);
}

/** The current language tag ("en" or "zh-CN"). */
export function language() {
  return current;
}

/** Whether the catalogues have a message `key`. */
export function has(key) {
  return key in en;
}

/** The message `key` in the current language, {name} filled from `values`; plurals by `values.count`. */
export function t(key, values = {}) {
  let message = CATALOGUES[current][key] ?? en[key];
  if (message === undefined) return key;
  if (typeof message === "object") {
    const form = new Intl.PluralRules(current).select(Number(values.count ?? 0));
    message = message[form] ?? message.other;
  }
  return message.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? formatValue(values[name]) : whole));
}

function formatValue(value) {
  return typeof value === "number" && Number.isInteger(value) ? number(value) : String(value);
}

/** A number in the current locale (`options` as Intl.NumberFormat takes them). */
export function number(value, options = {}) {
  return new Intl.NumberFormat(current, options).format(value);
}

/** A Date in the current locale (`options` as Intl.DateTimeFormat takes them). */
export function dateTime(date, options) {
  return new Intl.DateTimeFormat(current, options).format(date);
}
