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
import { t } from "./i18n.js";

const POLL_MS = 15000;
const WINDOWS = ["24", "72", "168", "720"]; // hours, named by monitoring.window.<hours>
const LEVELS = ["emergency", "urgent", "routine"]; // monitoring.level.<level>
const RULES = ["news2_emergency", "news2_urgent", "news2_red", "news2_rise", "home_bp_above_target", "bp_refer_now"];
// What each chart plots: stored fields (canonical units: glucose in mmol/L as sent) or early-warning scores; the
// titles are monitoring.panel.<id>, the series monitoring.measure.<field>.
const PANELS = [
  { id: "scores", unit: "", floor: 0, scores: ["news2", "qsofa"],
    references: [{ v: 5, label: "monitoring.reference.urgent" }, { v: 7, label: "monitoring.reference.emergency" }] },
  { id: "rates", unit: "/min", fields: ["heart_rate", "respiratory_rate"] },
  { id: "bp", unit: "mmHg", fields: ["systolic_bp", "diastolic_bp"] },
  { id: "spo2", unit: "%", fields: ["spo2"] },
  { id: "temperature", unit: "°C", fields: ["temperature"] },
  { id: "glucose", unit: "mmol/L", fields: ["glucose", "fasting_glucose"] },
  { id: "weight", unit: "kg", fields: ["weight_kg"] },
];

function levelText(level) {
  return LEVELS.includes(level) ? t(`monitoring.level.${level}`) : level;
}

function panelTitle(panel) {
  return t(`monitoring.panel.${panel.id}`);
}
let windowHours = "24"; // kept while the page lives (back from a patient to the list)

function levelBadge(level) {
  return level
    ? h("span", { class: `badge level-${level}` }, levelText(level))
    : h("span", { class: "muted" }, t("monitoring.noneOpen"));
}

function sinceParam(hours) {
  return new Date(Date.now() - Number(hours) * 3600e3).toISOString();
}

function windowSelect(onChange) {
  return h("select", { id: "monitoring-window", onChange: (event) => { windowHours = event.target.value; onChange(); } },
    WINDOWS.map((value) => h("option", { value, selected: value === windowHours }, t(`monitoring.window.${value}`))));
}

function scoreText(point) {
  if (!point) return h("span", { class: "muted" }, "—");
  const band = point.band ? ` · ${point.band.replaceAll("_", " ")}` : "";
  return h("span", { title: t("monitoring.released", { time: when(point.at) }) }, `${point.score}${band}`);
}

function patientHash(patient) {
  return `#/monitoring/${encodeURIComponent(patient)}`;
}

