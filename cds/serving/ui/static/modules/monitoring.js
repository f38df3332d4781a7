// The clinician's monitoring view.
//
//   #/monitoring              monitored patients, most urgent open alert first (GET /v1/monitoring/patients),
//                             refreshed every 15 s
//   #/monitoring/<patient>    one patient's trends: early-warning scores, vital signs, blood pressure, glucose and
//                             weight on one time axis, with the alerts marked where they opened and escalated, and
//                             the alerts listed to acknowledge
//
// Every chart has its values as a table beside it (the accessible alternative); levels are written, not only
// coloured.

import { api } from "./api.js";
import { PALETTE, timeSeries } from "./chart.js";
import { announce, clock, h, replace, when } from "./dom.js";

const POLL_MS = 15000;
const WINDOWS = [["24", "Last 24 hours"], ["72", "Last 3 days"], ["168", "Last 7 days"], ["720", "Last 30 days"]];
const LEVEL_TEXT = { emergency: "Emergency", urgent: "Urgent", routine: "Routine" };
const RULE_TEXT = {
  news2_emergency: "NEWS2 7 or more", news2_urgent: "NEWS2 5 or more", news2_red: "a single parameter scoring 3",
  news2_rise: "NEWS2 rose by 2 or more", home_bp_above_target: "home BP above 135/85 over the last 7 days",
  bp_refer_now: "BP 180/110 or more: refer at once",
};
// What each chart plots: stored fields (canonical units) or early-warning scores.
const PANELS = [
  { id: "scores", title: "Early-warning scores", unit: "", floor: 0, scores: ["news2", "qsofa"],
    labels: { news2: "NEWS2", qsofa: "qSOFA" },
    references: [{ v: 5, label: "NEWS2 5: urgent" }, { v: 7, label: "NEWS2 7: emergency" }] },
  { id: "rates", title: "Heart and respiratory rate", unit: "/min", fields: ["heart_rate", "respiratory_rate"],
    labels: { heart_rate: "Heart rate", respiratory_rate: "Respiratory rate" } },
  { id: "bp", title: "Blood pressure", unit: "mmHg", fields: ["systolic_bp", "diastolic_bp"],
    labels: { systolic_bp: "Systolic", diastolic_bp: "Diastolic" } },
  { id: "spo2", title: "Oxygen saturation", unit: "%", fields: ["spo2"], labels: { spo2: "SpO₂" } },
  { id: "temperature", title: "Temperature", unit: "°C", fields: ["temperature"],
    labels: { temperature: "Temperature" } },
  { id: "glucose", title: "Glucose", unit: "mmol/L", fields: ["glucose", "fasting_glucose"],
    labels: { glucose: "Glucose", fasting_glucose: "Fasting glucose" } },
  { id: "weight", title: "Weight", unit: "kg", fields: ["weight_kg"], labels: { weight_kg: "Weight" } },
];
let windowHours = "24"; // kept while the page lives (back from a patient to the list)

function levelBadge(level) {
  return level
    ? h("span", { class: `badge level-${level}` }, LEVEL_TEXT[level] ?? level)
    : h("span", { class: "muted" }, "None open");
}

function sinceParam(hours) {
  return new Date(Date.now() - Number(hours) * 3600e3).toISOString();
}

function windowSelect(onChange) {
  return h("select", { id: "monitoring-window", onChange: (event) => { windowHours = event.target.value; onChange(); } },
    WINDOWS.map(([value, label]) => h("option", { value, selected: value === windowHours }, label)));
}

function scoreText(point) {
  if (!point) return h("span", { class: "muted" }, "—");
  const band = point.band ? ` · ${point.band.replaceAll("_", " ")}` : "";
  return h("span", { title: `released ${when(point.at)}` }, `${point.score}${band}`);
}

function patientHash(patient) {
  return `#/monitoring/${encodeURIComponent(patient)}`;
}

