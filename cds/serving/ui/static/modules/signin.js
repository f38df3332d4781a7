// Sign-in: the same authentication as the API. In dev mode a role is picked and the server mints a dev token;
// otherwise a bearer token from the identity provider or a service account's API key is pasted. Either way the
// credential is checked with GET /v1/me, which also says which roles the server recognises in it.

import { api, ApiError, saveSession } from "./api.js";
import { h, replace } from "./dom.js";

export const ROLE_NAMES = {
  radiologist: "Radiologist",
  pathologist: "Pathologist",
  cardiologist: "Cardiologist",
  clinician: "Clinician",
  ml_engineer: "ML engineer",
  admin: "Administrator",
};

async function establish(credential, onSignedIn, errorBox) {
  try {
    const me = await api("/v1/me", { session: credential });
    saveSession({ ...credential, subject: me.subject, roles: me.roles, patient: me.patient, site: me.site,
    hub_site: me.hub_site });
    onSignedIn();
  } catch (error) {
    const text = error instanceof ApiError && error.status === 401
      ? "The server did not accept this credential."
      : `Sign-in failed: ${error.message}`;
    replace(errorBox, text);
    errorBox.hidden = false;
  }
}

function devForm(config, onSignedIn, errorBox) {
  const role = h("select", { id: "dev-role", name: "role" },
    config.roles.map((r) => h("option", { value: r, selected: r === "radiologist" }, ROLE_NAMES[r] ?? r)));
  const subject = h("input", { id: "dev-subject", name: "subject", type: "text", value: "dev-radiologist",
    autocomplete: "username", required: true, maxlength: 100 });
  role.addEventListener("change", () => { subject.value = `dev-${role.value.replace("_", "-")}`; });
  const form = h("form", { class: "card", "aria-labelledby": "dev-heading" },
    h("h2", { id: "dev-heading" }, "Development sign-in"),
    h("p", { class: "muted" }, "Dev mode is on: the server signs a one-hour token for the role you pick."),
    h("div", { class: "field" }, h("label", { for: "dev-role" }, "Role"), role),
    h("div", { class: "field" }, h("label", { for: "dev-subject" }, "User name"), subject),
    h("button", { type: "submit", class: "primary", id: "dev-signin" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    try {
      const token = await api("/v1/dev/token", { method: "POST", session: {},
        json: { subject: subject.value.trim() || "dev-user", roles: [role.value] } });
      await establish({ kind: "bearer", secret: token.access_token }, onSignedIn, errorBox);
    } catch (error) {
      replace(errorBox, `Sign-in failed: ${error.message}`);
      errorBox.hidden = false;
    }
  });
  return form;
}

function credentialForm(onSignedIn, errorBox) {
  const kinds = [["bearer", "Bearer token (from your identity provider)"], ["apikey", "API key (service account)"]];
  const radios = kinds.map(([value, text], index) => h("div", { class: "radio" },
    h("input", { type: "radio", name: "kind", id: `kind-${value}`, value, checked: index === 0 }),
    h("label", { for: `kind-${value}` }, text)));
  const secret = h("textarea", { id: "credential", name: "credential", rows: 3, required: true,
    autocomplete: "off", spellcheck: "false" });
  const form = h("form", { class: "card", "aria-labelledby": "token-heading" },
    h("h2", { id: "token-heading" }, "Sign in with a credential"),
    h("fieldset", {}, h("legend", {}, "Credential type"), radios),
    h("div", { class: "field" }, h("label", { for: "credential" }, "Token or key"), secret),
    h("button", { type: "submit", class: "primary" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    const kind = form.querySelector("input[name=kind]:checked").value;
    await establish({ kind, secret: secret.value.trim() }, onSignedIn, errorBox);
  });
  return form;
}

/** Render the sign-in screen into `main`; `onSignedIn` runs once a credential is accepted. */
export function renderSignIn(main, config, onSignedIn) {
  const errorBox = h("p", { class: "error", role: "alert", hidden: true });
  const forms = config.dev_mode
    ? [devForm(config, onSignedIn, errorBox), h("details", { class: "card" },
      h("summary", {}, "Use a bearer token or API key instead"), credentialForm(onSignedIn, errorBox))]
    : [credentialForm(onSignedIn, errorBox)];
  replace(main, h("section", { class: "signin", "aria-labelledby": "signin-heading" },
    h("h1", { id: "signin-heading" }, "Sign in"),
    h("p", { class: "muted" }, "AI outputs shown here are decision support, not a diagnosis."),
    errorBox, forms));
  return () => {};
}
