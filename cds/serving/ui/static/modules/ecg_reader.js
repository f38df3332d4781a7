// One ECG read: the job's state until it is done, then the twelve leads on ECG paper with the lead II rhythm strip
// and its calipers (ecg_paper.js), a red banner for a critical flag, the rhythm
// (rules and the model's probabilities), the flags, the measurements, ST levels and warnings. Each item is accepted,
// corrected (a number; the rhythm from the allowed labels) or, for a flag, rejected: POST .../reviews, then the
// history (GET .../reviews) is read again. A refusal from the server is shown with its code. The printout (PNG, PDF)
// and the FHIR report are downloaded with the session's credential. Flags, the rhythm's evidence and warnings are
// said from their phrases (phrases.js), the model's intended use as /v1/models gives it in the request's language.

import { api, isTransient } from "./api.js";
import { announce, decimal, h, replace, when } from "./dom.js";
import { evidenceText, flagText, flagTitle, rhythmText, warningTexts } from "./ecg.js";
import { showError } from "./error_view.js";
import { CATALOGUES, t } from "./i18n.js";
import { tracings } from "./ecg_paper.js";
import { downloadButton } from "./download.js";
import { ECG, renderSigning } from "./signing.js";
import { keepDraft } from "./drafts.js";
import { loadVerdicts, saveVerdict, staleMessage } from "./versions.js";

const POLL_MS = 1500;
/** What a reader may correct the rhythm to: cds.store.ecg_reviews.REVIEW_RHYTHMS, in its order. */
export const REVIEW_RHYTHMS = ["sinus_rhythm", "sinus_bradycardia", "sinus_tachycardia", "atrial_fibrillation",
  "atrial_flutter", "frequent_ectopy", "sinus_arrhythmia", "av_block", "junctional_rhythm", "ventricular_rhythm",
  "paced_rhythm", "other"];
/** The measurements reviewed, each with its unit (a key of the catalogues' "unit.*" and "ecgRead.unitName.*"). */
const MEASUREMENTS = [["heart_rate_bpm", "bpm"], ["rr_ms", "ms"], ["pr_ms", "ms"], ["qrs_ms", "ms"], ["qt_ms", "ms"],
  ["qtc_bazett_ms", "ms"], ["qtc_fridericia_ms", "ms"], ["qrs_axis_deg", "degrees"]];
const UNITS = Object.fromEntries(MEASUREMENTS);

/** `value` (a number or the text of one) with its unit: "72 bpm", 72 次/分, "+60°". */
function withUnit(value, unit) {
  return t(`unit.${unit}`, { value });
}

function numberText(value, unit) {
  if (value === null || value === undefined || value === "") return t("ecgRead.notMeasured");
  const rounded = Math.round(Number(value));
  return withUnit(unit === "degrees" ? `${rounded > 0 ? "+" : ""}${decimal(rounded)}` : decimal(rounded), unit);
}

/** A reviewed value in words: the rhythm's name, or the number (as the reader gave it) with its unit. */
function reviewedText(item, value) {
  if (item === "rhythm") return rhythmText(value);
  return UNITS[item] ? withUnit(value, UNITS[item]) : value;
}

function itemName(item) {
  if (item === "rhythm") return t("ecgRead.rhythm");
  return UNITS[item] ? t(`ecgRead.measure.${item}`) : flagTitle(item);
}

function fact(term, value, id) {
  return h("div", {}, h("dt", {}, term), h("dd", { id }, value));
}

/** A flag's text without its title in front (the banner states the title once, large). The server writes the text
 * in English, so the English title is what it starts with. */
function withoutTitle(flag) {
  const title = `${CATALOGUES.en[`flag.${flag.code}`] ?? flag.code.replaceAll("_", " ")}: `;
  if (!flag.text.startsWith(title)) return flag.text;
  const rest = flag.text.slice(title.length);
  return `${rest.charAt(0).toUpperCase()}${rest.slice(1)}`;
}