function boardRow(patient) {
  return h("tr", { class: patient.alert_level ? `level-${patient.alert_level}` : "", dataset: { patient: patient.patient } },
    h("td", {}, levelBadge(patient.alert_level),
      patient.open_alerts > 1 ? h("span", { class: "muted" }, ` ×${patient.open_alerts}`) : null),
    h("th", { scope: "row" }, h("a", { href: patientHash(patient.patient), "aria-label": `Trends of ${patient.patient}` },
      patient.patient)),
    h("td", { class: "numbers news2" }, scoreText(patient.latest.news2)),
    h("td", { class: "numbers qsofa" }, scoreText(patient.latest.qsofa)),
    h("td", { class: "numbers" }, String(patient.observations)),
    h("td", {}, h("time", { datetime: patient.last_observation }, when(patient.last_observation))));
}

/** The monitored patients, most urgent first; returns the function that stops its polling. */
function renderBoard(main) {
  let timer = null;
  let stopped = false;
  let lastDocument = "";
  let lastEmergencies = null;
  const tbody = h("tbody", {}, h("tr", {}, h("td", { colspan: 6, class: "muted" }, "Loading…")));
  const updated = h("p", { id: "updated", class: "muted", "aria-live": "off" }, "Loading…");
  const summary = h("p", { id: "board-summary", role: "status" });

  function show(patients) {
    const text = JSON.stringify(patients);
    if (text === lastDocument) return;
    lastDocument = text;
    const focused = document.activeElement?.closest?.("tr")?.dataset?.patient;
    replace(tbody, patients.length ? patients.map(boardRow)
      : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No patient has sent observations in this period.")));
    if (focused) tbody.querySelector(`tr[data-patient="${CSS.escape(focused)}"] a`)?.focus();
    const count = (level) => patients.filter((p) => p.alert_level === level).length;
    const emergencies = count("emergency");
    summary.textContent = `${patients.length} patient${patients.length === 1 ? "" : "s"} monitored: `
      + `${emergencies} emergency, ${count("urgent")} urgent`;
    if (lastEmergencies !== null && emergencies > lastEmergencies) announce(`New emergency alert. ${summary.textContent}`);
    lastEmergencies = emergencies;
  }

  async function refresh() {
    window.clearTimeout(timer);
    try {
      const patients = await api(`/v1/monitoring/patients?${new URLSearchParams({ since: sinceParam(windowHours) })}`);
      if (stopped) return;
      show(patients);
      updated.textContent = `Updated ${clock(new Date())}; refreshes every ${POLL_MS / 1000} s`;
    } catch (error) {
      if (!stopped) updated.textContent = `Could not refresh (${error.message}); retrying`;
    }
    if (!stopped) timer = window.setTimeout(refresh, POLL_MS);
  }

  replace(main, h("section", { class: "monitoring-view", "aria-labelledby": "monitoring-heading" },
    h("div", { class: "view-head" },
      h("h1", { id: "monitoring-heading" }, "Monitoring"),
      h("div", { class: "toolbar" }, h("label", { for: "monitoring-window" }, "Seen in"),
        windowSelect(() => { lastDocument = ""; refresh(); }))),
    summary,
    h("div", { class: "table-wrap" }, h("table", { id: "monitoring-table" },
      h("caption", {}, "Patients with observations in the period: the most urgent open alert first, then the highest NEWS2"),
      h("thead", {}, h("tr", {}, ["Open alert", "Patient", "NEWS2", "qSOFA", "Observations", "Last observation"]
        .map((title) => h("th", { scope: "col" }, title)))),
      tbody)),
    h("div", { class: "pager" }, updated)));
  refresh();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
  };
}

