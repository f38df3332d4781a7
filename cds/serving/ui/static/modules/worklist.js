// The radiologist's worklist: pre-read studies from GET /v1/worklist, the most urgent first (critical, urgent,
// routine, no finding; open referrals above all), filtered by state and modality, refreshed every few seconds (live
// updates as jobs finish), and an upload button that sends the selected DICOM files as one STOW-RS request. Urgency
// and read status are badges with words, never colour alone.

import { api } from "./api.js";
import { announce, clock, h, replace, shortUid, when } from "./dom.js";
import { stowRequest, stowSummary } from "./stow.js";

const POLL_MS = 3000;
const PAGE_SIZE = 25;
const STATES = ["queued", "running", "done", "refused", "failed"];
const MODALITIES = ["CR", "DX", "CT"];
const FINISHED = new Set(["done", "refused", "failed"]);
const filters = { state: "", modality: "", offset: 0 }; // kept while the page lives (back from the viewer)
let highlightedJob = "";

function itemKey(item) {
  return `${item.job_id}/${item.study_uid}`;
}

const URGENCY = {
  critical: { text: "Critical", badge: "badge critical" },
  urgent: { text: "Urgent", badge: "badge positive" },
  routine: { text: "Routine", badge: "badge" },
  none: { text: "No finding", badge: "muted" },
};

function drivers(item) {
  return item.urgency_findings.map((f) => `${f.label.replace(/_/g, " ")} ${f.probability.toFixed(2)}`).join(", ");
}

function findingsText(item) {
  if (item.state === "refused" || item.state === "failed") {
    return item.refused_reasons.length ? `Refused: ${item.refused_reasons.join(", ")}` : "Pre-read failed";
  }
  if (item.state !== "done") return "Waiting for the pre-read";
  const parts = [];
  if (item.urgency_findings.length) parts.push(`${URGENCY[item.urgency]?.text ?? item.urgency}: ${drivers(item)}`);
  if (item.positive_findings) {
    const ratio = item.max_ratio === null ? "" : ` · up to ${item.max_ratio.toFixed(1)}× threshold`;
    parts.push(`${item.positive_findings} positive${ratio}`);
  } else if (item.max_ratio !== null) {
    parts.push("No positive finding");
  }
  if (item.outcomes.some((o) => o.kind === "ct")) parts.push("CT segmentation");
  if (item.refused_reasons.length) parts.push(`some refused: ${item.refused_reasons.join(", ")}`);
  return parts.join("; ");
}

function deliveryNote(item) {
  const sent = item.delivery;
  if (!sent) return null;
  const total = sent.delivered + sent.waiting;
  if (!sent.waiting) return h("span", { class: "delivery muted" }, ` · results sent ${sent.delivered}/${total}`);
  const why = sent.last_error ? ` (${sent.last_error})` : "";
  return h("span", { class: "delivery", title: "Results for the PACS and the HIS still waiting; they are retried" },
    ` · sending ${sent.waiting} of ${total}${why}`);
}

function openButtons(item) {
  if (item.state !== "done") return [];
  const patient = item.patient_id || "unknown patient";
  return item.outcomes.map((outcome) => {
    const what = outcome.kind === "ct" ? "CT series" : "radiograph";
    return h("button", {
      type: "button", class: "open", dataset: { key: `${itemKey(item)}/${outcome.uid}` },
      "aria-label": `Open ${what} of ${patient}`,
      onClick: () => {
        window.location.hash = `#/viewer/${encodeURIComponent(item.job_id)}/${encodeURIComponent(outcome.uid)}`;
      },
    }, outcome.kind === "ct" ? "Open CT" : "Open image");
  });
}

const PRIORITY = { stat: "STAT", urgent: "Urgent", routine: "Routine" };

/** Who referred the study where, how urgently and why (a hub reader reads the question before the image). */
function referralNote(referral) {
  if (!referral) return null;
  const signed = referral.status === "signed" ? " · signed" : "";
  return h("div", { class: "referral", dataset: { priority: referral.priority, status: referral.status } },
    h("span", { class: `badge referral-${referral.priority}` },
      `${PRIORITY[referral.priority] ?? referral.priority} · ${referral.from_site} → ${referral.to_site}${signed}`),
    referral.question ? h("p", { class: "referral-question" }, referral.question) : null);
}

