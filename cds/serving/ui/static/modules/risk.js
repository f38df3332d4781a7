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
import { announce, h, replace } from "./dom.js";

const TOPICS = { cardiovascular: "Cardiovascular", diabetes: "Diabetes", kidney: "Kidney" };
const BANDS = { // band -> [words, severity class]
  low: ["Low", "sev-low"], borderline: ["Borderline", "sev-mid"], slightly_elevated: ["Slightly elevated", "sev-mid"],
  intermediate: ["Intermediate", "sev-high"], moderate: ["Moderate", "sev-high"], high: ["High", "sev-top"],
  very_high: ["Very high", "sev-top"],
};
const KDIGO = { // GFR category -> [words, severity class] (KDIGO 2012)
  G1: ["normal or high", "sev-low"], G2: ["mildly decreased", "sev-low"], G3a: ["mildly to moderately decreased",
    "sev-mid"], G3b: ["moderately to severely decreased", "sev-high"], G4: ["severely decreased", "sev-top"],
  G5: ["kidney failure", "sev-top"],
};
const UNITS = { a: "years", "mm[Hg]": "mmHg", "mL/min/{1.73_m2}": "mL/min/1.73 m²", "kg/m2": "kg/m²" };
const MAX_BUNDLE_BYTES = 5 * 1024 * 1024;

function unitText(unit) {
  return unit === "1" ? "" : (UNITS[unit] ?? unit);
}

function valueText(input) {
  const { value } = input;
  if (value === null || value === undefined) return "—";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "number") {
    const shown = Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
    return `${shown}${unitText(input.unit) ? ` ${unitText(input.unit)}` : ""}`;
  }
  return String(value).replaceAll("_", " ");
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
    const words = Math.abs(percent) < 0.05 ? "no change"
      : `${percent > 0 ? "raises" : "lowers"} it by ${Math.abs(percent).toFixed(1)} %`;
    return { effect: Math.log(contribution), text: `×${contribution.toFixed(3)}`, words };
  }
  const points = isProbability(result) ? 100 * contribution : contribution;
  const unit = isProbability(result) ? " percentage points" : "";
  const size = Math.abs(points) < 0.005 ? "0.00" : Math.abs(points).toFixed(2);
  const sign = points > 0 && size !== "0.00" ? "+" : points < 0 && size !== "0.00" ? "−" : "±";
  const words = size === "0.00" ? "no change" : `${points > 0 ? "raises" : "lowers"} it by ${size}${unit}`;
  return { effect: points, text: `${sign}${size}${isProbability(result) ? " pp" : ""}`, words };
}

function contributionCell(result, input, scale) {
  const effect = effectOf(result, input.contribution);
  if (effect === null) {
    return h("td", { class: "contribution muted" }, h("span", { title: "This input has no reference value, so "
      + "its share of the score is not separated." }, "not separated"));
  }
  const direction = effect.words === "no change" ? "none" : effect.effect > 0 ? "raises" : "lowers";
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
  const headers = ["Input (source)", "Value (date)", result ? "Contribution" : null].filter(Boolean);
  return h("table", { class: "inputs", id: `inputs-${topic.topic}` },
    h("caption", {}, result ? `Inputs; contribution: ${result.contribution_unit}` : "Inputs found so far"),
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, topic.inputs.length ? topic.inputs.map((input) => h("tr", { dataset: { field: input.field } },
      h("th", { scope: "row" }, h("span", { class: "block" }, input.description),
        h("span", { class: "muted block source" }, input.source ?? "no source resource")),
      h("td", { class: "numbers" }, h("span", { class: "block value" }, valueText(input)),
        h("span", { class: "muted block date" }, input.date ?? "undated")),
      result ? contributionCell(result, input, scale) : null))
      : h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, "None of this method's inputs were found."))));
}

function answerControl(topic, m, answers) {
  const name = `answer-${topic.topic}-${m.field}`;
  const choice = (value, label) => {
    const input = h("input", { type: "radio", name, value, id: `${name}-${value}` });
    input.checked = answers.get(m.field) === value;
    input.addEventListener("change", () => answers.set(m.field, value));
    return h("label", { for: `${name}-${value}`, class: "inline" }, input, ` ${label}`);
  };
  return h("fieldset", { class: "answer" }, h("legend", { class: "visually-hidden" }, `${m.description}: yes or no`),
    choice("yes", "Yes"), choice("no", "No"));
}

