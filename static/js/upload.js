// The upload widget: files go straight to object storage through presigned URLs, a few files at a
// time and several parts of a large file at once; unfinished large uploads resume after a reload.
// Settings come from #uploader's data attributes (templates/files/index.html).
import { pastedFiles } from "./upload/files.js";
import { createApi } from "./upload/net.js";
import { BatchProgress } from "./upload/progress.js";
import { TransferQueue } from "./upload/queue.js";
import { ResumableNotice, ResumableStore } from "./upload/resumable.js";
import { Transfer } from "./upload/transfer.js";

const root = document.getElementById("uploader");
const settings = root.dataset;
const apiBase = settings.apiBase.replace(/\/$/, "");
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const api = createApi(apiBase, csrf);
const saved = new ResumableStore(`satchel.resumable.${settings.resumeKey}`);

const ctx = {
  api,
  apiBase,
  filesBase: settings.filesBase.replace(/\/$/, ""),
  maxBytes: Number(settings.maxBytes),
  allowed: new Set(settings.allowedTypes.split(",")),
  parallelParts: Math.max(1, Number(settings.parallelParts) || 4),
  queue: new TransferQueue(Math.max(1, Number(settings.parallelFiles) || 3)),
  batch: new BatchProgress(root.querySelector('[data-role="batch"]')),
  saved,
};
const list = root.querySelector('[data-role="transfers"]');

/** Show the files at the top of the list, in the order given, and queue them. */
function accept(files) {
  const transfers = Array.from(files, (file) => new Transfer(file, ctx));
  list.prepend(...transfers.map((transfer) => transfer.node));
  transfers.forEach((transfer) => transfer.enqueue());
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
// Ctrl+V anywhere on the page uploads pasted files and screenshots; pasted text is left alone.
document.addEventListener("paste", (event) => {
  const files = pastedFiles(event.clipboardData);
  if (!files.length) return;
  event.preventDefault();
  accept(files);
});

new ResumableNotice(root.querySelector('[data-role="resumable"]'), saved, api).show();
// Listening now: until this point a drop would have opened the file in the tab instead.
root.dataset.ready = "true";
