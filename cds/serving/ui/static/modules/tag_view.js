// The DICOM tag view: the displayed instance's attributes (tag, keyword, VR, value) from cds's own WADO-RS metadata,
// in a dialog with a filter box. Sequences are summarised (their items' attributes follow, indented); bulk data
// (Pixel Data, overlays, anything over the server's inline limit) is shown as its length, never its bytes: Pixel
// Data's as WADO-RS serves it (uncompressed, from the image's size), other bulk data's when the attributes state it.
// Keywords come from the server's data dictionary (/v1/dicom-dictionary); private tags have none.

import { api } from "./api.js";
import { h } from "./dom.js";
import { number, t } from "./i18n.js";

const MAX_DEPTH = 3; // sequence items nested deeper are summarised only
const MAX_VALUE = 160; // characters of a long value shown
const MAX_VALUES = 16; // values of a multi-valued attribute shown
const PIXEL_DATA = "7FE00010";
const keywords = new Map(); // tag -> {keyword, name}, for the page's life

const tagText = (tag) => `(${tag.slice(0, 4)},${tag.slice(4)})`;
const firstNumber = (json, tag) => Number(json?.[tag]?.Value?.[0]);

/** Bytes of pixel data as WADO-RS serves it (every frame, uncompressed); null when the image size is not stated. */
function pixelBytes(instance) {
  const [rows, columns, bits] = ["00280010", "00280011", "00280100"].map((tag) => firstNumber(instance, tag));
  const samples = firstNumber(instance, "00280002") || 1;
  const frames = firstNumber(instance, "00280008") || 1;
  if (![rows, columns, bits].every(Number.isFinite)) return null;
  return rows * columns * samples * frames * Math.ceil(bits / 8);
}

/** Bytes of an overlay plane (60xx,3000): one bit a pixel, padded to an even length. */
function overlayBytes(instance, tag) {
  const group = tag.slice(0, 4);
  const [rows, columns] = ["0010", "0011"].map((element) => firstNumber(instance, `${group}${element}`));
  const frames = firstNumber(instance, `${group}0015`) || 1;
  if (![rows, columns].every(Number.isFinite)) return null;
  return Math.ceil((rows * columns * frames) / 16) * 2;
}

function bulkText(instance, tag, attribute) {
  let bytes = null;
  if (attribute.InlineBinary !== undefined) {
    const text = String(attribute.InlineBinary);
    bytes = Math.floor((text.length * 3) / 4) - (text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0);
  } else if (tag === PIXEL_DATA) bytes = pixelBytes(instance);
  else if (/^60[0-9A-F]{2}3000$/.test(tag)) bytes = overlayBytes(instance, tag);
  return bytes === null ? t("tags.bulk") : t("tags.bytes", { count: bytes, bytes: number(bytes) });
}