function missingList(topic, answers) {
  if (topic.not_scored === "established_ascvd") {
    return h("p", { class: "muted" }, "Primary-prevention equations were derived in people without cardiovascular "
      + "disease and are not computed; this patient is managed for secondary prevention.");
  }
  if (topic.not_scored === "known_diabetes") {
    return h("p", { class: "muted", id: `known-${topic.topic}` }, `The record shows diabetes (${topic.reason}). `
      + "Scores of new-onset diabetes are derived in people without it and are not computed; follow the patient "
      + "in the diabetes registry instead.");
  }
  if (!topic.missing.length) return h("p", { class: "muted missing-none" }, "Nothing missing: every input was found.");
  const answerable = topic.missing.filter((m) => m.kind === "boolean");
  return h("div", { class: "missing", id: `missing-${topic.topic}` },
    h("h3", {}, `Missing (${topic.missing.length})`),
    h("ul", {}, topic.missing.map((m) => h("li", { dataset: { field: m.field } },
      h("strong", {}, m.description), h("span", { class: "muted" },
        ` — ${m.field}${unitText(m.unit) ? `, in ${unitText(m.unit)}` : ", yes or no"}`),
      m.kind === "boolean" ? answerControl(topic, m, answers) : null))),
    answerable.length ? h("p", { class: "muted" }, "Answer what you know from the patient and score again; the "
      + "answer is noted on the result as yours, not the record's.") : null,
    topic.result ? null : h("p", { class: "muted" },
      "Not imputed: this topic is scored once the Bundle holds these (for example an active Condition, an "
      + "Observation with its LOINC code, or a medication with its ATC code)."));
}

const NOT_SCORED = {
  established_ascvd: ["Very high risk: established ASCVD", "sev-high"],
  known_diabetes: ["Known diabetes: onset risk not scored", "sev-none"],
  impossible_value: ["Not scored: impossible value", "sev-mid"],
  missing_fields: ["Not scored", "sev-none"],
};

const HEAT_MAP = { low: "low risk", moderate: "moderately increased risk", high: "high risk",
  very_high: "very high risk" }; // KDIGO 2012 prognosis of CKD by GFR and albuminuria category

function kidneyLabel(result) {
  const [g, a] = (result.category ?? "").split(" ");
  const gWords = KDIGO[g]?.[0] ?? "category";
  if (!a) return [`${g}: ${gWords}; A category needs a urine ACR`, KDIGO[g]?.[1] ?? "sev-mid"];
  const severity = { low: "sev-low", moderate: "sev-mid", high: "sev-high", very_high: "sev-top" }[result.band];
  return [`${g} ${a}: ${gWords}, ${HEAT_MAP[result.band] ?? "band unknown"} (KDIGO)`, severity ?? "sev-mid"];
}

function scoreBlock(topic) {
  const result = topic.result;
  if (!result) {
    const [label, severity] = NOT_SCORED[topic.not_scored] ?? NOT_SCORED.missing_fields;
    return h("div", { class: "score-block" },
      h("span", { class: `badge band ${severity}`, id: `band-${topic.topic}` }, label),
      h("p", { class: "muted not-scored-reason", id: `reason-${topic.topic}` }, topic.reason
        || `${topic.missing.length} input${topic.missing.length === 1 ? "" : "s"} missing`));
  }
  const kidney = topic.topic === "kidney" && result.category;
  const [words, severity] = kidney ? kidneyLabel(result) : result.band ? BANDS[result.band] ?? [result.band, "sev-mid"]
    : result.category ? [`${result.category}: ${KDIGO[result.category]?.[0] ?? "category"}`,
      KDIGO[result.category]?.[1] ?? "sev-mid"] : ["No band", "sev-none"];
  const label = result.band && !kidney ? `${words} risk` : words;
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
  h("h2", { id: `topic-${topic.topic}-h` }, TOPICS[topic.topic] ?? topic.topic),
  h("p", { class: "outcome muted" }, topic.outcome),
  scoreBlock(topic),
  h("dl", { class: "method" },
    h("dt", {}, "Method"), h("dd", { class: "method-title" }, `${topic.method_title}, version ${topic.method_version}`),
    h("dt", {}, "Source"), h("dd", { class: "method-source" }, topic.method_source),
    result?.population ? [h("dt", {}, "For"), h("dd", {}, result.population)] : null),
  warnings.length ? h("ul", { class: "warnings", "aria-label": "Warnings" }, warnings.map((w) => h("li", {}, w)))
    : null,
  inputsTable(topic),
  missingList(topic, answers));
}