/** The critical flags as a banner at the top of the read. */
function criticalBanner(flags) {
  const critical = flags.filter((flag) => flag.severity === "critical");
  if (!critical.length) return null;
  return h("div", { class: "critical-banner", id: "ecg-critical", role: "alert" }, critical.map((flag) =>
    h("div", { class: "critical-flag", dataset: { code: flag.code } },
      h("p", { class: "critical-title" }, flagTitle(flag.code),
        flag.leads.length ? h("span", { class: "critical-leads" }, t("ecgRead.leads", { leads: flag.leads.join(", ") }))
          : null),
      h("p", {}, flagText(flag, withoutTitle(flag))))));
}

/** The review controls and history: the current review per item, and the POSTs. */
class Reviews {
  constructor(base, result) {
    this.base = base;
    this.result = result;
    this.rows = [];
    this.cells = {};
    this.error = h("p", { id: "review-error", class: "error", role: "alert", hidden: true });
    this.comment = h("input", { type: "text", id: "review-comment", maxlength: 4000, autocomplete: "off" });
    this.dropDraft = keepDraft(this.comment, "review-comment");
    this.history = h("tbody");
  }

  async load() {
    this.rows = await loadVerdicts(this.base, "reviews");
    this.render();
  }

  async send(item, verdict, value = "") {
    this.error.hidden = true;
    try {
      await saveVerdict(this.base, "reviews",
        { item, verdict, value: String(value), comment: this.comment.value.trim() });
      this.comment.value = "";
      this.dropDraft();
      announce(t("ecgRead.announce", { name: itemName(item), verdict: t(`ecgRead.verdict.${verdict}`) }));
      await this.load();
      return true;
    } catch (error) {
      this.error.textContent = staleMessage(error)
        ?? t("ecgRead.notStored", { name: itemName(item), code: error.code ?? "error", error: error.message });
      this.error.dataset.code = error.code ?? "";
      this.error.hidden = false;
      return false;
    }
  }

  /** The cell that shows `item`'s current review. */
  cell(item) {
    this.cells[item] = h("span", { class: "verdict", id: `review-${item}` });
    return this.cells[item];
  }

  render() {
    const current = {};
    for (const row of this.rows) current[row.item] ??= row; // newest first: the first is current
    for (const [item, cell] of Object.entries(this.cells)) {
      const row = current[item];
      cell.dataset.verdict = row?.verdict ?? "";
      const verdict = row?.verdict === "corrected" ? t("ecgRead.correctedTo", { value: reviewedText(item, row.value) })
        : t(row?.verdict === "accepted" ? "findings.accepted" : "findings.rejected");
      cell.textContent = row ? `${verdict} · ${row.actor}` : t("findings.notReviewed");
    }
    replace(this.history, this.rows.length ? this.rows.map((row) => h("tr", { dataset: { item: row.item,
      verdict: row.verdict } },
    h("td", {}, h("time", { datetime: row.created_at }, when(row.created_at))), h("td", {}, itemName(row.item)),
    h("td", {}, t(`ecgRead.verdict.${row.verdict}`)),
    h("td", { class: "numbers" }, row.ai_value ? reviewedText(row.item, row.ai_value) : "—"),
    h("td", { class: "numbers" }, row.verdict === "corrected" ? reviewedText(row.item, row.value) : "—"),
    h("td", {}, row.comment || "—"),
    h("td", {}, row.actor))) : h("tr", {}, h("td", { colspan: 7, class: "muted" }, t("ecgRead.noReview"))));
  }

  acceptButton(item, name) {
    return h("button", { type: "button", class: "review accepted", "aria-label": t("findings.acceptLabel", { name }),
      onClick: () => this.send(item, "accepted") }, t("findings.accept"));
  }

  correctForm(item, name, control) {
    const form = h("form", { class: "correct", novalidate: true }, control,
      h("button", { type: "submit", "aria-label": t("ecgRead.correctLabel", { name }) }, t("ecgRead.correct")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (await this.send(item, "corrected", control.value.trim()) && control.tagName === "INPUT") control.value = "";
    });
    return form;
  }

