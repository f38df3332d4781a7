// Sentences the server writes, in the workspace's language. A result carries each sentence twice: as English text
// (for files, FHIR and an older client) and as a phrase, {code, values} (cds/results/phrase.py). A phrase whose code
// the catalogues know ("phrase.<code>") is said from them, with its values filled in; any other is shown as the
// server's English, so a sentence added on the server before the catalogues know it still reads.

import { has, t } from "./i18n.js";

/** `items` as one list in the workspace's language ("II, III" / "II、III"). */
export function listText(items) {
  return items.reduce((first, next) => t("phrase.list", { first, next }));
}

/** Whether the catalogues can say `phrase`. */
export function known(phrase) {
  return Boolean(phrase?.code) && has(`phrase.${phrase.code}`);
}

/** The phrase's values as shown: `formats` (value name -> function) turns codes into words; lists are joined. */
function shownValues(phrase, formats) {
  const values = {};
  for (const [name, value] of Object.entries(phrase.values ?? {})) {
    const format = formats[name] ?? ((item) => item);
    values[name] = Array.isArray(value) ? listText(value.map(format)) : format(value);
  }
  return values;
}

/** `phrase` in the workspace's language, else `english` (the server's text). */
export function phraseText(phrase, english, formats = {}) {
  return known(phrase) ? t(`phrase.${phrase.code}`, shownValues(phrase, formats)) : english;
}

/** Sentences `phrases` as one text, else `english` when there are none or the catalogues lack one of them. */
export function phrasesText(phrases, english, formats = {}) {
  if (!phrases?.length || !phrases.every(known)) return english;
  return phrases.map((phrase) => phraseText(phrase, "", formats))
    .reduce((first, next) => t("phrase.sentences", { first, next }));
}

/** English `texts` (warnings) with their `phrases` (one each, same order; absent in older results) as shown. */
export function phrasedList(texts, phrases, formats = {}) {
  const paired = phrases?.length === texts.length ? phrases : [];
  return texts.map((text, index) => phraseText(paired[index], text, formats));
}
