// The API client: the session's credential on every call, problem+json errors as ApiError.
//
// The credential lives in sessionStorage: it is gone when the tab closes and is never sent anywhere but this
// origin's API. A 401 from any call ends the session (the event "cds:signed-out" sends the user to sign-in).

const SESSION_KEY = "cds.session";

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

/** An HTTP error with the problem+json `code` and `detail` (or the raw body for other error documents). */
export class ApiError extends Error {
  constructor(status, code, detail, body) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

function authHeaders(session, headers) {
  if (session?.kind === "bearer") headers.set("Authorization", `Bearer ${session.secret}`);
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
 * e.g. If-Match).
 */
export async function api(path, options = {}) {
  const { method = "GET", json, body, contentType, signal, raw = false } = options;
  const session = options.session ?? loadSession();
  const headers = authHeaders(session, new Headers({ Accept: "application/json", ...options.headers }));
  let payload = body;
  if (json !== undefined) {
    headers.set("Content-Type", "application/json");
    payload = JSON.stringify(json);
  } else if (contentType) {
    headers.set("Content-Type", contentType);
  }
  const response = await fetch(path, { method, headers, body: payload, signal, cache: "no-store" });
  if (!response.ok) {
    let document = null;
    try {
      document = await response.json();
    } catch {
      document = null;
    }
    if (response.status === 401 && !options.session) {
      clearSession();
      window.dispatchEvent(new CustomEvent("cds:signed-out", { detail: "Your session ended; sign in again." }));
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
