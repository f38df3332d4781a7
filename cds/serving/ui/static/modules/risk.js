// The clinician's patient risk panel: a FHIR R4 Bundle in (a file, or the sample patient from
// GET /v1/risk/panel/sample), POST /v1/risk/panel, and one card per topic (cardiovascular, diabetes, kidney):
// score and band (colour and words), the equation or model with its version and published source, every input
// with its value, unit, date and source resource, each input's contribution as a signed bar with its number, and
// what is missing. Nothing is imputed: a topic whose inputs are missing says which, and is not scored; a missing
// yes/no input can be answered here and the panel scored again with the answer (noted on the result).
//
// Whose panel it is stays on screen (name, identifiers, birth date, sex), and nothing of a patient outlives a
// request that fails: the cards are cleared when a new Bundle is sent and stay empty if it is refused.

import { api } from "./api.js";
import { announce, day, h, replace } from "./dom.js";
import { t } from "./i18n.js";

const TOPICS = ["cardiovascular", "diabetes", "kidney"];
const BANDS = { // band -> severity class; the words are the catalogue's risk.band.<band>
  low: "sev-low", borderline: "sev-mid", slightly_elevated: "sev-mid", intermediate: "sev-high", moderate: "sev-high",
  high: "sev-top", very_high: "sev-top",
};
const KDIGO = { // GFR category -> severity class (KDIGO 2012); the words are risk.kdigo.<category>
  G1: "sev-low", G2: "sev-low", G3a: "sev-mid", G3b: "sev-high", G4: "sev-top", G5: "sev-top",
};
const UNITS = { "mm[Hg]": "mmHg", "mL/min/{1.73_m2}": "mL/min/1.73 m²", "kg/m2": "kg/m²" }; // as the server sent them

function kdigoWords(category) {
  return category in KDIGO ? t(`risk.kdigo.${category}`) : t("risk.kdigo.category");
}
const VALUES = ["female", "male", "white", "african_american", "other"]; // categorical inputs, risk.value.<value>
const MAX_BUNDLE_BYTES = 5 * 1024 * 1024;

function unitText(unit) {
  if (unit === "a" || unit === "years") return t("risk.unit.years");
  return unit === "1" ? "" : (UNITS[unit] ?? unit);
}

/** "MedicationRequest/amlodipine" with a line-break opportunity after the "/", so a narrow card wraps it there. */
function breakAfterSlash(reference) {
  const parts = String(reference).split("/");
  return parts.flatMap((part, i) => (i < parts.length - 1 ? [`${part}/`, h("wbr")] : [part]));
}

function valueText(input) {
  const { value } = input;
  if (value === null || value === undefined) return "—";
  if (typeof value === "boolean") return t(value ? "risk.yes" : "risk.no");
  if (typeof value === "number") {
    const shown = Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
    return `${shown}${unitText(input.unit) ? ` ${unitText(input.unit)}` : ""}`;
  }
  return valueWords(value);
}

/** A category the record holds (sex, race) in the workspace's language; others as they came. */
function valueWords(value) {
  return VALUES.includes(value) ? t(`risk.value.${value}`) : String(value).replaceAll("_", " ");
}

function isProbability(result) {
  return result.score_unit.startsWith("probability");
}

function scoreText(result) {
  if (result.score === null) return "—";
  if (isProbability(result)) return `${(100 * result.score).toFixed(1)} %`;
  return `${Number(result.score.toPrecision(3))} ${unitText(result.score_unit)}`;
}

/** What one contribution does to the score: a signed effect for the bar, and the words and number to show. */
export function effectOf(result, contribution) {
  if (contribution === null || contribution === undefined) return null;
  if (result.contribution_unit.startsWith("multiplicative")) {
    const percent = 100 * (contribution - 1);
    const words = Math.abs(percent) < 0.05 ? t("risk.noChange")
      : t(percent > 0 ? "risk.raisesBy" : "risk.lowersBy", { size: `${Math.abs(percent).toFixed(1)} %` });
    const none = Math.abs(percent) < 0.05;
    return { effect: Math.log(contribution), text: `×${contribution.toFixed(3)}`, words, none };
  }
  const points = isProbability(result) ? 100 * contribution : contribution;
  const size = Math.abs(points) < 0.005 ? "0.00" : Math.abs(points).toFixed(2);
  const sign = points > 0 && size !== "0.00" ? "+" : points < 0 && size !== "0.00" ? "−" : "±";
  const amount = isProbability(result) ? t("risk.percentagePoints", { size }) : size;
  const words = size === "0.00" ? t("risk.noChange")
    : t(points > 0 ? "risk.raisesBy" : "risk.lowersBy", { size: amount });
  const text = `${sign}${size}${isProbability(result) ? " pp" : ""}`;
  return { effect: points, text, words, none: size === "0.00" };
}

