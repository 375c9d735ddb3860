// What a file is before anything is sent: its type, whether it may be sent, and names for pasted ones.
import { Refused } from "./net.js";
import { humanSize } from "./progress.js";

const GUESS = { png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif",
  webp: "image/webp", pdf: "application/pdf", txt: "text/plain", csv: "text/csv",
  zip: "application/zip", mp4: "video/mp4", mp3: "audio/mpeg" };
// Names some browsers and systems give to allowed types (the server folds them the same way).
const ALIASES = { "image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png",
  "application/x-zip-compressed": "application/zip", "audio/mp3": "audio/mpeg",
  "application/csv": "text/csv", "text/x-csv": "text/csv", "application/x-pdf": "application/pdf" };
const EXTENSIONS = { "image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp" };

function extensionOf(name) {
  return name.includes(".") ? name.split(".").pop().toLowerCase() : "";
}

export function contentTypeOf(file, allowed) {
  const reported = ALIASES[file.type] || file.type;
  if (allowed.has(reported)) return reported;
  // Unknown or odd types (Windows calls CSV "application/vnd.ms-excel"): go by the extension;
  // the worker checks the real content either way.
  return GUESS[extensionOf(file.name)] || reported || "application/octet-stream";
}

/** Refuse, before asking the server, what it would refuse anyway. */
export function checkFile(file, { maxBytes, allowed }) {
  if (!file.size) throw new Refused("This file is empty.", "invalid_size");
  if (file.size > maxBytes) throw new Refused(`This file is larger than the ${humanSize(maxBytes)} limit.`, "file_too_large");
  const type = contentTypeOf(file, allowed);
  if (!allowed.has(type)) throw new Refused(`Files of type ${type} are not accepted.`, "type_not_allowed");
}

// Browsers call a pasted screenshot "image.png" (or nothing): that name says nothing.
function hasUsefulName(file) {
  return Boolean(file.name) && !/^image\.[a-z]+$/i.test(file.name);
}

function stamp(when) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}-`
    + `${pad(when.getHours())}${pad(when.getMinutes())}${pad(when.getSeconds())}`;
}

/** The files in a paste (Ctrl+V), screenshots renamed like "pasted-2026-12-02-101530.png". */
export function pastedFiles(clipboard, when = new Date()) {
  if (!clipboard) return [];
  let files = Array.from(clipboard.files || []);
  if (!files.length) {
    files = Array.from(clipboard.items || [])
      .filter((item) => item.kind === "file")
      .map((item) => item.getAsFile())
      .filter(Boolean);
  }
  return files.map((file, index) => {
    if (hasUsefulName(file)) return file;
    const extension = EXTENSIONS[file.type] || extensionOf(file.name) || "bin";
    const name = `pasted-${stamp(when)}${index ? `-${index + 1}` : ""}.${extension}`;
    return new File([file], name, { type: file.type, lastModified: file.lastModified });
  });
}
