// The ML engineer's dashboard from GET /v1/dashboard: registered models with their model cards' headline metrics,
// engine calls per model version over the window, kept in the database across restarts (count, items, mean batch,
// p50/p95 latency interpolated within the histogram buckets), refusals per day and reason (an SVG chart with the
// same numbers as a table), and the readers' agreement with the AI findings.

import { api } from "./api.js";
import { h, replace, when } from "./dom.js";
import { PALETTE, stackedBars } from "./chart.js";
import { displayName } from "./findings.js";
import { t } from "./i18n.js";

const DAYS = 14;

function number(value, digits = 1) {
  return value === null || value === undefined ? "—" : value.toFixed(digits);
}

function percent(rate) {
  return rate === null || rate === undefined ? "—" : `${(100 * rate).toFixed(0)} %`;
}

function table(id, caption, headers, rows, empty) {
  return h("div", { class: "table-wrap plain" }, h("table", { id, class: "dashboard-table" },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headers.map((title) => h("th", { scope: "col" }, title)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, empty)))));
}

function modelsSection(data) {
  const rows = data.models.map((m) => h("tr", { dataset: { model: m.key } },
    h("th", { scope: "row" }, m.name, m.not_for_diagnostic_use
      ? h("span", { class: "badge caveat", title: m.intended_use }, t("dashboard.nfdu")) : null),
    h("td", {}, m.version),
    h("td", {}, `${m.task}, ${m.modality}${m.labels ? t("dashboard.labels", { count: m.labels }) : ""}`),
    h("td", {}, m.serves.length ? m.serves.join("; ") : h("span", { class: "muted" }, t("dashboard.registered"))),
    h("td", { class: "card-metrics" }, m.card_metrics.length ? h("ul", {}, m.card_metrics.map((c) => h("li", {},
      `${c.split}: ${c.metric} ${number(c.value, 4)} `, h("span", { class: "muted" }, `(n = ${c.n} ${c.unit})`))))
      : h("span", { class: "muted" }, t("dashboard.noMetrics"))),
    h("td", { class: "muted" }, m.model_card)));
  return h("section", { class: "card", "aria-labelledby": "models-heading" },
    h("h2", { id: "models-heading" }, t("dashboard.models")),
    table("models-table", t("dashboard.modelsCaption"), ["model", "version", "task", "usedFor", "cardMetrics", "card"]
      .map((column) => t(`dashboard.col.${column}`)), rows, t("dashboard.noModel")));
}

function engineSection(data) {
  const rows = data.engine.map((e) => h("tr", { dataset: { model: e.model } },
    h("th", { scope: "row" }, e.model), h("td", { class: "numbers calls" }, String(e.calls)),
    h("td", { class: "numbers items" }, String(e.items)), h("td", { class: "numbers" }, number(e.mean_batch, 2)),
    h("td", { class: "numbers" }, number(e.p50_ms)), h("td", { class: "numbers" }, number(e.p95_ms)),
    h("td", { class: "numbers" }, number(e.mean_ms))));
  const methods = data.methods.map((m) => h("tr", {}, h("th", { scope: "row" }, m.method), h("td", {}, m.outcome),
    h("td", { class: "numbers" }, String(m.count))));
  return h("section", { class: "card", "aria-labelledby": "engine-heading" },
    h("h2", { id: "engine-heading" }, t("dashboard.inference")),
    h("p", { class: "muted" }, t("dashboard.engineNote", { since: data.since, percentiles: data.percentiles })),
    table("engine-table", t("dashboard.engineCaption"), [t("dashboard.col.modelVersion"), t("dashboard.col.calls"),
      t("dashboard.col.items"), t("dashboard.col.meanBatch"), "p50 ms", "p95 ms", t("dashboard.col.meanMs")], rows,
    t("dashboard.noEngine")),
    table("methods-table", t("dashboard.methodsCaption"),
      [t("dashboard.col.method"), t("dashboard.col.outcome"), t("dashboard.col.requests")], methods,
      t("dashboard.noScored")));
}

function refusalSeries(data) {
  const days = [];
  const start = new Date(`${data.since}T00:00:00Z`);
  for (let i = 0; i < data.days; i += 1) {
    days.push(new Date(start.getTime() + i * 86_400_000).toISOString().slice(0, 10));
  }
  const label = (r) => (r.source === "image_refused" ? `image refused: ${r.reason}`
    : `${r.kind} job failed: ${r.reason}`);
  const series = new Map();
  for (const r of data.refusals) {
    if (!series.has(label(r))) series.set(label(r), new Array(days.length).fill(0));
    const index = days.indexOf(r.day);
    if (index >= 0) series.get(label(r))[index] += r.count;
  }
  return { days, series: [...series].map(([name, values]) => ({ label: name, values })) };
}

