// The family doctor's follow-up lists: a chronic-disease registry (GET /v1/registries/<condition>) with each
// patient's control against the national targets, the last follow-up and the next one due, the most overdue first;
// all patients, the overdue or the uncontrolled. Referral advice is written, never shown by colour alone.

import { api } from "./api.js";
import { clock, h, replace } from "./dom.js";
import { t } from "./i18n.js";

const CONDITIONS = ["hypertension", "diabetes"]; // followUp.condition.<name>
const FILTERS = ["", "overdue", "uncontrolled"]; // followUp.filter.<name> ("all" for "")
const state = { condition: "hypertension", only: "" }; // kept while the page lives

function controlCell(control) {
  if (control.controlled === null) {
    return h("td", { class: "muted", title: control.note || "" }, control.value.length ? control.value.join("/") : "—");
  }
  const value = `${control.value.join("/")} ${control.unit}`;
  return h("td", { class: control.controlled ? "" : "above-target", title: control.note || "" },
    value, h("span", { class: control.controlled ? "muted" : "badge level-urgent" },
      t(control.controlled ? "followUp.target" : "followUp.above", { target: control.target })));
}

function row(status) {
  const [first, second] = status.controls;
  const due = status.overdue_days
    ? h("span", { class: "badge level-urgent" }, t("followUp.overdue", { days: status.overdue_days }))
    : h("span", { class: "muted" }, "");
  return h("tr", { class: status.referral_advised ? "level-emergency" : status.overdue_days ? "level-urgent" : "",
    dataset: { patient: status.entry.patient } },
  h("th", { scope: "row" }, status.entry.patient),
  h("td", { class: "numbers" }, status.age === null ? "—" : String(status.age)),
  controlCell(first), controlCell(second),
  h("td", {}, status.last_follow_up ?? h("span", { class: "muted" }, t("followUp.none")),
    h("span", { class: "muted" }, t("followUp.inAYear", { count: status.follow_ups_past_year }))),
  h("td", {}, status.due, " ", due),
  h("td", { class: "reason" }, status.referral_advised ? h("strong", {}, t("followUp.refer")) : null,
    status.reason));
}

/** Render the follow-up lists into `main`; returns its cleanup. */
export function renderFollowUp(main) {
  let stopped = false;
  const tbody = h("tbody", {}, h("tr", {}, h("td", { colspan: 7, class: "muted" }, t("followUp.loading"))));
  const head = h("thead", {});
  const status = h("p", { id: "follow-up-status", role: "status", class: "muted" }, t("followUp.loading"));

  async function load() {
    const params = new URLSearchParams(state.only ? { only: state.only } : {});
    try {
      const statuses = await api(`/v1/registries/${state.condition}?${params}`);
      if (stopped) return;
      const measures = state.condition === "hypertension" ? ["office_bp", "home_bp"] : ["fasting_glucose", "hba1c"];
      replace(head, h("tr", {}, ["patient", "age", `measure.${measures[0]}`, `measure.${measures[1]}`, "last", "due",
        "why"].map((column) => h("th", { scope: "col" }, t(`followUp.${column}`)))));
      replace(tbody, statuses.length ? statuses.map(row)
        : h("tr", {}, h("td", { colspan: 7, class: "muted" }, t("followUp.empty"))));
      const overdue = statuses.filter((s) => s.overdue_days > 0).length;
      const refer = statuses.filter((s) => s.referral_advised).length;
      status.className = "muted";
      status.textContent = t("followUp.status", { count: statuses.length, overdue, refer, time: clock(new Date()) });
    } catch (error) {
      if (stopped) return;
      status.className = "error";
      status.textContent = t("followUp.failed", { error: error.message });
    }
  }

  const select = (id, options, key) => h("select", { id, onChange: (event) => { state[key] = event.target.value; load(); } },
    options.map(([value, label]) => h("option", { value, selected: value === state[key] }, label)));
  const named = (values, prefix) => values.map((value) => [value, t(`followUp.${prefix}.${value || "all"}`)]);
  replace(main, h("section", { class: "follow-up-view", "aria-labelledby": "follow-up-heading" },
    h("div", { class: "view-head" },
      h("h1", { id: "follow-up-heading" }, t("followUp.title")),
      h("div", { class: "toolbar" },
        h("label", { for: "follow-up-condition" }, t("followUp.registry")),
        select("follow-up-condition", named(CONDITIONS, "condition"), "condition"),
        h("label", { for: "follow-up-only" }, t("followUp.show")),
        select("follow-up-only", named(FILTERS, "filter"), "only"))),
    status,
    h("div", { class: "table-wrap" }, h("table", { id: "follow-up-table" },
      h("caption", {}, t("followUp.caption")),
      head, tbody))));
  load();
  return () => { stopped = true; };
}