function studyDate(value) {
  return /^\d{8}$/.test(value) ? `${value.slice(0, 4)}-${value.slice(4, 6)}-${value.slice(6)}` : "";
}

/** The study: date, description, accession number and priors (the UID on hover). */
function studyCell(item) {
  if (!item.study_uid) return h("td", {}, "—");
  const facts = [studyDate(item.study_date), item.description].filter(Boolean).join(" · ");
  const priors = item.priors ? `${item.priors} prior${item.priors === 1 ? "" : "s"}` : "no prior";
  return h("td", { class: "study", title: item.study_uid },
    h("div", {}, facts || shortUid(item.study_uid)),
    h("div", { class: "muted" }, [item.accession_number ? `Acc ${item.accession_number}` : "", priors]
      .filter(Boolean).join(" · ")));
}

function urgencyCell(item) {
  const urgency = URGENCY[item.urgency] ?? { text: item.urgency, badge: "badge" };
  const read = item.read_by_caller ? "Read by you" : item.read ? "Read" : "Unread";
  return h("td", { class: "urgency" },
    h("span", { class: urgency.badge, dataset: { urgency: item.urgency } }, urgency.text), " ",
    h("span", { class: item.read ? "read muted" : "read badge", dataset: { read: String(item.read) } }, read),
    referralNote(item.referral));
}

function row(item) {
  return h("tr", {
    class: [item.critical ? "critical" : "", item.job_id === highlightedJob ? "highlight" : ""].join(" ").trim(),
    dataset: { job: item.job_id, study: item.study_uid, state: item.state, urgency: item.urgency },
  },
  urgencyCell(item),
  h("td", {}, item.patient_id || "—"),
  studyCell(item),
  h("td", {}, item.modalities.join(", ") || "—"),
  h("td", { class: "state" }, h("span", { class: `badge state-${item.state}` }, item.state), deliveryNote(item)),
  h("td", { class: "findings" }, findingsText(item)),
  h("td", {}, h("time", { datetime: item.created_at }, when(item.created_at))),
  h("td", { class: "actions" }, openButtons(item)));
}

function select(id, label, values, current, onChange) {
  const element = h("select", { id, onChange: (event) => onChange(event.target.value) },
    h("option", { value: "" }, label), values.map((v) => h("option", { value: v, selected: v === current }, v)));
  return element;
}

