// An <img> fed from API URLs. The newest request wins (older ones are aborted), object URLs are revoked once
// replaced, and the parameters of the picture on screen are written to data-* attributes once it is decoded, so
// tests and assistive code can tell which window, slice or finding is actually shown.

import { api } from "./api.js";

export class ApiImage {
  constructor(img) {
    this.img = img;
    this.controller = null;
    this.url = null;
  }

  /**
   * Show the image at `path`; `shown` (strings) is copied to the element's dataset once it is on screen. `accept`:
   * the picture type to ask for where the route negotiates one (WADO-RS rendered).
   */
  async load(path, shown = {}, { accept } = {}) {
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    let url;
    try {
      const headers = accept ? { Accept: accept } : {};
      const response = await api(path, { raw: true, signal: controller.signal, headers });
      url = URL.createObjectURL(await response.blob());
    } catch (error) {
      if (error.name === "AbortError") return false;
      throw error;
    }
    if (controller.signal.aborted) {
      URL.revokeObjectURL(url);
      return false;
    }
    const previous = this.url;
    this.url = url;
    this.img.src = url;
    if (previous) URL.revokeObjectURL(previous);
    try {
      await this.img.decode();
    } catch {
      return false; // replaced by a newer picture before this one was decoded
    }
    if (controller.signal.aborted) return false;
    Object.assign(this.img.dataset, shown);
    return true;
  }

  dispose() {
    this.controller?.abort();
    if (this.url) URL.revokeObjectURL(this.url);
    this.url = null;
  }
}
