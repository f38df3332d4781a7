// A button that downloads one of a read's files with the session's credential (a plain link cannot send it).

import { imageUrl } from "./api.js";
import { h } from "./dom.js";

/** A button that saves `${base}/${name}` as `name`. */
export function downloadButton(base, name, text) {
  return h("button", { type: "button", class: "download", onClick: async () => {
    const url = await imageUrl(`${base}/${name}`);
    const link = h("a", { href: url, download: name });
    document.body.append(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } }, text);
}