function alertMarkers(alerts) {
  // An escalated alert opened one level lower (NEWS2: urgent, then emergency; home BP: routine, then urgent).
  const lower = { emergency: "urgent", urgent: "routine", routine: "routine" };
  const markers = [];
  for (const alert of alerts) {
    const opened = alert.escalations ? lower[alert.level] : alert.level;
    markers.push({ t: Date.parse(alert.opened_at), kind: opened,
      label: `${LEVEL_TEXT[opened] ?? opened} alert opened ${when(alert.opened_at)}` });
    if (alert.escalations) {
      markers.push({ t: Date.parse(alert.updated_at), kind: alert.level,
        label: `Escalated to ${LEVEL_TEXT[alert.level] ?? alert.level} ${when(alert.updated_at)}: ${alert.text}` });
    }
  }
  return markers;
}

function valuesTable(panel, series) {
  const rows = series.flatMap((s) => s.points.map((p) => ({ ...p, label: s.label })))
    .sort((a, b) => b.t - a.t);
  return h("details", { class: "values" }, h("summary", {}, `${panel.title}: ${rows.length} value${rows.length === 1 ? "" : "s"}`),
    h("table", {}, h("thead", {}, h("tr", {}, ["Time", "Measure", panel.unit ? `Value (${panel.unit})` : "Value"]
      .map((title) => h("th", { scope: "col" }, title)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, h("td", {}, when(new Date(r.t).toISOString())), h("td", {}, r.label),
      h("td", { class: "numbers" }, String(r.v)))))));
}

function panelSeries(panel, observations, scores) {
  const keys = panel.scores ?? panel.fields;
  return keys.map((key) => ({
    label: panel.labels[key],
    points: (panel.scores ? scores.filter((s) => s.method === key).map((s) => ({ t: Date.parse(s.observed_at), v: s.score }))
      : observations.filter((o) => o.field === key && o.value !== null)
        .map((o) => ({ t: Date.parse(o.effective), v: o.value }))),
  })).filter((s) => s.points.length);
}

/** One time axis for every chart: from the first value or alert in the period (not its empty start) to now. */
function timeAxis(since, observations, scores, markers) {
  const end = Date.now();
  const times = observations.map((o) => Date.parse(o.effective)).concat(scores.map((s) => Date.parse(s.observed_at)),
    markers.map((m) => m.t)).filter((t) => t >= since);
  const first = times.length ? Math.min(...times) : since;
  const start = Math.max(since, first - Math.max((end - first) * 0.05, 5 * 60e3));
  return { start, end };
}

function chartFigure(panel, series, period, markers) {
  const latest = series.map((s) => `${s.label} ${s.points[s.points.length - 1].v}${panel.unit ? ` ${panel.unit}` : ""}`)
    .join(", ");
  const alerts = markers.length ? `; ${markers.length} alert mark${markers.length === 1 ? "" : "s"}` : "";
  const legend = h("ul", { class: "legend", "aria-hidden": "true" }, series.map((s, k) => {
    const swatch = h("span", { class: "swatch" });
    swatch.style.backgroundColor = PALETTE[k % PALETTE.length];
    return h("li", {}, swatch, s.label);
  }));
  return h("figure", { class: "trend card", id: `trend-${panel.id}`, dataset: { points: String(
    series.reduce((n, s) => n + s.points.length, 0)) } },
  h("figcaption", {}, h("h2", {}, panel.title), legend),
  timeSeries(series, { id: `chart-${panel.id}`, title: `${panel.title} over time`, unit: panel.unit,
    description: `Latest: ${latest}${alerts}.`, start: period.start, end: period.end, markers,
    references: panel.references, floor: panel.floor }),
  valuesTable(panel, series));
}

function alertRow(alert, onAcknowledge) {
  const rules = alert.rules.map((r) => RULE_TEXT[r] ?? r).join("; ");
  const action = alert.state === "open"
    ? h("button", { type: "button", class: "primary acknowledge", "aria-label": `Acknowledge ${alert.level} alert opened ${when(alert.opened_at)}`,
      onClick: (event) => onAcknowledge(alert, event.target) }, "Acknowledge")
    : h("span", { class: "muted" }, `Acknowledged by ${alert.acknowledged_by} ${when(alert.acknowledged_at)}`);
  return h("tr", { class: `level-${alert.level}`, dataset: { alert: alert.id, state: alert.state } },
    h("td", {}, levelBadge(alert.level)),
    h("td", {}, h("time", { datetime: alert.opened_at }, when(alert.opened_at)),
      alert.escalations ? h("span", { class: "muted" }, ` · escalated ${when(alert.updated_at)}`) : null),
    h("td", {}, alert.text, h("span", { class: "muted" }, ` (${rules})`)),
    h("td", {}, action));
}

