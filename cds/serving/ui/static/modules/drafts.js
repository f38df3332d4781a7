// Unsaved text a reader typed (an impression, a comment, a referral question) kept in this tab while they work, so
// a session that ends mid-sentence loses nothing: signing in again as the same user returns to the same page with
// the text back in its field. Drafts live in sessionStorage (this tab only, gone with it), per user, page and
// field; a saved one is dropped, and signing out drops them all (the next user of the tab sees none).

import { loadSession } from "./api.js";

const PREFIX = "cds.draft:";
const RETURN_KEY = "cds.return";

function keyOf(subject, page, field) {
  return `${PREFIX}${subject}:${page}:${field}`;
}

/**
 * Keep `element`'s text (a textarea or text input) as a draft of `field` on this page: what an earlier session of
 * the same user left there is put back now, and every keystroke is kept. Returns a function that drops the draft
 * (call it once the text is saved).
 */
export function keepDraft(element, field) {
  const subject = loadSession()?.subject;
  if (!subject) return () => {};
  const key = keyOf(subject, window.location.hash, field);
  const kept = window.sessionStorage.getItem(key);
  if (kept !== null && !element.value) {
    element.value = kept;
    element.dataset.restored = "true";
  }
  element.addEventListener("input", () => {
    if (element.value) window.sessionStorage.setItem(key, element.value);
    else window.sessionStorage.removeItem(key);
  });
  return () => window.sessionStorage.removeItem(key);
}

/** Forget every draft and the page to return to (on signing out). */
export function clearDrafts() {
  for (const key of Object.keys(window.sessionStorage)) {
    if (key.startsWith(PREFIX) || key === RETURN_KEY) window.sessionStorage.removeItem(key);
  }
}

/** Remember the page the session ended on, to return to after signing in again. */
export function rememberPage() {
  if (!window.location.hash.startsWith("#/signin")) window.sessionStorage.setItem(RETURN_KEY, window.location.hash);
}

/** The page to return to after signing in (and forget it), or `fallback`. */
export function pageToReturnTo(fallback) {
  const page = window.sessionStorage.getItem(RETURN_KEY);
  window.sessionStorage.removeItem(RETURN_KEY);
  return page || fallback;
}
