// STOW-RS from the browser: the selected files as one multipart/related request, each file one
// application/dicom part. The files are not read into JavaScript: the Blob references them and the browser streams
// them into the request.

import { codeText } from "./api.js";
import { t } from "./i18n.js";

function randomBoundary() {
  const bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  return `cds-ui-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** {body: Blob, contentType} of a STOW-RS request holding `files` (File objects). */
export function stowRequest(files) {
  const boundary = randomBoundary();
  const parts = [];
  for (const file of files) {
    parts.push(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`, file, "\r\n");
  }
  parts.push(`--${boundary}--\r\n`);
  return {
    body: new Blob(parts),
    contentType: `multipart/related; type="application/dicom"; boundary=${boundary}`,
  };
}

const REFERENCED = "00081199"; // ReferencedSOPSequence
const FAILED = "00081198"; // FailedSOPSequence
const ERROR_COMMENT = "00000902";

/**
 * Counts of stored and failed instances from a STOW-RS DICOM JSON answer, the failures' reason codes (cds writes
 * its refusal code, e.g. truncated_file, as each failure's Error Comment), and the reasons in the workspace's
 * language (a code the catalogues do not know as it is).
 */
export function stowSummary(document) {
  const stored = document?.[REFERENCED]?.Value?.length ?? 0;
  const failed = document?.[FAILED]?.Value ?? [];
  const codes = failed.map((item) => item?.[ERROR_COMMENT]?.Value?.[0] ?? "");
  const reasons = codes.map((code) => (code ? codeText(code) ?? code : t("stow.unknownReason")));
  return { stored, failed: failed.length, codes, reasons };
}
