// The cardiologist's list: upload an ECG (POST /v1/ecg/jobs with the file's bytes; an optional patient reference,
// and sex and age for the ST and QTc limits) and their ECG reads from GET /v1/ecg/jobs, newest first with the
// critical reads (possible STEMI) above the rest, refreshed while any is still queued or running. Opening one (or
// finishing an upload) goes to the reader (#/ecg/<job>).

import { api, isTransient } from "./api.js";
import { announce, clock, h, replace, when } from "./dom.js";

const POLL_MS = 3000;
const FINISHED = new Set(["done", "failed"]);
export const ECG_TYPES = ".dcm,.xml,.csv,.txt";

/** The rhythm labels in words: the engine's six, "undetermined", and the others a reader may correct to. */
export const RHYTHM_TEXT = {
  sinus_rhythm: "Sinus rhythm",
  sinus_bradycardia: "Sinus bradycardia",
  sinus_tachycardia: "Sinus tachycardia",
  atrial_fibrillation: "Atrial fibrillation",
  atrial_flutter: "Atrial flutter",
  frequent_ectopy: "Frequent ectopic beats",
  undetermined: "Rhythm undetermined",
  sinus_arrhythmia: "Sinus arrhythmia",
  av_block: "AV block",
  junctional_rhythm: "Junctional rhythm",
  ventricular_rhythm: "Ventricular rhythm",
  paced_rhythm: "Paced rhythm",
  other: "Other rhythm",
};

/** Flag codes in words (a code not listed is shown as it is). */
export const FLAG_TITLES = {
  possible_stemi: "Possible STEMI — urgent review",
  qtc_prolonged: "QTc prolonged",
  atrial_fibrillation: "Atrial fibrillation",
  atrial_flutter: "Atrial flutter",
  frequent_ectopy: "Frequent ectopic beats",
  leads_not_measured: "Leads not measured",
};

export function rhythmText(label) {
  return label ? RHYTHM_TEXT[label] ?? label.replaceAll("_", " ") : "—";
}

export function flagTitle(code) {
  return FLAG_TITLES[code] ?? code.replaceAll("_", " ");
}

function stateCell(job) {
  return h("td", { class: "state" }, h("span", { class: `badge state-${job.state}` }, job.state),
    job.state === "failed" && job.error ? h("span", { class: "block muted" }, job.error) : null);
}

function flagsCell(job) {
  if (job.state !== "done") return h("td", { class: "flags muted" }, "—");
  if (!job.flags.length) return h("td", { class: "flags muted" }, "None");
  return h("td", { class: "flags" }, job.flags.map((code) => h("span", {
    class: `badge ${code === "possible_stemi" ? "critical" : "flag"}` }, flagTitle(code))));
}

function row(job) {
  const open = h("button", { type: "button", class: "open", "aria-label": `Open the ECG read of ${job.file}`,
    onClick: () => { window.location.hash = `#/ecg/${encodeURIComponent(job.id)}`; } }, "Open");
  const rate = job.heart_rate_bpm === null ? "—" : `${Math.round(job.heart_rate_bpm)} bpm`;
  return h("tr", { class: job.critical ? "critical" : "", dataset: { job: job.id, state: job.state } },
    h("td", {}, job.critical ? h("span", { class: "badge critical" }, "Critical")
      : h("span", { class: "muted" }, job.state === "done" ? "Routine" : "—")),
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
  const sex = h("select", { id: "ecg-sex" }, h("option", { value: "" }, "Unknown"),
    h("option", { value: "female" }, "Female"), h("option", { value: "male" }, "Male"));
  const age = h("input", { type: "number", id: "ecg-age", min: 0, max: 130, step: 1, inputmode: "numeric" });
  const submit = h("button", { type: "submit", id: "ecg-upload", class: "primary" }, "Upload ECG");
  const status = h("p", { id: "ecg-upload-status", role: "status", class: "muted" });
  const form = h("form", { class: "card ecg-upload", id: "ecg-upload-form", "aria-labelledby": "ecg-upload-heading" },
    h("h2", { id: "ecg-upload-heading" }, "Upload an ECG"),
    h("div", { class: "upload-fields" },
      field("ecg-file", "ECG file (DICOM, HL7 aECG XML or CSV)", fileInput),
      field("ecg-subject", "Patient (optional)", subject),
      field("ecg-sex", "Sex (for the ST and QTc limits)", sex),
      field("ecg-age", "Age in years (optional)", age),
      submit),
    status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = fileInput.files[0];
    if (!file) {
      status.textContent = "Choose an ECG file first.";
      return;
    }
    submit.disabled = true;
    status.className = "muted";
    status.textContent = `Uploading ${file.name} (${(file.size / 1024).toFixed(0)} KiB)…`;
    try {
      const job = await uploadEcg(file, { subject: subject.value.trim(), sex: sex.value, age: age.value.trim() });
      announce(`${file.name} uploaded; the read is queued.`);
      onUploaded(job);
    } catch (error) {
      status.className = "error";
      status.textContent = `Upload failed (${error.code ?? "error"}): ${error.message}`;
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
  const tbody = h("tbody", {}, h("tr", {}, h("td", { colspan: 9, class: "muted" }, "Loading…")));
  const updated = h("p", { id: "ecgs-updated", class: "muted" }, "Loading…");

  async function refresh() {
    window.clearTimeout(timer);
    try {
      const page = await api("/v1/ecg/jobs?limit=50");
      if (stopped) return;
      const text = JSON.stringify(page.items);
      if (text !== lastDocument) {
        lastDocument = text;
        replace(tbody, page.items.length ? ordered(page.items).map(row)
          : h("tr", {}, h("td", { colspan: 9, class: "muted" }, "No ECG read yet: upload one.")));
      }
      const waiting = page.items.some((job) => !FINISHED.has(job.state));
      updated.textContent = `${page.total} read${page.total === 1 ? "" : "s"}; updated ${clock(new Date())}`
        + (waiting ? `, refreshing every ${POLL_MS / 1000} s` : "");
      if (waiting && !stopped) timer = window.setTimeout(refresh, POLL_MS);
    } catch (error) {
      if (!stopped) updated.textContent = `Could not refresh (${error.message})`;
      if (!stopped && isTransient(error)) timer = window.setTimeout(refresh, POLL_MS);
    }
  }

  replace(main, h("section", { class: "ecg-list-view", "aria-labelledby": "ecg-heading" },
    h("div", { class: "view-head" }, h("h1", { id: "ecg-heading" }, "ECG reads")),
    h("p", { class: "muted" }, "Resting 12-lead ECGs are measured (rate, intervals, axis, ST levels), their "
      + "rhythm called by rules and by the rhythm model, and flagged for what must not be missed. Critical reads "
      + "come first."),
    uploadForm((job) => { window.location.hash = `#/ecg/${encodeURIComponent(job)}`; }),
    h("div", { class: "table-wrap" }, h("table", { id: "ecgs-table" },
      h("caption", {}, "Your ECG reads: critical first, then newest first"),
      h("thead", {}, h("tr", {}, ["Priority", "File", "Patient", "State", "Rhythm", "Rate", "Flags", "Received",
        "Open"].map((title) => h("th", { scope: "col" }, title)))),
      tbody)),
    updated));
  refresh();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
  };
}