function boardRow(patient) {
  return h("tr", { class: patient.alert_level ? `level-${patient.alert_level}` : "", dataset: { patient: patient.patient } },
    h("td", {}, levelBadge(patient.alert_level),
      patient.open_alerts > 1 ? h("span", { class: "muted" }, ` ×${patient.open_alerts}`) : null),
    h("th", { scope: "row" }, h("a", { href: patientHash(patient.patient), "aria-label": t("monitoring.trendsOf", { patient: patient.patient }) },
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
  const tbody = h("tbody", {}, h("tr", {}, h("td", { colspan: 6, class: "muted" }, t("monitoring.loading"))));
  const updated = h("p", { id: "updated", class: "muted", "aria-live": "off" }, t("monitoring.loading"));
  const summary = h("p", { id: "board-summary", role: "status" });

  function show(patients) {
    const text = JSON.stringify(patients);
    if (text === lastDocument) return;
    lastDocument = text;
    const focused = document.activeElement?.closest?.("tr")?.dataset?.patient;
    replace(tbody, patients.length ? patients.map(boardRow)
      : h("tr", {}, h("td", { colspan: 6, class: "muted" }, t("monitoring.noPatient"))));
    if (focused) tbody.querySelector(`tr[data-patient="${CSS.escape(focused)}"] a`)?.focus();
    const count = (level) => patients.filter((p) => p.alert_level === level).length;
    const emergencies = count("emergency");
    summary.textContent = t("monitoring.summary", { count: patients.length, emergencies, urgent: count("urgent") });
    if (lastEmergencies !== null && emergencies > lastEmergencies) {
      announce(t("monitoring.newEmergency", { summary: summary.textContent }));
    }
    lastEmergencies = emergencies;
  }

  async function refresh() {
    window.clearTimeout(timer);
    try {
      const patients = await api(`/v1/monitoring/patients?${new URLSearchParams({ since: sinceParam(windowHours) })}`);
      if (stopped) return;
      show(patients);
      updated.textContent = t("monitoring.updated", { time: clock(new Date()), seconds: POLL_MS / 1000 });
    } catch (error) {
      if (!stopped) updated.textContent = t("monitoring.refreshFailed", { error: error.message });
    }
    if (!stopped) timer = window.setTimeout(refresh, POLL_MS);
  }

  replace(main, h("section", { class: "monitoring-view", "aria-labelledby": "monitoring-heading" },
    h("div", { class: "view-head" },
      h("h1", { id: "monitoring-heading" }, t("monitoring.title")),
      h("div", { class: "toolbar" }, h("label", { for: "monitoring-window" }, t("monitoring.seenIn")),
        windowSelect(() => { lastDocument = ""; refresh(); }))),
    summary,
    h("div", { class: "table-wrap" }, h("table", { id: "monitoring-table" },
      h("caption", {}, t("monitoring.caption")),
      h("thead", {}, h("tr", {}, [t("monitoring.col.alert"), t("monitoring.col.patient"), "NEWS2", "qSOFA",
        t("monitoring.col.observations"), t("monitoring.col.last")].map((title) => h("th", { scope: "col" }, title)))),
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
      label: t("monitoring.alertOpened", { level: levelText(opened), time: when(alert.opened_at) }) });
    if (alert.escalations) {
      markers.push({ t: Date.parse(alert.updated_at), kind: alert.level,
        label: t("monitoring.escalatedTo", { level: levelText(alert.level), time: when(alert.updated_at),
          text: alert.text }) });
    }
  }
  return markers;
}

function valuesTable(panel, series) {
  const rows = series.flatMap((s) => s.points.map((p) => ({ ...p, label: s.label })))
    .sort((a, b) => b.t - a.t);
  return h("details", { class: "values" },
    h("summary", {}, t("monitoring.values", { title: panelTitle(panel), count: rows.length })),
    h("table", {}, h("thead", {}, h("tr", {}, [t("monitoring.col.time"), t("monitoring.col.measure"),
      panel.unit ? t("monitoring.col.valueIn", { unit: panel.unit }) : t("monitoring.col.value")]
      .map((title) => h("th", { scope: "col" }, title)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, h("td", {}, when(new Date(r.t).toISOString())), h("td", {}, r.label),
      h("td", { class: "numbers" }, String(r.v)))))));
}

function panelSeries(panel, observations, scores) {
  const keys = panel.scores ?? panel.fields;
  return keys.map((key) => ({
    label: ["news2", "qsofa"].includes(key) ? { news2: "NEWS2", qsofa: "qSOFA" }[key] : t(`monitoring.measure.${key}`),
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
  const alerts = markers.length ? t("monitoring.marks", { count: markers.length }) : "";
  const legend = h("ul", { class: "legend", "aria-hidden": "true" }, series.map((s, k) => {
    const swatch = h("span", { class: "swatch" });
    swatch.style.backgroundColor = PALETTE[k % PALETTE.length];
    return h("li", {}, swatch, s.label);
  }));
  return h("figure", { class: "trend card", id: `trend-${panel.id}`, dataset: { points: String(
    series.reduce((n, s) => n + s.points.length, 0)) } },
  h("figcaption", {}, h("h2", {}, panelTitle(panel)), legend),
  timeSeries(series, { id: `chart-${panel.id}`, title: t("monitoring.overTime", { title: panelTitle(panel) }),
    unit: panel.unit, description: t("monitoring.latest", { latest, alerts }), start: period.start, end: period.end,
    markers, references: panel.references?.map((r) => ({ ...r, label: t(r.label) })), floor: panel.floor }),
  valuesTable(panel, series));
}

function alertRow(alert, onAcknowledge) {
  const rules = alert.rules.map((r) => (RULES.includes(r) ? t(`monitoring.rule.${r}`) : r)).join("; ");
  const action = alert.state === "open"
    ? h("button", { type: "button", class: "primary acknowledge",
      "aria-label": t("monitoring.acknowledgeLabel", { level: levelText(alert.level), time: when(alert.opened_at) }),
      onClick: (event) => onAcknowledge(alert, event.target) }, t("monitoring.acknowledge"))
    : h("span", { class: "muted" }, t("monitoring.acknowledgedBy", { who: alert.acknowledged_by,
      time: when(alert.acknowledged_at) }));
  return h("tr", { class: `level-${alert.level}`, dataset: { alert: alert.id, state: alert.state } },
    h("td", {}, levelBadge(alert.level)),
    h("td", {}, h("time", { datetime: alert.opened_at }, when(alert.opened_at)),
      alert.escalations ? h("span", { class: "muted" }, t("monitoring.escalated", { time: when(alert.updated_at) })) : null),
    h("td", {}, alert.text, h("span", { class: "muted" }, ` (${rules})`)),
    h("td", {}, action));
}

/** One patient's trends and alerts; returns the function that stops its refresh. */
function renderPatient(main, patient) {
  let stopped = false;
  let timer = null;
  const status = h("p", { id: "trend-status", role: "status", class: "muted" }, t("monitoring.loading"));
  const charts = h("div", { class: "trends" });
  const alertBody = h("tbody", {});
  const alertSection = h("section", { class: "card", "aria-labelledby": "alerts-heading" },
    h("h2", { id: "alerts-heading" }, t("monitoring.alerts")),
    h("div", { class: "table-scroll" }, h("table", { id: "patient-alerts" }, h("thead", {}, h("tr", {},
      ["level", "opened", "why", "acknowledgement"].map((column) => h("th", { scope: "col" },
        t(`monitoring.col.${column}`))))), alertBody)));

  async function acknowledge(alert, button) {
    button.disabled = true;
    try {
      await api(`/v1/alerts/${encodeURIComponent(alert.id)}/acknowledge`, { method: "POST" });
      announce(t("monitoring.acknowledged", { level: levelText(alert.level) }));
      await load();
      alertBody.querySelector("button.acknowledge")?.focus();
    } catch (error) {
      button.disabled = false;
      status.textContent = t("monitoring.acknowledgeFailed", { error: error.message });
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
        : h("p", { class: "muted" }, t("monitoring.noObservations")));
      const open = alerts.filter((a) => a.state === "open").length;
      replace(alertBody, alerts.length ? alerts.map((a) => alertRow(a, acknowledge))
        : h("tr", {}, h("td", { colspan: 4, class: "muted" }, t("monitoring.noAlerts"))));
      status.className = "muted";
      status.textContent = t("monitoring.patientStatus", { observations: observations.length, scores: scores.length,
        count: open, time: clock(new Date()), seconds: POLL_MS / 1000 });
    } catch (error) {
      if (stopped) return;
      status.className = "error";
      status.textContent = error.status === 403 ? t("monitoring.outsideAccess")
        : t("monitoring.trendsFailed", { error: error.message });
    }
    if (!stopped) timer = window.setTimeout(load, POLL_MS);
  }

  replace(main, h("section", { class: "monitoring-patient", "aria-labelledby": "patient-heading" },
    h("div", { class: "view-head" },
      h("h1", { id: "patient-heading" }, patient),
      h("a", { href: "#/monitoring", class: "back" }, t("monitoring.all")),
      h("div", { class: "toolbar" }, h("label", { for: "monitoring-window" }, t("monitoring.period")),
        windowSelect(load))),
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
