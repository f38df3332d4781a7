// An error as the views show it: what went wrong, in the workspace's language, and below it, quieter, the server's
// English detail, which names the field, file or value at fault (api.js errorParts).

import { errorParts } from "./api.js";
import { h, replace } from "./dom.js";

/**
 * Fill `element` with a sentence about `error` and the detail line. `sentence(main)` makes the sentence from what
 * the error means (e.g. t("ecg.uploadFailed", {error: main})); `error` is an ApiError or a job's error text.
 */
export function showError(element, error, sentence = (main) => main) {
  const { main, detail } = errorParts(error);
  element.dataset.code = error?.code ?? "";
  replace(element, sentence(main), detail ? h("span", { class: "block error-detail" }, detail) : null);
}