function valueText(attribute) {
  const values = attribute.Value ?? [];
  const shown = values.slice(0, MAX_VALUES).map((v) => (v && typeof v === "object"
    ? [v.Alphabetic, v.Ideographic, v.Phonetic].filter(Boolean).join("=") : String(v)));
  let text = shown.join("\\");
  if (values.length > MAX_VALUES) text += ` ${t("tags.moreValues", { count: values.length - MAX_VALUES })}`;
  return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE)}…` : text;
}

/**
 * The rows of `instance` (DICOM JSON), sequences' items after their sequence: {tag, vr, value, depth, bulk}.
 * `top` is the instance the rows belong to (bulk lengths are worked out from its image attributes).
 */
export function tagRows(instance, depth = 0, top = instance) {
  const rows = [];
  for (const tag of Object.keys(instance).sort()) {
    const attribute = instance[tag] ?? {};
    const vr = attribute.vr ?? "";
    if (vr === "SQ") {
      const items = attribute.Value ?? [];
      rows.push({ tag, vr, depth, value: t("tags.items", { count: items.length }), bulk: false });
      if (depth + 1 <= MAX_DEPTH) {
        items.forEach((item, index) => {
          rows.push({ tag: "", vr: "", depth: depth + 1, value: t("tags.item", { number: index + 1 }), bulk: false,
            item: true });
          rows.push(...tagRows(item ?? {}, depth + 1, top));
        });
      }
    } else if (attribute.BulkDataURI !== undefined || attribute.InlineBinary !== undefined) {
      rows.push({ tag, vr, depth, value: bulkText(top, tag, attribute), bulk: true });
    } else {
      rows.push({ tag, vr, depth, value: valueText(attribute), bulk: false });
    }
  }
  return rows;
}

/** Fill the keyword cache for `tags` (one request for the ones not known yet; private tags have none). */
async function lookUp(tags) {
  const wanted = [...new Set(tags)].filter((tag) => tag && !keywords.has(tag) && !(parseInt(tag.slice(0, 4), 16) % 2));
  for (let start = 0; start < wanted.length; start += 900) {
    const chunk = wanted.slice(start, start + 900);
    const found = await api(`/v1/dicom-dictionary?tags=${chunk.join(",")}`);
    for (const tag of chunk) keywords.set(tag, found[tag] ?? null);
  }
}

/** The instance's DICOM JSON (WADO-RS metadata of the instance). */
async function instanceJson(studyUid, seriesUid, sopUid) {
  const path = [studyUid, seriesUid, sopUid].map(encodeURIComponent);
  const [instance] = await api(`/dicomweb/studies/${path[0]}/series/${path[1]}/instances/${path[2]}/metadata`,
    { headers: { Accept: "application/dicom+json" } });
  return instance ?? {};
}

function keywordOf(tag) {
  if (!tag) return "";
  if (parseInt(tag.slice(0, 4), 16) % 2) return t("tags.private");
  return keywords.get(tag)?.keyword ?? "";
}

/**
 * Open the tag view of instance `sopUid` (series `seriesUid` of study `studyUid`) as a modal dialog over the
 * page; `onClose()` when it is closed (Escape, the close button). Answers the dialog's close function.
 */
export function openTagView({ studyUid, seriesUid, sopUid }, onClose = () => {}) {
  const status = h("p", { class: "muted", role: "status", id: "tag-count" }, t("tags.loading"));
  const filter = h("input", { type: "search", id: "tag-filter", autocomplete: "off", spellcheck: "false",
    placeholder: t("tags.filterHint") });
  const body = h("tbody", {});
  const table = h("table", { class: "tag-table", id: "tag-table" }, h("thead", {}, h("tr", {},
    ["tag", "keyword", "vr", "value"].map((c) => h("th", { scope: "col" }, t(`tags.col.${c}`))))), body);
  const closeButton = h("button", { type: "button", class: "close", id: "tag-close" }, t("tags.close"));
  const dialog = h("dialog", { class: "tag-view", id: "tag-view", "aria-labelledby": "tag-heading" },
    h("div", { class: "tag-head" }, h("h2", { id: "tag-heading" }, t("tags.title")), closeButton),
    h("p", { class: "muted tag-instance", title: sopUid }, t("tags.instance", { sop: sopUid })),
    h("div", { class: "field" }, h("label", { for: "tag-filter" }, t("tags.filter")), filter), status,
    h("div", { class: "tag-scroll" }, table));
  let rows = [];
  const close = () => { if (dialog.open) dialog.close(); };
  dialog.addEventListener("close", () => { dialog.remove(); onClose(); });
  closeButton.addEventListener("click", close);

  function show() {
    const words = filter.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const matches = (row) => {
      const text = `${row.tag} ${tagText(row.tag || "")} ${keywordOf(row.tag)} ${keywords.get(row.tag)?.name ?? ""} `
        + `${row.vr} ${row.value}`;
      return words.every((w) => text.toLowerCase().includes(w));
    };
    const shown = words.length ? rows.filter((row) => !row.item && matches(row)) : rows;
    body.replaceChildren(...shown.map((row) => h("tr", { class: row.item ? "tag-item" : null,
      dataset: { tag: row.tag, depth: String(row.depth) } },
    h("td", { class: "tag-tag" }, `${"›".repeat(row.depth)}${row.depth ? " " : ""}${row.tag ? tagText(row.tag) : ""}`),
    h("td", { class: "tag-keyword", title: keywords.get(row.tag)?.name ?? null }, keywordOf(row.tag)),
    h("td", { class: "tag-vr" }, row.vr), h("td", { class: row.bulk ? "tag-value bulk" : "tag-value" }, row.value))));
    const attributes = rows.filter((row) => !row.item).length;
    status.textContent = words.length ? t("tags.shown", { count: shown.length, total: attributes })
      : t("tags.all", { count: attributes });
  }

  filter.addEventListener("input", show);
  filter.addEventListener("keydown", (event) => { // a search box would only clear itself: Escape closes the view
    if (event.key === "Escape") {
      event.preventDefault();
      close();
    }
  });
  document.body.append(dialog);
  dialog.showModal();
  filter.focus();
  instanceJson(studyUid, seriesUid, sopUid).then(async (instance) => {
    rows = tagRows(instance);
    await lookUp(rows.map((row) => row.tag)).catch(() => {}); // without keywords the tags still show
    if (dialog.isConnected) show();
  }).catch((error) => {
    status.textContent = t("tags.cannotLoad", { error: error.message });
    status.setAttribute("role", "alert");
  });
  return close;
}