  measurementTable() {
    const r = this.result;
    const rhythmSelect = h("select", { id: "correct-rhythm", "aria-label": t("ecgRead.correctedRhythm") },
      REVIEW_RHYTHMS.map((label) => h("option", { value: label, selected: label === r.rhythm.label },
        rhythmText(label))));
    const rhythmName = itemName("rhythm");
    const rows = [h("tr", { dataset: { item: "rhythm" } }, h("th", { scope: "row" }, rhythmName),
      h("td", { id: "ai-rhythm" }, rhythmText(r.rhythm.label)), h("td", {}, this.cell("rhythm")),
      h("td", {}, this.acceptButton("rhythm", rhythmName)),
      h("td", {}, this.correctForm("rhythm", rhythmName, rhythmSelect)))];
    for (const [key, unit] of MEASUREMENTS) {
      const name = itemName(key);
      const input = h("input", { type: "number", id: `correct-${key}`, step: "any", inputmode: "decimal",
        "aria-label": t("ecgRead.correctedValue", { name, unit: t(`ecgRead.unitName.${unit}`) }), class: "number" });
      rows.push(h("tr", { dataset: { item: key } }, h("th", { scope: "row" }, name),
        h("td", { class: "numbers", id: `ai-${key}` }, numberText(r.measurements[key], unit)),
        h("td", {}, this.cell(key)), h("td", {}, this.acceptButton(key, name)),
        h("td", {}, this.correctForm(key, name, input))));
    }
    return h("table", { id: "ecg-measurements", class: "review-table" },
      h("caption", {}, t("ecgRead.measurementsCaption")),
      h("thead", {}, h("tr", {}, ["item", "aiValue", "review", "accept", "correct"].map((column) =>
        h("th", { scope: "col" }, t(`ecgRead.col.${column}`))))),
      h("tbody", {}, rows));
  }

  flagList() {
    const flags = this.result.flags;
    if (!flags.length) return h("p", { id: "ecg-flags", class: "muted" }, t("ecgRead.noFlags"));
    return h("ul", { id: "ecg-flags", class: "flags" }, flags.map((flag) => {
      const name = t("ecgRead.flagName", { title: flagTitle(flag.code) });
      return h("li", { class: `flag sev-${flag.severity}`, dataset: { code: flag.code } },
        h("p", {}, h("span", { class: `badge ${flag.severity === "critical" ? "critical" : "flag"}` },
          t(`ecgRead.severity.${flag.severity}`)),
          " ", h("strong", {}, flagTitle(flag.code)),
          flag.leads.length ? h("span", { class: "muted" }, ` · ${flag.leads.join(", ")}`) : null),
        h("p", { class: "flag-text" }, flagText(flag)),
        h("div", { class: "review-controls" }, this.cell(flag.code), this.acceptButton(flag.code, name),
          h("button", { type: "button", class: "review rejected", "aria-label": t("findings.rejectLabel", { name }),
            onClick: () => this.send(flag.code, "rejected") }, t("findings.reject"))));
    }));
  }

  historyTable() {
    return h("div", { class: "table-scroll" }, h("table", { id: "review-history" },
      h("caption", {}, t("ecgRead.historyCaption")),
      h("thead", {}, h("tr", {}, ["when", "item", "verdict", "aiValue", "reviewed", "comment", "by"]
        .map((column) => h("th", { scope: "col" }, t(`ecgRead.col.${column}`))))),
      this.history));
  }
}

function classifierTable(findings) {
  if (!findings.length) return h("p", { class: "muted" }, t("ecgRead.noProbabilities"));
  return h("table", { id: "ecg-classifier", class: "compact" },
    h("caption", {}, t("ecgRead.classifierCaption")),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("ecgRead.rhythm")),
      h("th", { scope: "col" }, t("ecgRead.col.probability")),
      h("th", { scope: "col", class: "bar-col" },
        h("span", { class: "visually-hidden" }, t("ecgRead.probabilityBar"))))),
    h("tbody", {}, findings.map((f) => {
      const fill = h("span", { class: "fill" });
      const mark = h("span", { class: "mark" });
      fill.style.width = `${f.probability * 100}%`;
      mark.style.left = `${(f.threshold ?? 0.5) * 100}%`;
      return h("tr", { class: f.positive ? "positive" : "", dataset: { label: f.label } },
        h("th", { scope: "row" }, rhythmText(f.label),
          f.positive ? h("span", { class: "badge positive" }, t("ecgRead.above")) : null),
        h("td", { class: "numbers" }, f.threshold === null ? decimal(f.probability, 2)
          : t("findings.versus", { probability: decimal(f.probability, 2), threshold: decimal(f.threshold, 2) })),
        h("td", {}, h("span", { class: "bar", "aria-hidden": "true" }, fill, mark)));
    })));
}

