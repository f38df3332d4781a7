// The radiologist's worklist: pre-read studies from GET /v1/worklist, the most urgent first (critical, urgent,
// routine, no finding; open referrals above all), filtered by state and modality, refreshed every few seconds (live
// updates as jobs finish), and an upload button that sends the selected DICOM files as one STOW-RS request. Urgency
// and read status are badges with words, never colour alone.

import { api } from "./api.js";
import { announce, clock, day, h, replace, shortUid, when } from "./dom.js";
import { displayName } from "./findings.js";
import { number, t } from "./i18n.js";
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

const URGENCY = { critical: "badge critical", urgent: "badge positive", routine: "badge", none: "muted" }; // badges

function urgencyText(urgency) {
  return urgency in URGENCY ? t(`worklist.urgency.${urgency}`) : urgency;
}

function stateText(state) {
  return STATES.includes(state) ? t(`worklist.stateName.${state}`) : state;
}

function drivers(item) {
  return item.urgency_findings.map((f) => `${displayName(f.label)} ${f.probability.toFixed(2)}`).join(", ");
}

function findingsText(item) {
  if (item.state === "refused" || item.state === "failed") {
    return item.refused_reasons.length ? t("worklist.refused", { reasons: item.refused_reasons.join(", ") })
      : t("worklist.failed");
  }
  if (item.state !== "done") return t("worklist.waiting");
  const parts = [];
  if (item.urgency_findings.length) parts.push(`${urgencyText(item.urgency)}: ${drivers(item)}`);
  if (item.positive_findings) {
    const ratio = item.max_ratio === null ? ""
      : t("worklist.upTo", { ratio: number(item.max_ratio, { minimumFractionDigits: 1, maximumFractionDigits: 1 }) });
    parts.push(t("worklist.positive", { count: item.positive_findings, ratio }));
  } else if (item.max_ratio !== null) {
    parts.push(t("worklist.noPositive"));
  }
  if (item.outcomes.some((o) => o.kind === "ct")) parts.push(t("worklist.ctSegmentation"));
  if (item.refused_reasons.length) parts.push(t("worklist.someRefused", { reasons: item.refused_reasons.join(", ") }));
  return parts.join("; ");
}

function deliveryNote(item) {
  const sent = item.delivery;
  if (!sent) return null;
  const total = sent.delivered + sent.waiting;
  if (!sent.waiting) {
    return h("span", { class: "delivery muted" }, t("worklist.sent", { delivered: sent.delivered, total }));
  }
  const why = sent.last_error ? ` (${sent.last_error})` : "";
  return h("span", { class: "delivery", title: t("worklist.sendingTitle") },
    t("worklist.sending", { waiting: sent.waiting, total, why }));
}

function openButtons(item) {
  if (item.state !== "done") return [];
  const patient = item.patient_id || t("worklist.unknownPatient");
  return item.outcomes.map((outcome) => {
    const what = t(outcome.kind === "ct" ? "worklist.ctSeries" : "worklist.radiograph");
    return h("button", {
      type: "button", class: "open", dataset: { key: `${itemKey(item)}/${outcome.uid}` },
      "aria-label": t("worklist.openLabel", { what, patient }),
      onClick: () => {
        window.location.hash = `#/viewer/${encodeURIComponent(item.job_id)}/${encodeURIComponent(outcome.uid)}`;
      },
    }, t(outcome.kind === "ct" ? "worklist.openCt" : "worklist.openImage"));
  });
}

const PRIORITIES = ["stat", "urgent", "routine"];

/** Who referred the study where, how urgently and why (a hub reader reads the question before the image). */
function referralNote(referral) {
  if (!referral) return null;
  const signed = referral.status === "signed" ? t("worklist.signed") : "";
  const priority = PRIORITIES.includes(referral.priority) ? t(`worklist.priority.${referral.priority}`)
    : referral.priority;
  return h("div", { class: "referral", dataset: { priority: referral.priority, status: referral.status } },
    h("span", { class: `badge referral-${referral.priority}` },
      `${priority} · ${referral.from_site} → ${referral.to_site}${signed}`),
    referral.question ? h("p", { class: "referral-question" }, referral.question) : null);
}

/** The study: date, description, accession number and priors (the UID on hover). */
function studyCell(item) {
  if (!item.study_uid) return h("td", {}, "—");
  const facts = [day(item.study_date), item.description].filter(Boolean).join(" · ");
  const priors = item.priors ? t("worklist.priors", { count: item.priors }) : t("worklist.noPrior");
  return h("td", { class: "study", title: item.study_uid },
    h("div", {}, facts || shortUid(item.study_uid)),
    h("div", { class: "muted" }, [item.accession_number ? t("worklist.accession", { number: item.accession_number })
      : "", priors]
      .filter(Boolean).join(" · ")));
}

function urgencyCell(item) {
  const read = t(item.read_by_caller ? "worklist.readByYou" : item.read ? "worklist.read" : "worklist.unread");
  return h("td", { class: "urgency" },
    h("span", { class: URGENCY[item.urgency] ?? "badge", dataset: { urgency: item.urgency } },
      urgencyText(item.urgency)), " ",
    h("span", { class: item.read ? "read muted" : "read badge", dataset: { read: String(item.read) } }, read),
    referralNote(item.referral));
}