/** One patient's trends and alerts; returns the function that stops its refresh. */
function renderPatient(main, patient) {
  let stopped = false;
  let timer = null;
  const status = h("p", { id: "trend-status", role: "status", class: "muted" }, "Loading…");
  const charts = h("div", { class: "trends" });
  const alertBody = h("tbody", {});
  const alertSection = h("section", { class: "card", "aria-labelledby": "alerts-heading" },
    h("h2", { id: "alerts-heading" }, "Alerts"),
    h("div", { class: "table-scroll" }, h("table", { id: "patient-alerts" }, h("thead", {}, h("tr", {}, ["Level", "Opened", "Why", "Acknowledgement"]
      .map((title) => h("th", { scope: "col" }, title)))), alertBody)));

  async function acknowledge(alert, button) {
    button.disabled = true;
    try {
      await api(`/v1/alerts/${encodeURIComponent(alert.id)}/acknowledge`, { method: "POST" });
      announce(`${LEVEL_TEXT[alert.level] ?? alert.level} alert acknowledged.`);
      await load();
      alertBody.querySelector("button.acknowledge")?.focus();
    } catch (error) {
      button.disabled = false;
      status.textContent = `Could not acknowledge the alert: ${error.message}`;
      status.className = "error";
    }
  }

  async function load() {
    window.clearTimeout(timer);
    const since = sinceParam(windowHours);
    const query = new URLSearchParams({ patient, since });
    try {
      const [observations, scores, alerts] = await Promise.all([
        api(`/v1/observations?${query}`), api(`/v1/monitoring/scores?${query}`),
        api(`/v1/alerts?${new URLSearchParams({ patient, state: "all" })}`)]);
      if (stopped) return;
      const markers = alertMarkers(alerts);
      const period = timeAxis(Date.parse(since), observations, scores, markers);
      const figures = PANELS.map((panel) => [panel, panelSeries(panel, observations, scores)])
        .filter(([, series]) => series.length).map(([panel, series]) => chartFigure(panel, series, period, markers));
      replace(charts, figures.length ? figures
        : h("p", { class: "muted" }, "No observations or scores in this period."));
      const open = alerts.filter((a) => a.state === "open").length;
      replace(alertBody, alerts.length ? alerts.map((a) => alertRow(a, acknowledge))
        : h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No alerts.")));
      status.className = "muted";
      status.textContent = `${observations.length} observations, ${scores.length} scores, ${open} open alert`
        + `${open === 1 ? "" : "s"}. Updated ${clock(new Date())}; refreshes every ${POLL_MS / 1000} s`;
    } catch (error) {
      if (stopped) return;
      status.className = "error";
      status.textContent = error.status === 403 ? "This patient is outside your access."
        : `Could not load the trends (${error.message}); retrying`;
    }
    if (!stopped) timer = window.setTimeout(load, POLL_MS);
  }

  replace(main, h("section", { class: "monitoring-patient", "aria-labelledby": "patient-heading" },
    h("div", { class: "view-head" },
      h("h1", { id: "patient-heading" }, patient),
      h("a", { href: "#/monitoring", class: "back" }, "All monitored patients"),
      h("div", { class: "toolbar" }, h("label", { for: "monitoring-window" }, "Period"), windowSelect(load))),
    status, alertSection, charts));
  load();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
  };
}

/** Render the monitoring view into `main`: the list, or one patient (`args[0]`); returns its cleanup. */
export function renderMonitoring(main, args) {
  return args[0] ? renderPatient(main, args[0]) : renderBoard(main);
}
