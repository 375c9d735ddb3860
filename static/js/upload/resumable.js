// Unfinished multipart uploads, remembered in localStorage so that after a reload or a crash the same
// file, chosen again, sends only the parts storage lacks. Single-PUT uploads are small: not kept.
import { el } from "./dom.js";
import { humanSize } from "./progress.js";

/** A file's identity across page loads: the browser gives no path, so name, size and modification time. */
export function fileKey(file) {
  return `${file.name}|${file.size}|${file.lastModified}`;
}

export class ResumableStore extends EventTarget {
  constructor(storageKey) {
    super();
    this.storageKey = storageKey;
  }

  read() {
    try {
      const entries = JSON.parse(localStorage.getItem(this.storageKey));
      return entries && typeof entries === "object" ? entries : {};
    } catch (err) {
      return {};
    }
  }

  write(entries) {
    try {
      if (Object.keys(entries).length) localStorage.setItem(this.storageKey, JSON.stringify(entries));
      else localStorage.removeItem(this.storageKey);
    } catch (err) {
      // Storage full or switched off: uploads still work, they just cannot resume after a reload.
    }
    this.dispatchEvent(new Event("change"));
  }

  /** [{key, id, name, size, lastModified, part_size, part_count, time}], oldest first. */
  all() {
    return Object.entries(this.read())
      .map(([key, entry]) => ({ ...entry, key }))
      .sort((a, b) => String(a.time).localeCompare(String(b.time)));
  }

  find(file) {
    return this.read()[fileKey(file)] || null;
  }

  remember(file, { id, partSize, partCount }) {
    const entries = this.read();
    entries[fileKey(file)] = { id, name: file.name, size: file.size, lastModified: file.lastModified,
      part_size: partSize, part_count: partCount, time: new Date().toISOString() };
    this.write(entries);
  }

  forget(file) { this.forgetKey(fileKey(file)); }

  forgetKey(key) {
    const entries = this.read();
    if (!(key in entries)) return;
    delete entries[key];
    this.write(entries);
  }
}

/** "2 uploads can be resumed: choose the same files again to continue", with the names and a way
 *  to discard each. Lists what was unfinished when the page loaded, until it finishes or is discarded. */
export class ResumableNotice {
  constructor(node, store, api) {
    Object.assign(this, { node, store, api });
    this.keys = new Set();
    store.addEventListener("change", () => this.render());
  }

  /** Forget what the server no longer holds pending (finished, expired, deleted), then show the rest. */
  async show() {
    const entries = this.store.all();
    await Promise.all(entries.map((entry) => this.check(entry)));
    this.keys = new Set(this.store.all().map((entry) => entry.key));
    this.render();
  }

  async check(entry) {
    try {
      const { upload } = await this.api("GET", `/${encodeURIComponent(entry.id)}`);
      if (upload.status !== "pending") this.store.forgetKey(entry.key);
    } catch (err) {
      if (err.status === 404) this.store.forgetKey(entry.key); // other failures: ask again next time
    }
  }

  render() {
    const entries = this.store.all().filter((entry) => this.keys.has(entry.key));
    this.node.hidden = !entries.length;
    this.node.replaceChildren();
    if (!entries.length) return;
    const many = entries.length > 1;
    this.node.append(el("p", {}, `${entries.length} ${many ? "uploads" : "upload"} can be resumed: `
      + `choose the same ${many ? "files" : "file"} again to continue.`));
    const list = el("ul", { "data-role": "resumable-list" });
    for (const entry of entries) {
      const item = el("li", { "data-key": entry.key });
      const discard = el("button", { type: "button", class: "small" }, "Discard");
      discard.addEventListener("click", () => this.discard(entry, discard));
      item.append(el("span", { class: "name" }, entry.name), ` (${humanSize(entry.size)}) `, discard);
      list.append(item);
    }
    this.node.append(list);
  }

  /** Abort the pending upload on the server (its parts and reserved quota go), then forget it. */
  async discard(entry, button) {
    button.disabled = true;
    try {
      await this.api("DELETE", `/${encodeURIComponent(entry.id)}`);
    } catch (err) {
      if (err.status !== 404) { button.disabled = false; return; }
    }
    this.store.forgetKey(entry.key);
  }
}
