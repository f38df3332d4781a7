// The cardiologist's list: upload an ECG (POST /v1/ecg/jobs with the file's bytes; an optional patient reference,
// and sex and age for the ST and QTc limits) and their ECG reads from GET /v1/ecg/jobs, newest first with the
// critical reads (possible STEMI) above the rest, refreshed while any is still queued or running. Opening one (or
// finishing an upload) goes to the reader (#/ecg/<job>).

import { api, errorParts, isTransient } from "./api.js";
import { announce, clock, decimal, h, replace, stateText, when } from "./dom.js";
import { showError } from "./error_view.js";
import { has, t } from "./i18n.js";
import { phrasedList, phrasesText, phraseText } from "./phrases.js";

const POLL_MS = 3000;
const FINISHED = new Set(["done", "failed"]);
export const ECG_TYPES = ".dcm,.xml,.csv,.txt";

/** A rhythm label in words (the engine's six, "undetermined", and the others a reader may correct to). */
export function rhythmText(label) {
  if (!label) return "—";
  return has(`rhythm.${label}`) ? t(`rhythm.${label}`) : label.replaceAll("_", " ");
}

/** A flag code in words (a code not in the catalogues is shown as it is). */
export function flagTitle(code) {
  return has(`flag.${code}`) ? t(`flag.${code}`) : code.replaceAll("_", " ");
}

/** A lead's signal-quality problem in words (cds.pipelines.ecg.quality: flat, lead_off, noisy, ...). */
function leadProblem(code) {
  return has(`ecgQuality.${code}`) ? t(`ecgQuality.${code}`) : code.replaceAll("_", " ");
}

/** How the ECG phrases' coded values are said (phrases.js). */
export const ECG_VALUES = { problems: leadProblem, classifier: rhythmText, rhythm: rhythmText };

/** A flag's evidence without its title, in the workspace's language (`english`: the server's, when it cannot be). */
export function flagText(flag, english = flag.text) {
  return phrasesText(flag.phrases, english, ECG_VALUES);
}

/** What the rhythm call rests on, in the workspace's language. */
export function evidenceText(rhythm) {
  return phraseText(rhythm.evidence_phrase, rhythm.evidence, ECG_VALUES);
}

/** The read's warnings, in the workspace's language. */
export function warningTexts(result) {
  return phrasedList(result.warnings, result.warning_phrases, ECG_VALUES);
}

function stateCell(job) {
  return h("td", { class: "state" }, h("span", { class: `badge state-${job.state}` }, stateText(job.state)),
    job.state === "failed" && job.error ? h("span", { class: "block muted", dataset: { code: job.error } },
      errorParts(job.error).main) : null); // the reason's code, in words where the catalogues know it
}

function flagsCell(job) {
  if (job.state !== "done") return h("td", { class: "flags muted" }, "—");
  if (!job.flags.length) return h("td", { class: "flags muted" }, t("ecg.noFlags"));
  return h("td", { class: "flags" }, job.flags.map((code) => h("span", {
    class: `badge ${code === "possible_stemi" ? "critical" : "flag"}` }, flagTitle(code))));
}

function row(job) {
  const open = h("button", { type: "button", class: "open", "aria-label": t("ecg.openLabel", { file: job.file }),
    onClick: () => { window.location.hash = `#/ecg/${encodeURIComponent(job.id)}`; } }, t("common.open"));
  const rate = job.heart_rate_bpm === null ? "—" : t("unit.bpm", { value: decimal(Math.round(job.heart_rate_bpm)) });
  return h("tr", { class: job.critical ? "critical" : "", dataset: { job: job.id, state: job.state } },
    h("td", {}, job.critical ? h("span", { class: "badge critical" }, t("ecg.critical"))
      : h("span", { class: "muted" }, job.state === "done" ? t("ecg.routine") : "—")),
    h("td", {}, job.file), h("td", {}, job.subject || "—"), stateCell(job),
    h("td", { class: "rhythm" }, job.state === "done" ? rhythmText(job.rhythm) : "—"),
    h("td", { class: "numbers rate" }, rate), flagsCell(job),
    h("td", {}, h("time", { datetime: job.created_at }, when(job.created_at))),
    h("td", {}, open));
}

/** The reads as listed: critical finished reads first, then the rest, each group newest first (as sent). */
export function ordered(items) {
  return [...items.filter((job) => job.critical), ...items.filter((job) => !job.critical)];
}

/** Upload `file` for a read; answers the new job's id. */
export async function uploadEcg(file, { subject = "", sex = "", age = "" } = {}) {
  const params = new URLSearchParams({ filename: file.name });
  if (subject) params.set("subject", subject);
  if (sex) params.set("sex", sex);
  if (age !== "") params.set("age", age);
  const response = await api(`/v1/ecg/jobs?${params}`, { method: "POST", body: file,
    contentType: "application/octet-stream", raw: true });
  return (response.headers.get("Location") || "").split("/").pop();
}