function row(item) {
  return h("tr", {
    class: [item.critical ? "critical" : "", item.job_id === highlightedJob ? "highlight" : ""].join(" ").trim(),
    dataset: { job: item.job_id, study: item.study_uid, state: item.state, urgency: item.urgency },
  },
  urgencyCell(item),
  h("td", { class: "patient" }, item.patient_id || "—"),
  studyCell(item),
  h("td", {}, item.modalities.join(", ") || "—"),
  h("td", { class: "state" }, h("span", { class: `badge state-${item.state}` }, stateText(item.state)),
    deliveryNote(item)),
  h("td", { class: "findings" }, findingsText(item)),
  h("td", {}, h("time", { datetime: item.created_at }, when(item.created_at))),
  h("td", { class: "actions" }, openButtons(item)));
}

function select(id, label, values, current, onChange, name = (v) => v) {
  const element = h("select", { id, onChange: (event) => onChange(event.target.value) },
    h("option", { value: "" }, label), values.map((v) => h("option", { value: v, selected: v === current }, name(v))));
  return element;
}

/** Render the worklist into `main`; returns the function that stops its polling. */
export function renderWorklist(main) {
  let timer = null;
  let stopped = false;
  let lastDocument = "";
  const states = new Map();
  const tbody = h("tbody", {}, h("tr", {}, h("td", { colspan: 8, class: "muted" }, t("worklist.loading"))));
  const updated = h("p", { id: "updated", class: "muted", "aria-live": "off" }, t("worklist.loading"));
  const pageInfo = h("span", { id: "page-info", class: "muted" });
  const previous = h("button", { type: "button", id: "page-previous", disabled: true }, t("worklist.previous"));
  const next = h("button", { type: "button", id: "page-next", disabled: true }, t("worklist.next"));
  const fileInput = h("input", { type: "file", id: "upload-input", multiple: true, hidden: true,
    accept: ".dcm,application/dicom", "aria-label": t("worklist.uploadFiles") });
  const uploadButton = h("button", { type: "button", id: "upload-button", class: "primary" }, t("worklist.upload"));
  const uploadStatus = h("p", { id: "upload-status", role: "status", class: "muted" });

  function announceChanges(items) {
    for (const item of items) {
      const before = states.get(itemKey(item));
      if (before !== undefined && before !== item.state && FINISHED.has(item.state)) {
        const patient = item.patient_id || t("worklist.aStudy");
        announce(t("worklist.announce", { state: stateText(item.state), patient, findings: findingsText(item) }));
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
      : h("tr", {}, h("td", { colspan: 8, class: "muted" }, t("worklist.none"))));
    if (focusedKey) tbody.querySelector(`[data-key="${CSS.escape(focusedKey)}"]`)?.focus();
    const last = Math.min(page.offset + page.items.length, page.total);
    pageInfo.textContent = page.total ? t("worklist.range", { first: page.offset + 1, last, total: page.total })
      : t("worklist.empty");
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
      updated.textContent = t("worklist.updated", { time: clock(new Date()), seconds: POLL_MS / 1000 });
    } catch (error) {
      if (!stopped) updated.textContent = t("worklist.refreshFailed", { error: error.message });
    }
    if (!stopped) timer = window.setTimeout(refresh, POLL_MS);
  }

  async function upload() {
    const files = Array.from(fileInput.files);
    if (!files.length) return;
    uploadButton.disabled = true;
    uploadStatus.dataset.job = "";
    uploadStatus.textContent = t("worklist.uploading", { count: files.length });
    const { body, contentType } = stowRequest(files);
    try {
      const response = await api("/dicomweb/studies", { method: "POST", body, contentType, raw: true });
      const summary = stowSummary(await response.json());
      const job = (response.headers.get("Location") || "").split("/").pop();
      highlightedJob = job;
      uploadStatus.dataset.job = job;
      const refused = summary.failed
        ? t("worklist.storedRefused", { count: summary.failed, reasons: summary.reasons.join(", ") }) : "";
      uploadStatus.textContent = t("worklist.stored", { count: summary.stored, refused, job: job.slice(0, 8) });
      filters.offset = 0;
      lastDocument = "";
      refresh();
    } catch (error) {
      uploadStatus.textContent = error.status === 409
        ? t("worklist.nothingStored",
          { reasons: stowSummary(error.body).reasons.join(", ") || t("worklist.noReadable") })
        : t("worklist.uploadFailed", { error: error.message });
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
      h("h1", { id: "worklist-heading" }, t("worklist.title")),
      h("div", { class: "toolbar" },
        h("label", { for: "filter-state" }, t("worklist.state")),
        select("filter-state", t("worklist.allStates"), STATES, filters.state, onFilter("state"), stateText),
        h("label", { for: "filter-modality" }, t("worklist.modality")), select("filter-modality",
          t("worklist.allModalities"), MODALITIES, filters.modality, onFilter("modality")),
        uploadButton, fileInput)),
    uploadStatus,
    h("div", { class: "table-wrap" }, h("table", { class: "worklist", id: "worklist-table" },
      h("caption", {}, t("worklist.caption")),
      h("thead", {}, h("tr", {}, ["priority", "patient", "study", "modality", "state", "findings", "received", "open"]
        .map((column) => h("th", { scope: "col" }, t(`worklist.col.${column}`))))),
      tbody)),
    h("div", { class: "pager" }, previous, pageInfo, next, updated)));
  refresh();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
  };
}
