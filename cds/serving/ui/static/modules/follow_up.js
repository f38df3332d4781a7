// The family doctor's follow-up lists: a chronic-disease registry (GET /v1/registries/<condition>) with each
// patient's control against the national targets, the last follow-up and the next one due, the most overdue first;
// all patients, the overdue or the uncontrolled. Referral advice is written, never shown by colour alone.

import { api } from "./api.js";
import { clock, h, replace } from "./dom.js";

const CONDITIONS = [["hypertension", "Hypertension"], ["diabetes", "Type 2 diabetes"]];
const FILTERS = [["", "All patients"], ["overdue", "Overdue"], ["uncontrolled", "Not controlled"]];
const MEASURES = { office_bp: "Clinic BP", home_bp: "Home BP (7 days)", fasting_glucose: "Fasting glucose",
  hba1c: "HbA1c" };
const state = { condition: "hypertension", only: "" }; // kept while the page lives

function controlCell(control) {
  if (control.controlled === null) {
    return h("td", { class: "muted", title: control.note || "" }, control.value.length ? control.value.join("/") : "—");
  }
  const value = `${control.value.join("/")} ${control.unit}`;
  return h("td", { class: control.controlled ? "" : "above-target", title: control.note || "" },
    value, h("span", { class: control.controlled ? "muted" : "badge level-urgent" },
      control.controlled ? ` (target ${control.target})` : `above ${control.target}`));
}

function row(status) {
  const [first, second] = status.controls;
  const due = status.overdue_days
    ? h("span", { class: "badge level-urgent" }, `overdue ${status.overdue_days} d`)
    : h("span", { class: "muted" }, "");
  return h("tr", { class: status.referral_advised ? "level-emergency" : status.overdue_days ? "level-urgent" : "",
    dataset: { patient: status.entry.patient } },
  h("th", { scope: "row" }, status.entry.patient),
  h("td", { class: "numbers" }, status.age === null ? "—" : String(status.age)),
  controlCell(first), controlCell(second),
  h("td", {}, status.last_follow_up ?? h("span", { class: "muted" }, "none"),
    h("span", { class: "muted" }, ` · ${status.follow_ups_past_year} in a year`)),
  h("td", {}, status.due, " ", due),
  h("td", { class: "reason" }, status.referral_advised ? h("strong", {}, "Refer: ") : null, status.reason));
}

/** Render the follow-up lists into `main`; returns its cleanup. */
export function renderFollowUp(main) {
  let stopped = false;
  const tbody = h("tbody", {}, h("tr", {}, h("td", { colspan: 7, class: "muted" }, "Loading…")));
  const head = h("thead", {});
  const status = h("p", { id: "follow-up-status", role: "status", class: "muted" }, "Loading…");

  async function load() {
    const params = new URLSearchParams(state.only ? { only: state.only } : {});
    try {
      const statuses = await api(`/v1/registries/${state.condition}?${params}`);
      if (stopped) return;
      const measures = state.condition === "hypertension" ? ["office_bp", "home_bp"] : ["fasting_glucose", "hba1c"];
      replace(head, h("tr", {}, ["Patient", "Age", MEASURES[measures[0]], MEASURES[measures[1]], "Last follow-up",
        "Next due", "Why"].map((title) => h("th", { scope: "col" }, title))));
      replace(tbody, statuses.length ? statuses.map(row)
        : h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No patient in this list.")));
      const overdue = statuses.filter((s) => s.overdue_days > 0).length;
      const refer = statuses.filter((s) => s.referral_advised).length;
      status.className = "muted";
      status.textContent = `${statuses.length} patient${statuses.length === 1 ? "" : "s"}: ${overdue} overdue, `
        + `${refer} to refer. Updated ${clock(new Date())}`;
    } catch (error) {
      if (stopped) return;
      status.className = "error";
      status.textContent = `Could not load the registry (${error.message})`;
    }
  }

  const select = (id, options, key) => h("select", { id, onChange: (event) => { state[key] = event.target.value; load(); } },
    options.map(([value, label]) => h("option", { value, selected: value === state[key] }, label)));
  replace(main, h("section", { class: "follow-up-view", "aria-labelledby": "follow-up-heading" },
    h("div", { class: "view-head" },
      h("h1", { id: "follow-up-heading" }, "Follow-up"),
      h("div", { class: "toolbar" },
        h("label", { for: "follow-up-condition" }, "Registry"), select("follow-up-condition", CONDITIONS, "condition"),
        h("label", { for: "follow-up-only" }, "Show"), select("follow-up-only", FILTERS, "only"))),
    status,
    h("div", { class: "table-wrap" }, h("table", { id: "follow-up-table" },
      h("caption", {}, "Control against the national basic public health service targets and the next follow-up "
        + "(at least quarterly; within 2 weeks when not controlled), the most overdue first"),
      head, tbody))));
  load();
  return () => { stopped = true; };
}