/** Render the worklist into `main`; returns the function that stops its polling. */
export function renderWorklist(main) {
  let timer = null;
  let stopped = false;
  let lastDocument = "";
  const states = new Map();
  const tbody = h("tbody", {}, h("tr", {}, h("td", { colspan: 8, class: "muted" }, "Loading…")));
  const updated = h("p", { id: "updated", class: "muted", "aria-live": "off" }, "Loading…");
  const pageInfo = h("span", { id: "page-info", class: "muted" });
  const previous = h("button", { type: "button", id: "page-previous", disabled: true }, "Previous page");
  const next = h("button", { type: "button", id: "page-next", disabled: true }, "Next page");
  const fileInput = h("input", { type: "file", id: "upload-input", multiple: true, hidden: true,
    accept: ".dcm,application/dicom", "aria-label": "DICOM files to upload" });
  const uploadButton = h("button", { type: "button", id: "upload-button", class: "primary" }, "Upload DICOM…");
  const uploadStatus = h("p", { id: "upload-status", role: "status", class: "muted" });

  function announceChanges(items) {
    for (const item of items) {
      const before = states.get(itemKey(item));
      if (before !== undefined && before !== item.state && FINISHED.has(item.state)) {
        announce(`Pre-read ${item.state} for ${item.patient_id || "a study"}: ${findingsText(item)}`);
      }
      states.set(itemKey(item), item.state);
    }
  }

  function show(page) {
    const text = JSON.stringify(page);
    if (text === lastDocument) return; // nothing changed: keep the DOM (and keyboard focus) as it is
    lastDocument = text;
    const focusedKey = document.activeElement?.dataset?.key;
    replace(tbody, page.items.length ? page.items.map(row)
      : h("tr", {}, h("td", { colspan: 8, class: "muted" }, "No studies match these filters.")));
    if (focusedKey) tbody.querySelector(`[data-key="${CSS.escape(focusedKey)}"]`)?.focus();
    const last = Math.min(page.offset + page.items.length, page.total);
    pageInfo.textContent = page.total ? `${page.offset + 1}–${last} of ${page.total}` : "0 studies";
    previous.disabled = page.offset === 0;
    next.disabled = last >= page.total;
  }

  async function refresh() {
    window.clearTimeout(timer);
    const params = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(filters.offset) });
    if (filters.state) params.append("state", filters.state);
    if (filters.modality) params.set("modality", filters.modality);
    try {
      const page = await api(`/v1/worklist?${params}`);
      if (stopped) return;
      announceChanges(page.items);
      show(page);
      updated.textContent = `Updated ${clock(new Date())}; refreshes every ${POLL_MS / 1000} s`;
    } catch (error) {
      if (!stopped) updated.textContent = `Could not refresh (${error.message}); retrying`;
    }
    if (!stopped) timer = window.setTimeout(refresh, POLL_MS);
  }

  async function upload() {
    const files = Array.from(fileInput.files);
    if (!files.length) return;
    uploadButton.disabled = true;
    uploadStatus.dataset.job = "";
    uploadStatus.textContent = `Uploading ${files.length} file${files.length > 1 ? "s" : ""}…`;
    const { body, contentType } = stowRequest(files);
    try {
      const response = await api("/dicomweb/studies", { method: "POST", body, contentType, raw: true });
      const summary = stowSummary(await response.json());
      const job = (response.headers.get("Location") || "").split("/").pop();
      highlightedJob = job;
      uploadStatus.dataset.job = job;
      const refused = summary.failed ? `, refused ${summary.failed} (${summary.reasons.join(", ")})` : "";
      uploadStatus.textContent = `Stored ${summary.stored} instance${summary.stored === 1 ? "" : "s"}${refused}. `
        + `Pre-read queued as job ${job.slice(0, 8)}; it appears below.`;
      filters.offset = 0;
      lastDocument = "";
      refresh();
    } catch (error) {
      uploadStatus.textContent = error.status === 409
        ? `Nothing was stored: ${stowSummary(error.body).reasons.join(", ") || "no readable DICOM"}.`
        : `Upload failed: ${error.message}`;
    } finally {
      uploadButton.disabled = false;
      fileInput.value = "";
    }
  }

  uploadButton.addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", upload);
  previous.addEventListener("click", () => { filters.offset = Math.max(0, filters.offset - PAGE_SIZE); refresh(); });
  next.addEventListener("click", () => { filters.offset += PAGE_SIZE; refresh(); });
  const onFilter = (name) => (value) => { filters[name] = value; filters.offset = 0; refresh(); };

  replace(main, h("section", { class: "worklist-view", "aria-labelledby": "worklist-heading" },
    h("div", { class: "view-head" },
      h("h1", { id: "worklist-heading" }, "Worklist"),
      h("div", { class: "toolbar" },
        h("label", { for: "filter-state" }, "State"), select("filter-state", "All states", STATES, filters.state,
          onFilter("state")),
        h("label", { for: "filter-modality" }, "Modality"), select("filter-modality", "All modalities", MODALITIES,
          filters.modality, onFilter("modality")),
        uploadButton, fileInput)),
    uploadStatus,
    h("div", { class: "table-wrap" }, h("table", { class: "worklist", id: "worklist-table" },
      h("caption", {}, "Pre-read studies: open referrals, then by urgency (critical: a confident critical AI "
        + "finding such as a pneumothorax; urgent; routine; no finding), then newest"),
      h("thead", {}, h("tr", {}, ["Priority", "Patient", "Study", "Modality", "State", "AI findings", "Received",
        "Open"].map((title) => h("th", { scope: "col" }, title)))),
      tbody)),
    h("div", { class: "pager" }, previous, pageInfo, next, updated)));
  refresh();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
  };
}