function refusalSection(data) {
  const { days, series } = refusalSeries(data);
  const sum = (values) => values.reduce((a, b) => a + b, 0);
  const total = sum(series.map((s) => sum(s.values)));
  const description = total
    ? t("dashboard.refusalsOver", { count: total, days: data.days,
      detail: series.map((s) => `${s.label} ${sum(s.values)}`).join("; ") })
    : t("dashboard.noRefusalDays", { days: data.days });
  const legend = h("ul", { class: "legend", "aria-hidden": "true" }, series.map((s, k) => {
    const swatch = h("span", { class: "swatch" });
    swatch.style.backgroundColor = PALETTE[k % PALETTE.length];
    return h("li", {}, swatch, s.label);
  }));
  const rows = data.refusals.map((r) => h("tr", {}, h("td", {}, r.day),
    h("td", {}, r.source === "image_refused" ? t("dashboard.imageRefused")
      : t("dashboard.jobFailed", { kind: r.kind })), h("td", {}, r.reason),
    h("td", { class: "numbers" }, String(r.count))));
  return h("section", { class: "card", "aria-labelledby": "refusals-heading" },
    h("h2", { id: "refusals-heading" }, t("dashboard.refusals")),
    h("p", { class: "muted", id: "refusals-summary" }, description),
    stackedBars(days, series, { id: "refusals-chart", title: t("dashboard.perDay", { days: data.days }),
      description }),
    legend,
    h("details", { class: "as-table" }, h("summary", {}, t("dashboard.asTable")),
      table("refusals-table", t("dashboard.refusalsCaption"),
        ["day", "what", "reason", "count"].map((column) => t(`dashboard.col.${column}`)), rows,
        t("dashboard.noRefusal"))));
}

function agreementSection(data) {
  const overall = data.agreement;
  const row = (a, withLabel) => h("tr", { dataset: { model: a.model, label: a.label } },
    h("th", { scope: "row" }, a.model || "—"), withLabel ? h("td", {}, displayName(a.label)) : null,
    h("td", { class: "numbers rate" }, percent(a.rate)), h("td", { class: "numbers" }, String(a.accepted)),
    h("td", { class: "numbers" }, String(a.rejected)));
  const reviewed = overall.accepted + overall.rejected;
  return h("section", { class: "card", "aria-labelledby": "agreement-heading" },
    h("h2", { id: "agreement-heading" }, t("dashboard.agreement")),
    h("p", { class: "big-number", id: "agreement-overall" }, percent(overall.rate),
      h("span", { class: "muted" }, reviewed ? t("dashboard.ofReviewed", { count: reviewed })
        : t("dashboard.noneReviewed"))),
    table("agreement-models", t("dashboard.perModel"), ["model", "agreement", "accepted", "rejected"]
      .map((column) => t(`dashboard.col.${column}`)), data.agreement_by_model.map((a) => row(a, false)),
    t("dashboard.noReview")),
    table("agreement-labels", t("dashboard.perFinding"), ["model", "finding", "agreement", "accepted", "rejected"]
      .map((column) => t(`dashboard.col.${column}`)), data.agreement_by_label.map((a) => row(a, true)),
    t("dashboard.noReview")));
}

/** Render the dashboard into `main`; returns its cleanup. */
export function renderDashboard(main) {
  let disposed = false;
  const body = h("div", { id: "dashboard-body" }, h("p", { class: "muted", role: "status" }, t("dashboard.loading")));
  const updated = h("p", { id: "dashboard-updated", class: "muted", role: "status" });
  const refresh = h("button", { type: "button", id: "dashboard-refresh" }, t("dashboard.refresh"));

  async function load() {
    refresh.disabled = true;
    try {
      const data = await api(`/v1/dashboard?days=${DAYS}`);
      if (disposed) return;
      replace(body, modelsSection(data), h("div", { class: "dashboard-grid" },
        h("div", {}, engineSection(data), agreementSection(data)), refusalSection(data)));
      updated.textContent = t("dashboard.updated", { time: when(data.generated_at) });
    } catch (error) {
      if (!disposed) updated.textContent = t("dashboard.failed", { error: error.message });
    } finally {
      refresh.disabled = false;
    }
  }
  refresh.addEventListener("click", load);
  replace(main, h("section", { class: "dashboard-view", "aria-labelledby": "dashboard-heading" },
    h("div", { class: "view-head" }, h("h1", { id: "dashboard-heading" }, t("dashboard.title")),
      h("div", { class: "toolbar" }, updated, refresh)),
    body));
  load();
  return () => { disposed = true; };
}