function contributionCell(result, input, scale) {
  const effect = effectOf(result, input.contribution);
  if (effect === null) {
    return h("td", { class: "contribution muted" }, h("span", { title: t("risk.notSeparatedTitle") },
      t("risk.notSeparated")));
  }
  const direction = effect.none ? "none" : effect.effect > 0 ? "raises" : "lowers";
  const bar = h("span", { class: "signed-bar", role: "img", "aria-label": `${input.description}: ${effect.words}` });
  const fill = h("span", { class: `fill ${direction}` });
  const share = scale > 0 && direction !== "none" ? Math.min(1, Math.abs(effect.effect) / scale) : 0;
  fill.style.width = `${50 * share}%`;
  if (direction === "lowers") fill.style.right = "50%";
  else fill.style.left = "50%";
  bar.append(h("span", { class: "axis", "aria-hidden": "true" }), fill);
  const arrow = { raises: "▲ ", lowers: "▼ ", none: "" }[direction];
  return h("td", { class: "contribution" }, bar, h("span", { class: `effect ${direction}` }, `${arrow}${effect.text}`),
    h("span", { class: "visually-hidden" }, ` (${effect.words})`));
}

function inputsTable(topic) {
  const result = topic.result;
  const effects = result ? topic.inputs.map((i) => effectOf(result, i.contribution)).filter((e) => e !== null) : [];
  const scale = Math.max(0, ...effects.map((e) => Math.abs(e.effect)));
  const headers = [t("risk.col.input"), t("risk.col.value"), result ? t("risk.col.contribution") : null]
    .filter(Boolean);
  return h("table", { class: "inputs", id: `inputs-${topic.topic}` },
    h("caption", {}, result ? t("risk.inputsCaption", { unit: result.contribution_unit }) : t("risk.inputsSoFar")),
    h("thead", {}, h("tr", {}, headers.map((text) => h("th", { scope: "col" }, text)))),
    h("tbody", {}, topic.inputs.length ? topic.inputs.map((input) => h("tr", { dataset: { field: input.field } },
      h("th", { scope: "row" }, h("span", { class: "block" }, input.description),
        h("span", { class: "muted block source" }, input.source ? breakAfterSlash(input.source) : t("risk.noSource"))),
      h("td", { class: "numbers" }, h("span", { class: "block value" }, valueText(input)),
        h("span", { class: "muted block date" }, input.date ?? t("risk.undated"))),
      result ? contributionCell(result, input, scale) : null))
      : h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, t("risk.noInputs")))));
}

function answerControl(topic, m, answers) {
  const name = `answer-${topic.topic}-${m.field}`;
  const choice = (value, label) => {
    const input = h("input", { type: "radio", name, value, id: `${name}-${value}` });
    input.checked = answers.get(m.field) === value;
    input.addEventListener("change", () => answers.set(m.field, value));
    return h("label", { for: `${name}-${value}`, class: "inline" }, input, ` ${label}`);
  };
  return h("fieldset", { class: "answer" },
    h("legend", { class: "visually-hidden" }, t("risk.yesOrNoLegend", { input: m.description })),
    choice("yes", t("risk.Yes")), choice("no", t("risk.No")));
}

function missingList(topic, answers) {
  if (topic.not_scored === "established_ascvd") {
    return h("p", { class: "muted" }, t("risk.ascvd"));
  }
  if (topic.not_scored === "known_diabetes") {
    return h("p", { class: "muted", id: `known-${topic.topic}` },
      t("risk.knownDiabetes", { reason: topic.reason }));
  }
  if (!topic.missing.length) return h("p", { class: "muted missing-none" }, t("risk.nothingMissing"));
  const answerable = topic.missing.filter((m) => m.kind === "boolean");
  return h("div", { class: "missing", id: `missing-${topic.topic}` },
    h("h3", {}, t("risk.missing", { count: topic.missing.length })),
    h("ul", {}, topic.missing.map((m) => h("li", { dataset: { field: m.field } },
      h("strong", {}, m.description), h("span", { class: "muted" },
        unitText(m.unit) ? t("risk.missingUnit", { field: m.field, unit: unitText(m.unit) })
          : t("risk.missingYesNo", { field: m.field })),
      m.kind === "boolean" ? answerControl(topic, m, answers) : null))),
    answerable.length ? h("p", { class: "muted" }, t("risk.answerHint")) : null,
    topic.result ? null : h("p", { class: "muted" }, t("risk.notImputed")));
}

