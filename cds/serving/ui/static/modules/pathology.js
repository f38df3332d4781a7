// The pathologist's list: upload a slide or tile (POST /v1/pathology/jobs with the file's bytes; an optional
// patient reference ties it to a patient), and their recent slide reads from GET /v1/pathology/jobs, refreshed
// while any is still queued or running. Opening one (or finishing an upload) goes to the slide view.

import { api, errorParts, isTransient } from "./api.js";
import { announce, clock, decimal, h, replace, stateText, when } from "./dom.js";
import { showError } from "./error_view.js";
import { displayName } from "./findings.js";
import { t } from "./i18n.js";

const POLL_MS = 3000;
const FINISHED = new Set(["done", "failed"]);
export const SLIDE_TYPES = ".tif,.tiff,.svs,.ndpi,.mrxs,.dcm,.png,.jpg,.jpeg";

/** A job's answer in words: the call, no tissue, or why it failed. */
export function resultText(job) {
  if (job.state === "failed") {
    return t("pathology.failed", { error: job.error ? errorParts(job.error).main : t("pathology.unknownReason") });
  }
  if (job.state !== "done") return t("pathology.waiting");
  if (job.status === "no_tissue") return t("pathology.noTissue");
  const label = displayName(job.label ?? "tumour");
  if (!job.positive) return t("pathology.notAbove", { label });
  return t("pathology.suspected", { label: `${label[0].toUpperCase()}${label.slice(1)}` }); // first word of a sentence
}

/** A fraction (0-1) as a percentage with one decimal: "12.5 %", 12.5%. */
export function percent(fraction) {
  return t("unit.percent", { value: decimal(100 * fraction, 1) });
}

function row(job) {
  const open = h("button", { type: "button", class: "open", "aria-label": t("pathology.openLabel", { file: job.file }),
    onClick: () => { window.location.hash = `#/pathology/${encodeURIComponent(job.id)}`; } }, t("common.open"));
  const positive = job.state === "done" && job.positive;
  return h("tr", { class: positive ? "critical" : "", dataset: { job: job.id, state: job.state } },
    h("td", {}, job.file), h("td", {}, job.subject || "—"),
    h("td", { class: "state" }, h("span", { class: `badge state-${job.state}` }, stateText(job.state))),
    h("td", { class: "result" }, positive ? h("span", { class: "badge critical" }, resultText(job)) : resultText(job)),
    h("td", { class: "numbers" }, job.score === null ? "—"
      : t("pathology.versus", { score: decimal(job.score, 3), threshold: decimal(job.threshold, 3) })),
    h("td", { class: "numbers" }, job.tumour_area_fraction === null ? "—" : percent(job.tumour_area_fraction)),
    h("td", {}, h("time", { datetime: job.created_at }, when(job.created_at))),
    h("td", {}, open));
}

/** Upload `file` for a read; answers the new job's id. */
export async function uploadSlide(file, subject) {
  const params = new URLSearchParams({ filename: file.name });
  if (subject) params.set("subject", subject);
  const response = await api(`/v1/pathology/jobs?${params}`, { method: "POST", body: file,
    contentType: "application/octet-stream", raw: true });
  return (response.headers.get("Location") || "").split("/").pop();
}

/** Render the list and upload into `main`; returns the function that stops its polling. */
export function renderPathology(main) {
  let timer = null;
  let stopped = false;
  let lastDocument = "";
  const tbody = h("tbody", {}, h("tr", {}, h("td", { colspan: 8, class: "muted" }, t("common.loading"))));
  const updated = h("p", { id: "slides-updated", class: "muted" }, t("common.loading"));
  const subject = h("input", { type: "text", id: "slide-subject", maxlength: 200, placeholder: "Patient/123",
    autocomplete: "off", spellcheck: "false" });
  const fileInput = h("input", { type: "file", id: "slide-input", hidden: true, accept: SLIDE_TYPES,
    "aria-label": t("pathology.fileLabel") });
  const uploadButton = h("button", { type: "button", id: "slide-upload", class: "primary" }, t("pathology.upload"));
  const status = h("p", { id: "slide-upload-status", role: "status", class: "muted" });

  async function refresh() {
    window.clearTimeout(timer);
    try {
      const page = await api("/v1/pathology/jobs?limit=50");
      if (stopped) return;
      const text = JSON.stringify(page.items);
      if (text !== lastDocument) {
        lastDocument = text;
        replace(tbody, page.items.length ? page.items.map(row)
          : h("tr", {}, h("td", { colspan: 8, class: "muted" }, t("pathology.none"))));
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

  async function upload() {
    const file = fileInput.files[0];
    if (!file) return;
    uploadButton.disabled = true;
    status.textContent = t("pathology.uploading", { file: file.name, size: decimal(file.size / 1024 / 1024, 1) });
    try {
      const job = await uploadSlide(file, subject.value.trim());
      announce(t("reads.uploaded", { file: file.name }));
      window.location.hash = `#/pathology/${encodeURIComponent(job)}`;
    } catch (error) {
      showError(status, error, (main) => t("pathology.uploadFailed", { error: main }));
    } finally {
      uploadButton.disabled = false;
      fileInput.value = "";
    }
  }

  uploadButton.addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", upload);
  replace(main, h("section", { class: "pathology-view", "aria-labelledby": "pathology-heading" },
    h("div", { class: "view-head" },
      h("h1", { id: "pathology-heading" }, t("pathology.title")),
      h("div", { class: "toolbar" }, h("label", { for: "slide-subject" }, t("reads.patientOptional")), subject,
        uploadButton, fileInput)),
    h("p", { class: "muted" }, t("pathology.intro")),
    status,
    h("div", { class: "table-wrap" }, h("table", { id: "slides-table" },
      h("caption", {}, t("pathology.caption")),
      h("thead", {}, h("tr", {}, ["reads.col.file", "reads.col.patient", "reads.col.state", "pathology.col.read",
        "pathology.col.score", "pathology.col.area", "reads.col.received", "reads.col.open"]
        .map((key) => h("th", { scope: "col" }, t(key))))),
      tbody)),
    updated));
  refresh();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
  };
}
