// The workspace shell: configuration, session, role-aware navigation and hash routes.
//
//   #/signin                 sign-in
//   #/worklist               radiologist worklist (radiologist, admin)
//   #/viewer/<job>/<uid>     study viewer (radiologist, admin)
//   #/pathology[/<job>]      pathologist's slide reads and one read with its heatmap and zoom (pathologist, admin)
//   #/ecg[/<job>]            cardiologist's ECG reads and one read: 12 leads, calipers, measurements, review
//                            (cardiologist, admin)
//   #/risk                   clinician's patient risk panel (clinician, admin)
//   #/monitoring[/<patient>] monitored patients by alert level, and one patient's trends and alerts (clinician, admin)
//   #/follow-up              chronic-disease registries: control and follow-ups due (clinician, admin)
//   #/referrals              remote-reading turnaround per site and priority, open referrals in and out (the roles
//                            that may read referrals: radiologist, pathologist, cardiologist, clinician, admin)
//   #/models                 ML engineer's model dashboard (ml_engineer, admin)

import { api, clearSession, loadSession, saveSession } from "./modules/api.js";
import { renderDashboard } from "./modules/dashboard.js";
import { announce, h, replace } from "./modules/dom.js";
import { clearDrafts, pageToReturnTo, rememberPage } from "./modules/drafts.js";
import { renderEcg } from "./modules/ecg.js";
import { renderEcgReader } from "./modules/ecg_reader.js";
import { renderFollowUp } from "./modules/follow_up.js";
import { renderMonitoring } from "./modules/monitoring.js";
import { renderPathology } from "./modules/pathology.js";
import { renderRiskPanel } from "./modules/risk.js";
import { initLanguage, language, LANGUAGES, setLanguage, t } from "./modules/i18n.js";
import { renderSignIn, ROLES, roleName } from "./modules/signin.js";
import { renderSlide } from "./modules/slide.js";
import { renderTurnaround } from "./modules/turnaround.js";
import { preloadViewer, renderViewer } from "./modules/viewer.js";
import { renderWorklist } from "./modules/worklist.js";

const VIEWS = [
  { id: "worklist", roles: ["radiologist", "admin"], render: renderWorklist },
  { id: "pathology", roles: ["pathologist", "admin"],
    render: (main, args) => (args[0] ? renderSlide(main, args[0]) : renderPathology(main)) },
  { id: "ecg", roles: ["cardiologist", "admin"],
    render: (main, args) => (args[0] ? renderEcgReader(main, args[0]) : renderEcg(main)) },
  { id: "risk", roles: ["clinician", "admin"], render: renderRiskPanel },
  { id: "monitoring", roles: ["clinician", "admin"], render: renderMonitoring },
  { id: "follow-up", roles: ["clinician", "admin"], render: renderFollowUp },
  { id: "referrals", roles: ["radiologist", "pathologist", "cardiologist", "clinician", "admin"],
    render: renderTurnaround },
  { id: "models", roles: ["ml_engineer", "admin"], render: renderDashboard },
];
const VIEWER_ROLES = ["radiologist", "admin"];

let config = { dev_mode: false, roles: ROLES, language: null };
let cleanup = () => {};

function allowed(roles, session) {
  return session !== null && roles.some((role) => session.roles.includes(role));
}

function parseRoute() {
  const parts = window.location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  return { name: parts[0] || "", args: parts.slice(1) };
}

function go(hash) {
  if (window.location.hash === hash) route();
  else window.location.hash = hash;
}

function renderHeader(session, current) {
  const nav = document.getElementById("nav");
  const box = document.getElementById("session");
  if (session === null) {
    replace(nav);
    replace(box);
    return;
  }
  const items = VIEWS.filter((view) => allowed(view.roles, session)).map((view) => h("li", {},
    h("a", { href: `#/${view.id}`, "aria-current": view.id === current ? "page" : false }, t(`nav.${view.id}`))));
  replace(nav, h("ul", {}, items));
  const roles = session.roles.map(roleName).join(", ");
  replace(box, h("span", { id: "whoami" }, `${session.subject} · ${roles}`),
    h("button", { type: "button", id: "sign-out", onClick: () => { clearSession(); clearDrafts(); go("#/signin"); } },
      t("shell.signOut")));
}