const NOT_SCORED = { // reason -> severity class; the words are risk.notScored.<reason>
  established_ascvd: "sev-high", known_diabetes: "sev-none", impossible_value: "sev-mid", missing_fields: "sev-none",
};

// KDIGO 2012 prognosis of CKD by GFR and albuminuria category -> severity class; the words are risk.heat.<band>
const HEAT_MAP = { low: "sev-low", moderate: "sev-mid", high: "sev-high", very_high: "sev-top" };

function kidneyLabel(result) {
  const [g, a] = (result.category ?? "").split(" ");
  if (!a) return [t("risk.kidneyNoA", { g, words: kdigoWords(g) }), KDIGO[g] ?? "sev-mid"];
  const heat = result.band in HEAT_MAP ? t(`risk.heat.${result.band}`) : t("risk.heat.unknown");
  return [t("risk.kidneyGA", { g, a, words: kdigoWords(g), heat }), HEAT_MAP[result.band] ?? "sev-mid"];
}

function scoreBlock(topic) {
  const result = topic.result;
  if (!result) {
    const reason = topic.not_scored in NOT_SCORED ? topic.not_scored : "missing_fields";
    const [label, severity] = [t(`risk.notScored.${reason}`), NOT_SCORED[reason]];
    return h("div", { class: "score-block" },
      h("span", { class: `badge band ${severity}`, id: `band-${topic.topic}` }, label),
      h("p", { class: "muted not-scored-reason", id: `reason-${topic.topic}` }, topic.reason
        || t("risk.inputsMissing", { count: topic.missing.length })));
  }
  const kidney = topic.topic === "kidney" && result.category;
  const band = result.band in BANDS ? [t(`risk.band.${result.band}`), BANDS[result.band]] : [result.band, "sev-mid"];
  const [words, severity] = kidney ? kidneyLabel(result) : result.band ? band
    : result.category ? [t("risk.categoryWords", { category: result.category, words: kdigoWords(result.category) }),
      KDIGO[result.category] ?? "sev-mid"] : [t("risk.noBand"), "sev-none"];
  const label = result.band && !kidney ? t("risk.bandRisk", { band: words }) : words;
  return h("div", { class: "score-block" },
    h("span", { class: "score", id: `score-${topic.topic}` }, scoreText(result)),
    h("span", { class: `badge band ${severity}`, id: `band-${topic.topic}` }, label),
    isProbability(result) ? h("span", { class: "muted" }, result.score_unit) : null);
}

function topicCard(topic, answers) {
  const result = topic.result;
  const warnings = result?.warnings ?? [];
  return h("article", { class: "card topic", id: `topic-${topic.topic}`, "aria-labelledby": `topic-${topic.topic}-h`,
    dataset: { topic: topic.topic, scored: result ? "true" : "false" } },
  h("h2", { id: `topic-${topic.topic}-h` },
    TOPICS.includes(topic.topic) ? t(`risk.topic.${topic.topic}`) : topic.topic),
  topic.headline ? h("p", { class: "headline", id: `headline-${topic.topic}` }, topic.headline) : null,
  h("p", { class: "outcome muted" }, topic.outcome),
  scoreBlock(topic),
  h("dl", { class: "method" },
    h("dt", {}, t("risk.method")), h("dd", { class: "method-title" },
      t("risk.methodVersion", { title: topic.method_title, version: topic.method_version })),
    h("dt", {}, t("risk.source")), h("dd", { class: "method-source" }, topic.method_source),
    result?.population ? [h("dt", {}, t("risk.for")), h("dd", {}, result.population)] : null),
  warnings.length ? h("ul", { class: "warnings", "aria-label": t("risk.warnings") },
    warnings.map((w) => h("li", {}, w)))
    : null,
  inputsTable(topic),
  missingList(topic, answers));
}

function identityFacts(panel) {
  const fact = (label, value, id) => h("div", {}, h("dt", {}, label), h("dd", id ? { id } : {}, value || "—"));
  return h("dl", { class: "facts patient-banner", id: "panel-identity", "aria-label": t("risk.whose") },
    fact(t("risk.patient"), panel.patient_name ?? t("risk.noName"), "panel-patient-name"),
    fact(t("risk.identifiers"), panel.identifiers.length ? panel.identifiers.join(", ") : t("risk.noIdentifiers"),
      "panel-identifiers"),
    fact(t("risk.born"), panel.birth_date ? day(panel.birth_date) || panel.birth_date : null, "panel-birth"),
    fact(t("risk.sex"), panel.gender ? valueWords(panel.gender) : null, "panel-gender"),
    fact(t("risk.record"), panel.patient, "panel-patient"));
}