/** An ST level in mm (10 mm/mV) with its sign; 0.0 without one. */
function stText(mv) {
  const mm = Math.abs(mv * 10);
  if (Number(mm.toFixed(1)) === 0) return t("unit.mm", { value: decimal(0, 1) });
  return t("unit.mm", { value: `${mv > 0 ? "+" : "−"}${decimal(mm, 1)}` });
}

function stLevels(m, flags) {
  const flagged = new Set(flags.filter((f) => f.code === "possible_stemi").flatMap((f) => f.leads));
  const leads = Object.entries(m.st_j_mv);
  if (!leads.length) return null;
  return h("section", { class: "card ecg-card", "aria-labelledby": "st-heading" },
    h("h2", { id: "st-heading" }, t("ecgRead.stTitle")),
    h("dl", { class: "st-grid", id: "ecg-st" }, leads.map(([lead, mv]) => h("div", {
      class: flagged.has(lead) ? "st-flagged" : "" }, h("dt", {}, lead),
    h("dd", { class: "numbers" }, stText(mv),
      flagged.has(lead) ? " ▲" : "")))),
    flagged.size ? h("p", { class: "muted" }, t("ecgRead.stCutPoint")) : null);
}

/** Render the read of ECG job `jobId` into `main`; returns its cleanup. */
export function renderEcgReader(main, jobId) {
  const base = `/v1/ecg/jobs/${encodeURIComponent(jobId)}`;
  let timer = null;
  let disposed = false;
  let drawing = null;
  const state = h("p", { id: "ecg-state", role: "status" }, t("read.loading"));
  const head = (facts) => h("div", { class: "view-head" }, h("h1", { id: "ecg-read-heading" }, t("ecgRead.title")),
    h("dl", { class: "facts" }, facts), h("a", { href: "#/ecg", class: "back" }, t("ecgRead.back")));
  replace(main, h("section", { "aria-labelledby": "ecg-read-heading" }, head([]), state));

  async function show(job) {
    const result = job.result;
    const [modelName, version = ""] = result.model.split(":");
    const [detail, signals, model, signatures] = await Promise.all([api(`${base}/result.json`),
      api(`${base}/signals`),
      api(`/v1/models/${encodeURIComponent(modelName)}?version=${encodeURIComponent(version)}`).catch(() => null),
      api(`${base}/signatures`)]);
    const caveat = model === null || model.spec.not_for_diagnostic_use; // unknown model: the caveat stays on
    const reviews = new Reviews(base, result);
    await reviews.load();
    if (disposed) return;
    const source = detail.source;
    const m = result.measurements;
    drawing = tracings(signals, signals.r_peaks_s, source.duration_s);
    const outputs = new Set(result.outputs);
    const files = [["ecg-12-lead.png", t("ecgRead.printout", { format: "PNG" })],
      ["ecg-12-lead.pdf", t("ecgRead.printout", { format: "PDF" })],
      ["diagnostic-report.json", t("ecgRead.fhirReport")], ["result.json", t("ecgRead.resultJson")]]
      .filter(([name]) => outputs.has(name) || name === "result.json");
    replace(main, h("section", { class: "ecg-read-view", "aria-labelledby": "ecg-read-heading" },
      head([fact(t("read.patient"), job.subject || t("read.patientNotGiven"), "ecg-patient"),
        fact(t("read.file"), source.name),
        fact(t("ecgRead.recording"), t("ecgRead.recordingValue", { duration: t("unit.seconds",
          { value: decimal(source.duration_s, 1) }), rate: decimal(source.sampling_hz), format: source.format })),
        fact(t("read.model"), `${modelName} ${version}`, "ecg-model")]),
      criticalBanner(result.flags),
      h("p", { class: caveat ? "nfdu" : "muted", role: "note", id: "nfdu" },
        caveat ? h("strong", {}, t("viewer.nfdu")) : null, caveat ? " " : null,
        model?.intended_use ?? detail.intended_use),
      h("div", { class: "ecg-body" }, drawing.element,
        h("div", { class: "ecg-group ecg-side" },
          h("section", { class: "card ecg-card", "aria-labelledby": "rhythm-heading" },
            h("h2", { id: "rhythm-heading" }, t("ecgRead.rhythmTitle")),
            h("p", { class: "ecg-headline" }, h("span", { id: "ecg-rhythm" }, rhythmText(result.rhythm.label)),
              " · ", h("span", { id: "ecg-rate", class: "numbers" }, numberText(m.heart_rate_bpm, "bpm"))),
            h("p", { id: "rhythm-evidence" }, evidenceText(result.rhythm)),
            h("p", { class: "muted" }, t("ecgRead.beats", { count: m.beats, leads: m.leads_measured.length })),
            classifierTable(result.classifier)),
          h("section", { class: "card ecg-card", "aria-labelledby": "flags-heading" },
            h("h2", { id: "flags-heading" }, t("ecgRead.flagsTitle")), reviews.flagList(),
            result.warnings.length ? h("ul", { class: "warnings", id: "ecg-warnings",
              "aria-label": t("common.warnings") }, warningTexts(result).map((w) => h("li", {}, w))) : null)),
        h("section", { class: "card ecg-card ecg-measurements", "aria-labelledby": "measure-heading" },
          h("h2", { id: "measure-heading" }, t("ecgRead.measureTitle")),
          h("div", { class: "field" }, h("label", { for: "review-comment" }, t("ecgRead.comment")), reviews.comment),
          reviews.error, h("div", { class: "table-scroll" }, reviews.measurementTable())),
        h("div", { class: "ecg-group ecg-extra" }, stLevels(m, result.flags),
          h("section", { class: "card ecg-card", "aria-labelledby": "files-heading" },
            h("h2", { id: "files-heading" }, t("ecgRead.filesTitle")),
            h("p", { class: "muted" }, t("ecgRead.filesNote")),
            h("div", { class: "buttons", id: "ecg-files" },
              files.map(([name, text]) => downloadButton(base, name, text))))),
        h("section", { class: "card ecg-card ecg-history", "aria-labelledby": "history-heading" },
          h("h2", { id: "history-heading" }, t("ecgRead.historyTitle")), reviews.historyTable()),
        h("div", { class: "card ecg-card ecg-signing" }, renderSigning(signatures, base, ECG)))));
    reviews.render();
    main.querySelector("h1").focus({ preventScroll: true });
    const critical = result.flags.filter((f) => f.severity === "critical").map((f) => flagTitle(f.code));
    announce(t("ecgRead.announceDone", { rhythm: rhythmText(result.rhythm.label),
      critical: critical.length ? `; ${critical.join("; ")}` : "" }));
  }

  async function poll() {
    try {
      const job = await api(base);
      if (disposed) return;
      if (job.state === "done") {
        await show(job);
        return;
      }
      if (job.state === "failed") {
        state.className = "error";
        showError(state, job.error, (main) => t("read.failed", { error: main }));
        return;
      }
      state.textContent = t(job.state === "queued" ? "read.queued" : "ecgRead.running");
      timer = window.setTimeout(poll, POLL_MS);
    } catch (error) {
      if (!disposed) {
        state.className = "error";
        showError(state, error, (main) => t("read.cannotShowCode", { code: error.code ?? "error", error: main }));
        if (isTransient(error)) timer = window.setTimeout(poll, POLL_MS); // the server is away: keep asking
      }
    }
  }
  poll();
  return () => {
    disposed = true;
    window.clearTimeout(timer);
    drawing?.dispose();
  };
}