function identityFacts(panel) {
  const fact = (label, value, id) => h("div", {}, h("dt", {}, label), h("dd", id ? { id } : {}, value || "—"));
  return h("dl", { class: "facts patient-banner", id: "panel-identity", "aria-label": "Whose panel this is" },
    fact("Patient", panel.patient_name ?? "name not in the record", "panel-patient-name"),
    fact("Identifiers", panel.identifiers.length ? panel.identifiers.join(", ") : "none in the record",
      "panel-identifiers"),
    fact("Born", panel.birth_date, "panel-birth"), fact("Sex", panel.gender, "panel-gender"),
    fact("Record", panel.patient, "panel-patient"));
}

/** Render the panel view into `main`. */
export function renderRiskPanel(main) {
  let disposed = false;
  const status = h("p", { id: "panel-status", role: "status", class: "muted" },
    "Load a patient's FHIR R4 Bundle, or the sample patient.");
  const summary = h("div", { id: "panel-summary" });
  const cards = h("div", { class: "topics", id: "topics" });
  const fileInput = h("input", { type: "file", id: "bundle-input",
    accept: ".json,application/json,application/fhir+json" });
  const sampleButton = h("button", { type: "button", id: "load-sample", class: "primary" }, "Load the sample patient");

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
    status.textContent = `Scoring ${origin}…`;
    const query = [...answers].map(([field, value]) => `answer=${encodeURIComponent(`${field}:${value}`)}`);
    try {
      const panel = await api(`/v1/risk/panel${query.length ? `?${query.join("&")}` : ""}`,
        { method: "POST", json: bundle });
      if (disposed) return;
      current = { bundle, origin };
      const scored = panel.topics.filter((t) => t.result).length;
      replace(summary, identityFacts(panel), h("dl", { class: "facts" },
        h("div", {}, h("dt", {}, "Data as of"), h("dd", {}, panel.as_of ?? "—")),
        h("div", {}, h("dt", {}, "Evaluated on"), h("dd", { id: "panel-evaluated" }, panel.evaluated_on ?? "—")),
        h("div", {}, h("dt", {}, "Scored"), h("dd", {}, `${scored} of ${panel.topics.length} topics`)),
        panel.answered.length ? h("div", {}, h("dt", {}, "Answered here"),
          h("dd", { id: "panel-answered" }, panel.answered.join(", "))) : null));
      const again = h("button", { type: "button", id: "score-again", class: "primary" },
        "Score again with my answers");
      again.addEventListener("click", () => {
        if (current) score(current.bundle, current.origin, { again: true });
      });
      const asks = panel.topics.some((t) => !t.result && t.missing.some((m) => m.kind === "boolean"));
      replace(cards, panel.topics.map((topic) => topicCard(topic, answers)), asks ? again : null);
      status.textContent = `Panel for ${panel.patient_name ?? panel.patient ?? "the patient"} from ${origin}: `
        + `${scored} of ${panel.topics.length} topics scored.`;
      announce(status.textContent);
    } catch (error) {
      if (disposed) return;
      clear();
      status.className = "error";
      status.setAttribute("role", "alert");
      status.textContent = `The panel could not be computed for ${origin}: ${error.message}. `
        + "No patient is shown.";
    }
  }

  function refuse(message) { // a new request failed before it reached the server: no patient stays on screen
    current = null;
    clear();
    status.className = "error";
    status.setAttribute("role", "alert");
    status.textContent = `${message} No patient is shown.`;
  }

  sampleButton.addEventListener("click", async () => {
    let bundle;
    try {
      bundle = await api("/v1/risk/panel/sample");
    } catch (error) {
      refuse(`The sample patient could not be loaded: ${error.message}.`);
      return;
    }
    await score(bundle, "the sample patient");
  });
  fileInput.addEventListener("change", async () => {
    const file = fileInput.files[0];
    if (!file) return;
    if (file.size > MAX_BUNDLE_BYTES) {
      refuse(`${file.name} is larger than ${MAX_BUNDLE_BYTES / 1024 / 1024} MiB.`);
      return;
    }
    let bundle;
    try {
      bundle = JSON.parse(await file.text());
    } catch {
      refuse(`${file.name} is not JSON.`);
      fileInput.value = "";
      return;
    }
    await score(bundle, file.name);
    fileInput.value = "";
  });

  replace(main, h("section", { class: "risk-view", "aria-labelledby": "risk-heading" },
    h("div", { class: "view-head" },
      h("h1", { id: "risk-heading" }, "Patient risk"),
      h("div", { class: "toolbar" },
        h("label", { for: "bundle-input" }, "FHIR Bundle (JSON)"), fileInput, sampleButton)),
    h("p", { class: "nfdu", role: "note" }, h("strong", {}, "Decision support, not a diagnosis."),
      " Scores come from published equations applied to the data in the Bundle; check each input and its date."),
    status, summary, cards));
  return () => { disposed = true; };
}