/** Render the panel view into `main`. */
export function renderRiskPanel(main) {
  let disposed = false;
  const status = h("p", { id: "panel-status", role: "status", class: "muted" },
    t("risk.start"));
  const summary = h("div", { id: "panel-summary" });
  const cards = h("div", { class: "topics", id: "topics" });
  const fileInput = h("input", { type: "file", id: "bundle-input",
    accept: ".json,application/json,application/fhir+json" });
  const sampleButton = h("button", { type: "button", id: "load-sample", class: "primary" }, t("risk.sample"));

  let current = null; // the Bundle on screen and where it came from: what "Score again" sends
  const answers = new Map(); // field -> "yes" | "no", the clinician's answers to missing yes/no inputs

  function clear() {
    replace(summary);
    replace(cards);
  }

  async function score(bundle, origin, { again = false } = {}) {
    if (!again) answers.clear();
    current = null;
    clear(); // nothing of the previous patient stays on screen while this one is scored, or if it fails
    status.className = "muted";
    status.setAttribute("role", "status");
    status.textContent = t("risk.scoring", { origin });
    const query = [...answers].map(([field, value]) => `answer=${encodeURIComponent(`${field}:${value}`)}`);
    try {
      const panel = await api(`/v1/risk/panel${query.length ? `?${query.join("&")}` : ""}`,
        { method: "POST", json: bundle });
      if (disposed) return;
      current = { bundle, origin };
      const scored = panel.topics.filter((topic) => topic.result).length;
      const total = panel.topics.length;
      replace(summary, identityFacts(panel), h("dl", { class: "facts" },
        h("div", {}, h("dt", {}, t("risk.asOf")), h("dd", {}, panel.as_of ? day(panel.as_of) : "—")),
        h("div", {}, h("dt", {}, t("risk.evaluated")), h("dd", { id: "panel-evaluated", dataset: {
          date: panel.evaluated_on ?? "" } }, panel.evaluated_on ? day(panel.evaluated_on) : "—")),
        h("div", {}, h("dt", {}, t("risk.scored")), h("dd", {}, t("risk.scoredOf", { scored, total }))),
        panel.answered.length ? h("div", {}, h("dt", {}, t("risk.answered")),
          h("dd", { id: "panel-answered" }, panel.answered.join(", "))) : null));
      const again = h("button", { type: "button", id: "score-again", class: "primary" },
        t("risk.scoreAgain"));
      again.addEventListener("click", () => {
        if (current) score(current.bundle, current.origin, { again: true });
      });
      const asks = panel.topics.some((topic) => !topic.result && topic.missing.some((m) => m.kind === "boolean"));
      replace(cards, panel.topics.map((topic) => topicCard(topic, answers)), asks ? again : null);
      const patient = panel.patient_name ?? panel.patient ?? t("risk.thePatient");
      status.textContent = t("risk.done", { patient, origin, scored, total });
      announce(status.textContent);
    } catch (error) {
      if (disposed) return;
      clear();
      status.className = "error";
      status.setAttribute("role", "alert");
      status.textContent = t("risk.failed", { origin, error: error.message });
    }
  }

  function refuse(message) { // a new request failed before it reached the server: no patient stays on screen
    current = null;
    clear();
    status.className = "error";
    status.setAttribute("role", "alert");
    status.textContent = t("risk.refused", { message });
  }

  sampleButton.addEventListener("click", async () => {
    let bundle;
    try {
      bundle = await api("/v1/risk/panel/sample");
    } catch (error) {
      refuse(t("risk.sampleFailed", { error: error.message }));
      return;
    }
    await score(bundle, t("risk.theSample"));
  });
  fileInput.addEventListener("change", async () => {
    const file = fileInput.files[0];
    if (!file) return;
    if (file.size > MAX_BUNDLE_BYTES) {
      refuse(t("risk.tooLarge", { file: file.name, size: MAX_BUNDLE_BYTES / 1024 / 1024 }));
      return;
    }
    let bundle;
    try {
      bundle = JSON.parse(await file.text());
    } catch {
      refuse(t("risk.notJson", { file: file.name }));
      fileInput.value = "";
      return;
    }
    await score(bundle, file.name);
    fileInput.value = "";
  });

  replace(main, h("section", { class: "risk-view", "aria-labelledby": "risk-heading" },
    h("div", { class: "view-head" },
      h("h1", { id: "risk-heading" }, t("risk.title")),
      h("div", { class: "toolbar" },
        h("label", { for: "bundle-input" }, t("risk.bundle")), fileInput, sampleButton)),
    h("p", { class: "nfdu", role: "note" }, h("strong", {}, t("risk.nfduStrong")), t("risk.nfdu")),
    status, summary, cards));
  return () => { disposed = true; };
}
