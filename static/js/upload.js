// The upload widget: files go straight to object storage through presigned URLs.
import { follow, setStatus } from "./status.js";

const root = document.getElementById("uploader");
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const apiBase = root.dataset.apiBase.replace(/\/$/, "");
const filesBase = root.dataset.filesBase.replace(/\/$/, "");
const maxBytes = Number(root.dataset.maxBytes);
const allowed = new Set(root.dataset.allowedTypes.split(","));
const list = root.querySelector('[data-role="transfers"]');
const PART_BATCH = 20;

const GUESS = { png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif",
  webp: "image/webp", pdf: "application/pdf", txt: "text/plain", csv: "text/csv",
  zip: "application/zip", mp4: "video/mp4", mp3: "audio/mpeg" };
// Names some browsers and systems give to allowed types (the server folds them the same way).
const ALIASES = { "image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png",
  "application/x-zip-compressed": "application/zip", "audio/mp3": "audio/mpeg",
  "application/csv": "text/csv", "text/x-csv": "text/csv", "application/x-pdf": "application/pdf" };

class Refused extends Error {
  constructor(message, code) { super(message); this.code = code; }
}

function contentTypeOf(file) {
  const reported = ALIASES[file.type] || file.type;
  if (allowed.has(reported)) return reported;
  // Unknown or odd types (Windows calls CSV "application/vnd.ms-excel"): go by the extension;
  // the worker checks the real content either way.
  const ext = file.name.includes(".") ? file.name.split(".").pop().toLowerCase() : "";
  return GUESS[ext] || reported || "application/octet-stream";
}