function field(id, label, control) {
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}

function uploadForm(onUploaded) {
  const fileInput = h("input", { type: "file", id: "ecg-file", accept: ECG_TYPES, required: true });
  const subject = h("input", { type: "text", id: "ecg-subject", maxlength: 200, placeholder: "Patient/123",
    autocomplete: "off", spellcheck: "false" });
  const sex = h("select", { id: "ecg-sex" }, h("option", { value: "" }, t("ecg.sex.unknown")),
    h("option", { value: "female" }, t("ecg.sex.female")), h("option", { value: "male" }, t("ecg.sex.male")));
  const age = h("input", { type: "number", id: "ecg-age", min: 0, max: 130, step: 1, inputmode: "numeric" });
  const submit = h("button", { type: "submit", id: "ecg-upload", class: "primary" }, t("ecg.upload"));
  const status = h("p", { id: "ecg-upload-status", role: "status", class: "muted" });
  const form = h("form", { class: "card ecg-upload", id: "ecg-upload-form", "aria-labelledby": "ecg-upload-heading" },
    h("h2", { id: "ecg-upload-heading" }, t("ecg.uploadTitle")),
    h("div", { class: "upload-fields" },
      field("ecg-file", t("ecg.file"), fileInput),
      field("ecg-subject", t("reads.patientOptional"), subject),
      field("ecg-sex", t("ecg.sex"), sex),
      field("ecg-age", t("ecg.age"), age),
      submit),
    status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = fileInput.files[0];
    if (!file) {
      status.textContent = t("ecg.chooseFile");
      return;
    }
    submit.disabled = true;
    status.className = "muted";
    status.textContent = t("ecg.uploading", { file: file.name, size: decimal(file.size / 1024) });
    try {
      const job = await uploadEcg(file, { subject: subject.value.trim(), sex: sex.value, age: age.value.trim() });
      announce(t("reads.uploaded", { file: file.name }));
      onUploaded(job);
    } catch (error) {
      status.className = "error";
      showError(status, error, (main) => t("ecg.uploadFailed", { code: error.code ?? "error", error: main }));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

/** Render the list and the upload form into `main`; returns the function that stops its polling. */
export function renderEcg(main) {
  let timer = null;
  let stopped = false;
  let lastDocument = "";
  const tbody = h("tbody", {}, h("tr", {}, h("td", { colspan: 9, class: "muted" }, t("common.loading"))));
  const updated = h("p", { id: "ecgs-updated", class: "muted" }, t("common.loading"));

  async function refresh() {
    window.clearTimeout(timer);
    try {
      const page = await api("/v1/ecg/jobs?limit=50");
      if (stopped) return;
      const text = JSON.stringify(page.items);
      if (text !== lastDocument) {
        lastDocument = text;
        replace(tbody, page.items.length ? ordered(page.items).map(row)
          : h("tr", {}, h("td", { colspan: 9, class: "muted" }, t("ecg.none"))));
      }
      const waiting = page.items.some((job) => !FINISHED.has(job.state));
      updated.textContent = t("reads.updated", { count: page.total, time: clock(new Date()) })
        + (waiting ? t("reads.refreshing", { seconds: POLL_MS / 1000 }) : "");
      if (waiting && !stopped) timer = window.setTimeout(refresh, POLL_MS);
    } catch (error) {
      if (!stopped) updated.textContent = t("reads.refreshFailed", { error: error.message });
      if (!stopped && isTransient(error)) timer = window.setTimeout(refresh, POLL_MS);
    }
  }

  replace(main, h("section", { class: "ecg-list-view", "aria-labelledby": "ecg-heading" },
    h("div", { class: "view-head" }, h("h1", { id: "ecg-heading" }, t("ecg.title"))),
    h("p", { class: "muted" }, t("ecg.intro")),
    uploadForm((job) => { window.location.hash = `#/ecg/${encodeURIComponent(job)}`; }),
    h("div", { class: "table-wrap" }, h("table", { id: "ecgs-table" },
      h("caption", {}, t("ecg.caption")),
      h("thead", {}, h("tr", {}, ["ecg.col.priority", "reads.col.file", "reads.col.patient", "reads.col.state",
        "ecg.col.rhythm", "ecg.col.rate", "ecg.col.flags", "reads.col.received", "reads.col.open"]
        .map((key) => h("th", { scope: "col" }, t(key))))),
      tbody)),
    updated));
  refresh();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
  };
}
