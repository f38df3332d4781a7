// The API client: the session's credential on every call, problem+json errors as ApiError.
//
// The credential lives in sessionStorage: it is gone when the tab closes and is never sent anywhere but this
// origin's API. A 401 from any call ends the session (the event "cds:signed-out" sends the user to sign-in).
//
// A server restart is ridden out: a GET or HEAD whose connection fails, or that is answered 502, 503 or 504, is tried
// again with exponential backoff and jitter (0.25 s doubling to 8 s, Retry-After honoured, about 30 s in all) until
// its AbortSignal fires. Other methods are never retried, since the server may have applied them. While requests are
// failing the page hears "cds:connection" ({state: "lost" | "restored"}) and a probe of /healthz tells it when the
// server is back, even if no view is polling.
//
// An error the server explains (problem+json with a `code`) is said in the workspace's language when the catalogues
// know its code ("error.<code>"), with the server's English detail kept beside it, since it names the field, file or
// value at fault; a code they do not know is shown as the server's detail.

import { has, language, t } from "./i18n.js";

const SESSION_KEY = "cds.session";
const BEARER = "Bearer"; // the HTTP authentication scheme (RFC 6750), not a message

/** The stored session {kind: "bearer" | "apikey", secret, subject, roles} or null. */
export function loadSession() {
  try {
    const session = JSON.parse(window.sessionStorage.getItem(SESSION_KEY) || "null");
    return session && session.secret ? session : null;
  } catch {
    return null;
  }
}