/** The page's own texts and the language switch (shown signed in or not); a change re-renders the view. */
function renderChrome() {
  document.getElementById("skip-link").textContent = t("shell.skip");
  document.querySelector(".brand-sub").textContent = t("shell.brandSub");
  document.getElementById("nav").setAttribute("aria-label", t("nav.main"));
  const picker = h("select", { id: "language", "aria-label": t("shell.language"), onChange: (event) => {
    setLanguage(event.target.value);
    renderChrome();
    route();
  } }, LANGUAGES.map(([tag, name]) => h("option", { value: tag, lang: tag, selected: tag === language() }, name)));
  replace(document.getElementById("language-switch"), picker);
}

function renderForbidden(main, session) {
  const home = VIEWS.find((view) => allowed(view.roles, session));
  replace(main, h("section", { class: "card", "aria-labelledby": "forbidden-heading" },
    h("h1", { id: "forbidden-heading" }, t("shell.forbiddenTitle")),
    h("p", {}, t("shell.forbiddenText")),
    home ? h("p", {}, h("a", { href: `#/${home.id}` }, t("shell.goTo", { view: t(`nav.${home.id}`) }))) : null));
  return () => {};
}

function focusHeading(main) {
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
    document.title = `${heading.textContent} · cds`;
  }
}

function route() {
  cleanup();
  cleanup = () => {};
  const main = document.getElementById("main");
  const session = loadSession();
  const { name, args } = parseRoute();
  if (session === null || name === "signin") {
    renderHeader(null);
    if (session !== null) clearSession();
    cleanup = renderSignIn(main, config, () => go(pageToReturnTo("#/"))); // back where the last session ended
    focusHeading(main);
    return;
  }
  const view = VIEWS.find((v) => v.id === name);
  if (name === "viewer") {
    cleanup = allowed(VIEWER_ROLES, session) ? renderViewer(main, args[0], args[1]) : renderForbidden(main, session);
  } else if (view) {
    cleanup = allowed(view.roles, session) ? view.render(main, args) : renderForbidden(main, session);
  } else {
    const home = VIEWS.find((v) => allowed(v.roles, session));
    if (home) {
      go(`#/${home.id}`);
      return;
    }
    cleanup = renderForbidden(main, session);
  }
  renderHeader(session, name === "viewer" ? "worklist" : name);
  focusHeading(main);
  if (allowed(VIEWER_ROLES, session)) preloadViewer(); // the image viewer's bundle, in idle time
}

let connectionTimer = null;

/** The connection banner: shown while api.js retries through a server restart, "Reconnected" for a moment after. */
function showConnection(event) {
  const banner = document.getElementById("connection");
  window.clearTimeout(connectionTimer);
  banner.dataset.state = event.detail.state;
  banner.textContent = t(event.detail.state === "lost" ? "shell.connectionLost" : "shell.reconnected");
  if (event.detail.state === "restored") connectionTimer = window.setTimeout(() => { banner.textContent = ""; }, 4000);
}

async function start() {
  try {
    config = await (await fetch("config.json", { cache: "no-store" })).json();
  } catch {
    announce(t("shell.configFailed"));
  }
  initLanguage(config.language);
  renderChrome();
  document.getElementById("skip-link").addEventListener("click", (event) => {
    event.preventDefault();
    document.getElementById("main").focus();
  });
  window.addEventListener("hashchange", route);
  window.addEventListener("cds:connection", showConnection);
  window.addEventListener("cds:signed-out", (event) => {
    announce(event.detail);
    rememberPage(); // drafts typed on it stay in the tab (drafts.js) for the same user's next session
    go("#/signin");
  });
  const session = loadSession();
  if (session !== null) {
    try { // refresh the roles the server recognises in the stored credential
      const me = await api("/v1/me");
      saveSession({ ...session, subject: me.subject, roles: me.roles });
    } catch {
      // a 401 already signed the user out; other errors leave the stored roles in place
    }
  }
  route();
}

start();
