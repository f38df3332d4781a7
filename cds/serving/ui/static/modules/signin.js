// Sign-in: the same authentication as the API. In dev mode a role is picked and the server mints a dev token;
// otherwise a bearer token from the identity provider or a service account's API key is pasted. Either way the
// credential is checked with GET /v1/me, which also says which roles the server recognises in it.

import { api, ApiError, saveSession } from "./api.js";
import { h, replace } from "./dom.js";
import { t } from "./i18n.js";

export const ROLES = ["radiologist", "pathologist", "cardiologist", "clinician", "ml_engineer", "admin"];

/** A role as people say it, in the workspace's language (the role's name for one the workspace does not know). */
export function roleName(role) {
  return ROLES.includes(role) ? t(`role.${role}`) : role;
}

async function establish(credential, onSignedIn, errorBox) {
  try {
    const me = await api("/v1/me", { session: credential });
    saveSession({ ...credential, subject: me.subject, roles: me.roles, patient: me.patient, site: me.site,
    hub_site: me.hub_site });
    onSignedIn();
  } catch (error) {
    const text = error instanceof ApiError && error.status === 401
      ? t("signin.rejected")
      : t("signin.failed", { error: error.message });
    replace(errorBox, text);
    errorBox.hidden = false;
  }
}

function devForm(config, onSignedIn, errorBox) {
  const role = h("select", { id: "dev-role", name: "role" },
    config.roles.map((r) => h("option", { value: r, selected: r === "radiologist" }, roleName(r))));
  const subject = h("input", { id: "dev-subject", name: "subject", type: "text", value: "dev-radiologist",
    autocomplete: "username", required: true, maxlength: 100 });
  role.addEventListener("change", () => { subject.value = `dev-${role.value.replace("_", "-")}`; });
  const form = h("form", { class: "card", "aria-labelledby": "dev-heading" },
    h("h2", { id: "dev-heading" }, t("signin.devTitle")),
    h("p", { class: "muted" }, t("signin.devNote")),
    h("div", { class: "field" }, h("label", { for: "dev-role" }, t("signin.role")), role),
    h("div", { class: "field" }, h("label", { for: "dev-subject" }, t("signin.user")), subject),
    h("button", { type: "submit", class: "primary", id: "dev-signin" }, t("signin.submit")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    try {
      const token = await api("/v1/dev/token", { method: "POST", session: {},
        json: { subject: subject.value.trim() || "dev-user", roles: [role.value] } });
      await establish({ kind: "bearer", secret: token.access_token }, onSignedIn, errorBox);
    } catch (error) {
      replace(errorBox, t("signin.failed", { error: error.message }));
      errorBox.hidden = false;
    }
  });
  return form;
}

function credentialForm(onSignedIn, errorBox) {
  const kinds = [["bearer", t("signin.bearer")], ["apikey", t("signin.apikey")]];
  const radios = kinds.map(([value, text], index) => h("div", { class: "radio" },
    h("input", { type: "radio", name: "kind", id: `kind-${value}`, value, checked: index === 0 }),
    h("label", { for: `kind-${value}` }, text)));
  const secret = h("textarea", { id: "credential", name: "credential", rows: 3, required: true,
    autocomplete: "off", spellcheck: "false" });
  const form = h("form", { class: "card", "aria-labelledby": "token-heading" },
    h("h2", { id: "token-heading" }, t("signin.credentialTitle")),
    h("fieldset", {}, h("legend", {}, t("signin.credentialType")), radios),
    h("div", { class: "field" }, h("label", { for: "credential" }, t("signin.secret")), secret),
    h("button", { type: "submit", class: "primary" }, t("signin.submit")));
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
      h("summary", {}, t("signin.useCredential")), credentialForm(onSignedIn, errorBox))]
    : [credentialForm(onSignedIn, errorBox)];
  replace(main, h("section", { class: "signin", "aria-labelledby": "signin-heading" },
    h("h1", { id: "signin-heading" }, t("signin.title")),
    h("p", { class: "muted" }, t("signin.notice")),
    errorBox, forms));
  return () => {};
}