export function saveSession(session) {
  window.sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

export function clearSession() {
  window.sessionStorage.removeItem(SESSION_KEY);
}

/** What an error `code` means in the workspace's language, or null for a code the catalogues do not know. */
export function codeText(code) {
  return code && has(`error.${code}`) ? t(`error.${code}`) : null;
}

/**
 * An HTTP error with the problem+json `code` and `detail` (or the raw body for other error documents). `title` is
 * what the code means in the workspace's language (null when unknown); `message` is the title with the detail, or
 * the detail alone.
 */
export class ApiError extends Error {
  constructor(status, code, detail, body) {
    const title = codeText(code) ?? (status === 429 ? codeText("too_many_requests") : null);
    super(title && detail ? t("error.withDetail", { title, detail }) : title || detail || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.body = body;
    this.title = title;
    this.detail = detail || "";
  }
}

/**
 * An error to show as {main, detail}: the meaning of its code in the workspace's language and the server's English
 * detail as a second line, or its message alone (detail ""). Also takes a failed job's error, "<code>: <detail>", or
 * a list's bare error code.
 */
export function errorParts(error) {
  if (error instanceof ApiError) {
    return error.title ? { main: error.title, detail: error.detail } : { main: error.message, detail: "" };
  }
  if (typeof error === "string") {
    const [, code, detail = ""] = /^([a-z][a-z0-9_]*)(?:: ([\s\S]*))?$/.exec(error) ?? [];
    const title = codeText(code);
    return title ? { main: title, detail } : { main: error, detail: "" };
  }
  return { main: error?.message ?? String(error), detail: "" };
}

const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 8000;
const RETRY_BUDGET_MS = 30000;
const RETRY_STATUSES = new Set([502, 503, 504]);
const IDEMPOTENT = new Set(["GET", "HEAD"]);
const PROBE_MS = 2000;

let connectionLost = false;
let probeTimer = null;

function connectionChanged(lost) {
  if (lost === connectionLost) return;
  connectionLost = lost;
  window.dispatchEvent(new CustomEvent("cds:connection", { detail: { state: lost ? "lost" : "restored" } }));
  window.clearTimeout(probeTimer);
  if (lost) probeTimer = window.setTimeout(probe, PROBE_MS);
}

async function probe() {
  try {
    const response = await fetch("/healthz", { cache: "no-store" });
    if (response.ok) {
      connectionChanged(false);
      return;
    }
  } catch {
    // still down
  }
  if (connectionLost) probeTimer = window.setTimeout(probe, PROBE_MS);
}

/** The wait before try `attempt` (0-based): full jitter under the doubling cap, or what Retry-After asks. */
function backoff(attempt, retryAfter) {
  const seconds = Number(retryAfter);
  if (retryAfter && Number.isFinite(seconds)) return seconds * 1000;
  const date = retryAfter ? Date.parse(retryAfter) : NaN;
  if (Number.isFinite(date)) return Math.max(0, date - Date.now());
  const cap = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** attempt);
  return cap / 2 + Math.random() * cap / 2;
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      window.clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = window.setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** `fetch`, tried again while an idempotent request meets a failed connection or a 502/503/504. */
async function fetchRetrying(path, init) {
  const retrying = IDEMPOTENT.has(init.method);
  const deadline = Date.now() + RETRY_BUDGET_MS;
  for (let attempt = 0; ; attempt += 1) {
    let response = null;
    try {
      response = await fetch(path, init);
    } catch (error) {
      if (error?.name === "AbortError" || init.signal?.aborted) throw error;
      connectionChanged(true);
      if (!retrying) {
        throw new ApiError(0, "network_error", t("api.notResent", { error: error.message, method: init.method }));
      }
      const wait = backoff(attempt);
      if (Date.now() + wait > deadline) {
        throw new ApiError(0, "network_error", t("api.unreachable", { error: error.message, count: attempt + 1 }));
      }
      await sleep(wait, init.signal);
      continue;
    }
    if (!RETRY_STATUSES.has(response.status)) {
      connectionChanged(false);
      return response;
    }
    const wait = backoff(attempt, response.headers.get("Retry-After"));
    if (!retrying || Date.now() + wait > deadline) return response;
    if (response.status !== 503) connectionChanged(true); // a 503 is the server itself answering "not now"
    await sleep(wait, init.signal);
  }
}

/** Whether `error` is a failure that may pass (no connection, 502/503/504): a poll should keep going. */
export function isTransient(error) {
  return error instanceof ApiError && (error.status === 0 || RETRY_STATUSES.has(error.status));
}

function authHeaders(session, headers) {
  if (session?.kind === "bearer") headers.set("Authorization", `${BEARER} ${session.secret}`);
  else if (session?.kind === "apikey") headers.set("X-API-Key", session.secret);
  return headers;
}

/** The session's credential as request headers, for clients that make their own requests (the DICOM loader). */
export function credentialHeaders() {
  return Object.fromEntries(authHeaders(loadSession(), new Headers()).entries());
}

/**
 * Call the API. Options: method, json (sent as JSON), body and contentType (sent as is), signal, raw (answer the
 * Response instead of its JSON), session (a credential to try before it is saved), headers (more request headers,
 * e.g. If-Match). GET and HEAD are retried through a server restart (see the top of this file); a request that
 * could not reach the server throws ApiError with status 0 and code "network_error".
 */
export async function api(path, options = {}) {
  const { method = "GET", json, body, contentType, signal, raw = false } = options;
  const session = options.session ?? loadSession();
  const headers = authHeaders(session, new Headers({ Accept: "application/json", "Accept-Language": language(),
    ...options.headers })); // the server writes its texts (risk headlines) in the workspace's language
  let payload = body;
  if (json !== undefined) {
    headers.set("Content-Type", "application/json");
    payload = JSON.stringify(json);
  } else if (contentType) {
    headers.set("Content-Type", contentType);
  }
  const response = await fetchRetrying(path, { method: method.toUpperCase(), headers, body: payload, signal,
    cache: "no-store" });
  if (!response.ok) {
    let document = null;
    try {
      document = await response.json();
    } catch {
      document = null;
    }
    if (response.status === 401 && !options.session) {
      clearSession();
      window.dispatchEvent(new CustomEvent("cds:signed-out", { detail: t("shell.sessionEnded") }));
    }
    throw new ApiError(response.status, document?.code || "http_error", document?.detail || response.statusText,
      document);
  }
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

/** An image from the API as an object URL (the caller revokes it); `<img src>` cannot send the credential. */
export async function imageUrl(path, signal) {
  const response = await api(path, { raw: true, signal });
  return URL.createObjectURL(await response.blob());
}
