// The pathologist's list: upload a slide or tile (POST /v1/pathology/jobs with the file's bytes; an optional
// patient reference ties it to a patient), and their recent slide reads from GET /v1/pathology/jobs, refreshed
// while any is still queued or running. Opening one (or finishing an upload) goes to the slide view.

import { api, isTransient } from "./api.js";
import { announce, clock, h, replace, when } from "./dom.js";

const POLL_MS = 3000;
const FINISHED = new Set(["done", "failed"]);
export const SLIDE_TYPES = ".tif,.tiff,.svs,.ndpi,.mrxs,.dcm,.png,.jpg,.jpeg";

/** A job's answer in words: the call, no tissue, or why it failed. */
export function resultText(job) {
  if (job.state === "failed") return `Failed: ${job.error || "unknown reason"}`;
  if (job.state !== "done") return "Waiting for the read";
  if (job.status === "no_tissue") return "No tissue found";
  const label = job.label ?? "tumour";
  return job.positive ? `${label[0].toUpperCase()}${label.slice(1)} suspected` : `No ${label} above the threshold`;
}

function row(job) {
  const open = h("button", { type: "button", class: "open", "aria-label": `Open the read of ${job.file}`,
    onClick: () => { window.location.hash = `#/pathology/${encodeURIComponent(job.id)}`; } }, "Open");
  const positive = job.state === "done" && job.positive;
  return h("tr", { class: positive ? "critical" : "", dataset: { job: job.id, state: job.state } },
    h("td", {}, job.file), h("td", {}, job.subject || "—"),
    h("td", { class: "state" }, h("span", { class: `badge state-${job.state}` }, job.state)),
    h("td", { class: "result" }, positive ? h("span", { class: "badge critical" }, resultText(job)) : resultText(job)),
    h("td", { class: "numbers" }, job.score === null ? "—" : `${job.score.toFixed(3)} vs ${job.threshold.toFixed(3)}`),
    h("td", { class: "numbers" }, job.tumour_area_fraction === null ? "—"
      : `${(100 * job.tumour_area_fraction).toFixed(1)} %`),
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
  const tbody = h("tbody", {}, h("tr", {}, h("td", { colspan: 8, class: "muted" }, "Loading…")));
  const updated = h("p", { id: "slides-updated", class: "muted" }, "Loading…");
  const subject = h("input", { type: "text", id: "slide-subject", maxlength: 200, placeholder: "Patient/123",
    autocomplete: "off", spellcheck: "false" });
  const fileInput = h("input", { type: "file", id: "slide-input", hidden: true, accept: SLIDE_TYPES,
    "aria-label": "Slide or tile to upload" });
  const uploadButton = h("button", { type: "button", id: "slide-upload", class: "primary" }, "Upload slide or tile…");
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
          : h("tr", {}, h("td", { colspan: 8, class: "muted" }, "No slide read yet: upload one.")));
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

  async function upload() {
    const file = fileInput.files[0];
    if (!file) return;
    uploadButton.disabled = true;
    status.textContent = `Uploading ${file.name} (${(file.size / 1024 / 1024).toFixed(1)} MiB)…`;
    try {
      const job = await uploadSlide(file, subject.value.trim());
      announce(`${file.name} uploaded; the read is queued.`);
      window.location.hash = `#/pathology/${encodeURIComponent(job)}`;
    } catch (error) {
      status.textContent = `Upload failed: ${error.message}`;
    } finally {
      uploadButton.disabled = false;
      fileInput.value = "";
    }
  }

  uploadButton.addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", upload);
  replace(main, h("section", { class: "pathology-view", "aria-labelledby": "pathology-heading" },
    h("div", { class: "view-head" },
      h("h1", { id: "pathology-heading" }, "Pathology"),
      h("div", { class: "toolbar" }, h("label", { for: "slide-subject" }, "Patient (optional)"), subject,
        uploadButton, fileInput)),
    h("p", { class: "muted" }, "Whole-slide images (pyramidal TIFF, SVS, NDPI, MRXS, DICOM WSI) or single tiles "
      + "(PNG, JPEG). Each is read for tumour by the pathology model; the read opens when it is done."),
    status,
    h("div", { class: "table-wrap" }, h("table", { id: "slides-table" },
      h("caption", {}, "Your recent slide reads, newest first"),
      h("thead", {}, h("tr", {}, ["File", "Patient", "State", "AI read", "Slide score vs threshold", "Tumour area",
        "Received", "Open"].map((title) => h("th", { scope: "col" }, title)))),
      tbody)),
    updated));
  refresh();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
  };
}