function humanSize(bytes) {
  const units = ["bytes", "KB", "MB", "GB"];
  let i = 0;
  let value = bytes;
  while (value >= 1024 && i < units.length - 1) { value /= 1024; i += 1; }
  return i === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[i]}`;
}

async function api(method, path, body) {
  let response;
  try {
    response = await fetch(`${apiBase}${path}`, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new Refused("The server could not be reached. Check your connection and retry.", "network");
  }
  if (response.status === 204) return null;
  let data = null;
  try { data = await response.json(); } catch (err) { data = null; }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new Refused(error.message || `The server refused the upload (${response.status}).`, error.code || String(response.status));
  }
  return data;
}

// PUT a blob with XHR so that upload progress can be shown; resolves with the ETag.
function put(url, blob, headers, onProgress, transfer) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    transfer.xhr = xhr;
    xhr.open("PUT", url);
    Object.entries(headers || {}).forEach(([name, value]) => xhr.setRequestHeader(name, value));
    xhr.upload.onprogress = (event) => { if (event.lengthComputable) onProgress(event.loaded); };
    xhr.onload = () => {
      transfer.xhr = null;
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.getResponseHeader("ETag"));
      else reject(new Refused(`Storage refused the bytes (${xhr.status}).`, "storage_refused"));
    };
    xhr.onerror = () => { transfer.xhr = null; reject(new Refused("The upload was interrupted.", "network")); };
    xhr.onabort = () => { transfer.xhr = null; reject(new Refused("Cancelled.", "cancelled")); };
    xhr.send(blob);
  });
}

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  Object.entries(attrs).forEach(([key, value]) => node.setAttribute(key, value));
  if (text) node.textContent = text;
  return node;
}

// Put a new file at the top of the listing, as the server renders it (templates/files/_row.html).
// Returns the row, or null when it could not be fetched.
async function addListingRow(uploadId) {
  const response = await fetch(`${filesBase}/${encodeURIComponent(uploadId)}/row`, { credentials: "same-origin" });
  if (!response.ok) return null;
  const holder = document.createElement("tbody");
  holder.innerHTML = (await response.text()).trim();
  const row = holder.querySelector("tr");
  if (!row) return null;
  const table = document.getElementById("files");
  table.querySelector(`tr[data-upload-id="${CSS.escape(uploadId)}"]`)?.remove();
  table.querySelector("tbody").prepend(row);
  table.hidden = false;
  document.getElementById("no-files")?.remove();
  return row;
}

class Transfer {
  constructor(file) {
    this.file = file;
    this.upload = null;
    this.xhr = null;
    this.cancelled = false;
    this.node = el("li", { class: "transfer", "data-state": "waiting" });
    this.node.appendChild(el("span", { class: "name" }, file.name));
    this.node.appendChild(el("span", { class: "size" }, humanSize(file.size)));
    this.bar = el("progress", { max: String(file.size || 1), value: "0" });
    this.node.appendChild(this.bar);
    this.message = el("span", { class: "message", "data-role": "message" });
    this.node.appendChild(this.message);
    this.cancelButton = el("button", { type: "button", class: "small" }, "Cancel");
    this.retryButton = el("button", { type: "button", class: "small" }, "Retry");
    this.retryButton.hidden = true;
    this.cancelButton.addEventListener("click", () => this.cancel());
    this.retryButton.addEventListener("click", () => this.start());
    this.node.append(this.cancelButton, this.retryButton);
    list.prepend(this.node);
  }

  state(name, text) {
    this.node.dataset.state = name;
    this.message.textContent = text;
  }

  check() {
    if (!this.file.size) throw new Refused("This file is empty.", "invalid_size");
    if (this.file.size > maxBytes) throw new Refused(`This file is larger than the ${humanSize(maxBytes)} limit.`, "file_too_large");
    const type = contentTypeOf(this.file);
    if (!allowed.has(type)) throw new Refused(`Files of type ${type} are not accepted.`, "type_not_allowed");
  }

  async start() {
    this.cancelled = false;
    this.retryButton.hidden = true;
    this.cancelButton.hidden = false;
    this.bar.value = 0;
    try {
      this.check();
      this.state("signing", "Preparing…");
      const grant = await api("POST", "", { filename: this.file.name, size: this.file.size, content_type: contentTypeOf(this.file) });
      this.upload = grant.upload;
      if (this.cancelled) throw new Refused("Cancelled.", "cancelled");
      this.state("uploading", "Uploading…");
      let body;
      if (grant.multipart) body = { parts: await this.sendParts(grant.multipart) };
      else await put(grant.url, this.file, grant.headers, (loaded) => { this.bar.value = loaded; }, this);
      this.bar.value = this.file.size;
      this.state("completing", "Finishing…");
      if (this.cancelled) throw new Refused("Cancelled.", "cancelled");
      await api("POST", `/${encodeURIComponent(this.upload.id)}/complete`, body);
      this.cancelButton.hidden = true;
      this.state("checking", "Checking the file…");
      const row = await addListingRow(this.upload.id).catch(() => null); // without it, the transfer still tells
      follow(`${apiBase}/${encodeURIComponent(this.upload.id)}`, (upload) => {
        if (row) setStatus(row, upload);
        this.onStatus(upload);
      });
    } catch (err) {
      this.fail(err);
    }
  }

  async sendParts({ part_size: partSize, part_count: partCount }) {
    const etags = [];
    const loaded = new Array(partCount + 1).fill(0);
    for (let first = 1; first <= partCount; first += PART_BATCH) {
      const numbers = [];
      for (let n = first; n < first + PART_BATCH && n <= partCount; n += 1) numbers.push(n);
      const { parts } = await api("POST", `/${encodeURIComponent(this.upload.id)}/parts`, { part_numbers: numbers });
      for (const n of numbers) {
        if (this.cancelled) throw new Refused("Cancelled.", "cancelled");
        const blob = this.file.slice((n - 1) * partSize, Math.min(n * partSize, this.file.size));
        const etag = await put(parts[String(n)], blob, {}, (bytes) => {
          loaded[n] = bytes;
          this.bar.value = loaded.reduce((a, b) => a + b, 0);
        }, this);
        if (!etag) throw new Refused("Storage did not return the part's ETag (check the bucket's CORS rules).", "storage_refused");
        etags.push({ part_number: n, etag });
      }
    }
    return etags;
  }

  onStatus(upload) {
    const labels = {
      uploaded: "Waiting for the checker…",
      scanning: "Scanning…",
      available: "Ready.",
      rejected: `Refused: ${upload.message || "the file did not pass the checks."}`,
      quarantined: "Quarantined: malware was found.",
    };
    this.state(upload.status, labels[upload.status] || upload.status);
  }

  // The running step notices (an aborted PUT, or the flag between steps) and fail() cleans up.
  cancel() {
    this.cancelled = true;
    if (this.xhr) this.xhr.abort();
  }

  fail(err) {
    const cancelled = err.code === "cancelled" || this.cancelled;
    this.state(cancelled ? "cancelled" : "failed", cancelled ? "Cancelled." : err.message);
    this.cancelButton.hidden = true;
    const retryable = cancelled || ["network", "storage_refused", "object_missing", "storage_unavailable", "unavailable", "503"].includes(err.code);
    this.retryButton.hidden = !retryable;
    if (this.upload) {
      // Abort the pending upload on the server: its row, any bytes, and the quota it reserved.
      api("DELETE", `/${encodeURIComponent(this.upload.id)}`).catch(() => {});
    }
    this.upload = null;
  }
}

function accept(files) {
  Array.from(files).forEach((file) => new Transfer(file).start());
}

const dropzone = root.querySelector('[data-role="dropzone"]');
const picker = root.querySelector('[data-role="picker"]');
picker.addEventListener("change", () => { accept(picker.files); picker.value = ""; });
["dragenter", "dragover"].forEach((type) => dropzone.addEventListener(type, (event) => {
  event.preventDefault();
  dropzone.classList.add("over");
}));
["dragleave", "drop"].forEach((type) => dropzone.addEventListener(type, (event) => {
  event.preventDefault();
  dropzone.classList.remove("over");
}));
dropzone.addEventListener("drop", (event) => accept(event.dataTransfer.files));
dropzone.addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") { event.preventDefault(); picker.click(); }
});
// Listening now: until this point a drop would have opened the file in the tab instead.
root.dataset.ready = "true";
