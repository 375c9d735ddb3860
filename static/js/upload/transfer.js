// One file's journey: queued -> an upload on the server (new, or resumed) -> bytes to storage ->
// complete -> the checker's verdict. Pause, Resume, Cancel and Retry act on it.
import { follow, setStatus } from "../status.js";
import { addListingRow } from "./listing.js";
import { el } from "./dom.js";
import { checkFile, contentTypeOf } from "./files.js";
import { aborted, backoff, isTransient, sendBytes, sleep, withRetries } from "./net.js";
import { PartPlan, PartSender } from "./parts.js";
import { RateMeter, SentBytes, describeRate, humanSize } from "./progress.js";

// The server's upload is gone (expired, deleted, completed elsewhere): a new one is needed.
const GONE = new Set(["not_found", "not_multipart", "upload_gone"]);
// Storage lacks or changed parts the complete call named: send what it lacks, then complete again.
const PARTS_OFF = new Set(["object_missing", "part_missing", "part_size_mismatch", "part_changed"]);
// Failures that Retry may fix; any other refusal is final and the server's upload is deleted.
const RETRYABLE = new Set(["network", "storage", "storage_unavailable", "unavailable", ...GONE, ...PARTS_OFF]);
const MOVING = new Set(["queued", "active", "paused"]);
const VERDICTS = {
  uploaded: () => "Waiting for the checker…",
  scanning: () => "Scanning…",
  available: () => "Ready.",
  rejected: (upload) => `Refused: ${upload.message || "the file did not pass the checks."}`,
  quarantined: () => "Quarantined: malware was found.",
};

function retryable(err) {
  return RETRYABLE.has(err.code) || isTransient(err);
}

export class Transfer {
  /** ctx: { api, apiBase, filesBase, maxBytes, allowed, parallelParts, queue, batch, saved } */
  constructor(file, ctx) {
    this.file = file;
    this.ctx = ctx;
    this.upload = null; // { id, plan } for parts, { id, url, headers, usableUntil } for one PUT
    this.parts = new Map(); // part number -> ETag, for the parts storage holds
    this.sender = null;
    this.sent = new SentBytes();
    this.rate = new RateMeter();
    this.controller = null; // aborts the running attempt
    this.stopping = null; // "paused" or "cancelled" while that is what the abort means
    this.phase = "new"; // for the batch: queued, active, paused, sent, failed, cancelled
    this.rateDrawn = 0;
    this.retrying = new Set(); // parts being tried again, which the message tells about
    this.build();
  }

  build() {
    const { file } = this;
    this.node = el("li", { class: "transfer", "data-state": "waiting" });
    this.bar = el("progress", { max: String(file.size || 1), value: "0", "aria-label": `Progress of ${file.name}` });
    this.message = el("span", { class: "message", "data-role": "message" });
    this.rateText = el("span", { class: "rate", "data-role": "rate", "aria-live": "off" });
    this.controls = {
      pause: el("button", { type: "button", class: "small" }, "Pause"),
      resume: el("button", { type: "button", class: "small" }, "Resume"),
      cancel: el("button", { type: "button", class: "small" }, "Cancel"),
      retry: el("button", { type: "button", class: "small" }, "Retry"),
    };
    this.controls.pause.addEventListener("click", () => this.pause());
    this.controls.resume.addEventListener("click", () => this.ctx.queue.add(this));
    this.controls.cancel.addEventListener("click", () => this.cancel());
    this.controls.retry.addEventListener("click", () => this.ctx.queue.add(this));
    this.node.append(el("span", { class: "name" }, file.name), el("span", { class: "size" }, humanSize(file.size)),
      this.bar, ...Object.values(this.controls), this.message, this.rateText);
    this.buttons();
  }

  show(state, text) {
    this.node.dataset.state = state;
    this.message.textContent = text;
  }

  /** Show only the named buttons. */
  buttons(...names) {
    Object.entries(this.controls).forEach(([name, button]) => { button.hidden = !names.includes(name); });
  }

  setPhase(phase) {
    this.phase = phase;
    if (!MOVING.has(phase) || phase === "paused") this.rateText.textContent = "";
    this.ctx.batch.update(true);
  }

  /** Check the file, then queue it; a file the server would refuse fails at once. */
  enqueue() {
    try {
      checkFile(this.file, this.ctx);
    } catch (err) {
      this.show("failed", err.message);
      return;
    }
    this.ctx.queue.add(this);
  }

  // Called by the queue when the file (re)joins it.
  queued() {
    this.setPhase("queued");
    this.ctx.batch.join(this);
    this.show("waiting", "Waiting for its turn…");
    this.buttons("cancel");
  }

  /** Called by the queue: take the file as far as the checker. Never rejects. */
  async run() {
    this.controller = new AbortController();
    this.stopping = null;
    this.retrying.clear();
    this.rate.reset();
    this.setPhase("active");
    const { signal } = this.controller;
    try {
      await this.ensureUpload(signal);
      await this.sendFile(signal);
      try {
        await this.complete();
      } catch (err) {
        if (!PARTS_OFF.has(err.code) || !this.upload.plan) throw err;
        await this.reconcile(signal); // storage lost or changed a part: send what it lacks, once
        await this.sendFile(signal);
        await this.complete();
      }
      this.controller = null;
      await this.checking();
    } catch (err) {
      this.controller = null;
      this.stopped(err);
    }
  }

  // --- the steps

  /** An upload on the server to send into: this transfer's own, one saved before a reload, or a new one. */
  async ensureUpload(signal) {
    this.show("signing", "Preparing…");
    if (!this.upload) this.adoptSaved();
    if (this.upload?.plan) {
      try {
        await this.reconcile(signal);
        return;
      } catch (err) {
        if (!GONE.has(err.code)) throw err;
        this.dropUpload(); // expired or deleted meanwhile: start afresh
      }
    } else if (this.upload) {
      if (this.upload.usableUntil > Date.now()) return;
      await this.discard(); // a single PUT URL cannot be signed again: a new upload
    }
    await this.begin(signal);
  }

  adoptSaved() {
    const saved = this.ctx.saved.find(this.file);
    if (saved) this.upload = { id: saved.id, plan: new PartPlan(this.file.size, saved.part_size, saved.part_count) };
  }

  /** Learn from storage which parts it holds with their full size: those are not sent again. */
  async reconcile(signal) {
    const path = `/${encodeURIComponent(this.upload.id)}/parts`;
    const { parts } = await withRetries(() => this.ctx.api("GET", path, undefined, { signal }),
      { tries: 3, retryable: isTransient, signal });
    const { plan } = this.upload;
    this.parts.clear();
    for (const { part_number: n, size, etag } of parts) {
      if (n >= 1 && n <= plan.count && size === plan.length(n)) {
        this.parts.set(n, etag);
        this.progress(n, size);
      }
    }
  }

  async begin(signal) {
    const grant = await this.askForUpload(signal);
    const { id } = grant.upload;
    if (grant.multipart) {
      const { part_size: partSize, part_count: partCount } = grant.multipart;
      this.upload = { id, plan: new PartPlan(this.file.size, partSize, partCount) };
      this.ctx.saved.remember(this.file, { id, partSize, partCount });
    } else {
      const lifetime = Date.parse(grant.expires_at) - Date.now();
      const usableFor = lifetime > 60_000 && lifetime <= 900_000 ? lifetime - 30_000 : 60_000; // clocks may disagree
      this.upload = { id, url: grant.url, headers: grant.headers, usableUntil: Date.now() + usableFor };
    }
    if (signal.aborted) throw aborted(); // cancelled while asking: stopped() deletes the new upload
  }

  /** POST /api/uploads, waiting (as long as it takes) while the server answers 429: too many uploads
   *  pending (a drop of hundreds of files), or presigning too fast. The request itself is not aborted:
   *  an upload the server made must be known, to be deleted. */
  async askForUpload(signal) {
    const type = contentTypeOf(this.file, this.ctx.allowed);
    const body = { filename: this.file.name, size: this.file.size, content_type: type };
    for (let waits = 1; ; waits += 1) {
      try {
        return await this.ctx.api("POST", "", body);
      } catch (err) {
        if (err.status !== 429) throw err;
        this.show("waiting", err.code === "too_many_pending" ? "Waiting for other uploads to finish…"
          : "Waiting: the server asks to slow down…");
        await sleep(err.retryAfter ? err.retryAfter * 1000 : backoff(waits, 10_000), signal);
        this.show("signing", "Preparing…");
      }
    }
  }

  async sendFile(signal) {
    const { plan } = this.upload;
    this.show("uploading", this.parts.size ? `Resuming: ${this.parts.size} of ${plan.count} parts are already uploaded.`
      : "Uploading…");
    this.buttons("pause", "cancel");
    const onRetry = (err, delay, part) => {
      this.retrying.add(part || 1);
      this.show("uploading", `${part ? `Part ${part}` : "The upload"} failed: ${err.message} `
        + `Trying again in ${Math.round(delay / 1000)} s…`);
    };
    if (plan) {
      this.sender ??= new PartSender({ api: this.ctx.api, uploadId: this.upload.id, file: this.file, plan,
        parallel: this.ctx.parallelParts });
      await this.sender.send(this.parts, { signal, onProgress: (n, loaded) => this.progress(n, loaded),
        onRetry: (n, err, delay) => onRetry(err, delay, n) });
    } else {
      await withRetries(() => this.putWhole(signal), {
        signal,
        retryable: (err) => (err.code === "storage" ? err.status !== 403 : isTransient(err)),
        onRetry: (err, delay) => onRetry(err, delay),
      });
    }
    if (!plan) this.progress(1, this.file.size);
    this.redraw();
  }

  async putWhole(signal) {
    const { url, headers } = this.upload;
    try {
      await sendBytes(url, this.file, { headers, signal, onProgress: (loaded) => this.progress(1, loaded) });
    } catch (err) {
      if (err.status === 403) this.upload.usableUntil = 0; // expired: Retry makes a new upload
      throw err;
    }
  }

  /** Tell the server the bytes are there. Not abortable: once asked, the upload is the server's. */
  async complete() {
    this.show("completing", "Finishing…");
    this.buttons();
    const { id, plan } = this.upload;
    const body = plan ? { parts: [...this.parts].sort(([a], [b]) => a - b).map(([n, etag]) => ({ part_number: n, etag })) }
      : undefined;
    await withRetries(() => this.ctx.api("POST", `/${encodeURIComponent(id)}/complete`, body),
      { tries: 3, retryable: isTransient });
    this.ctx.saved.forget(this.file);
  }

  async checking() {
    const { id } = this.upload;
    this.setPhase("sent");
    this.show("checking", "Checking the file…");
    const row = await addListingRow(this.ctx.filesBase, id).catch(() => null); // without it, the transfer still tells
    follow(`${this.ctx.apiBase}/${encodeURIComponent(id)}`, (upload) => {
      if (row) setStatus(row, upload);
      const label = VERDICTS[upload.status];
      this.show(upload.status, label ? label(upload) : upload.status);
    });
  }

  // --- progress

  /** Part `part` has `bytes` out: the bars move, only ever forward. */
  progress(part, bytes) {
    if (this.retrying.delete(part) && !this.retrying.size && this.node.dataset.state === "uploading") {
      this.show("uploading", "Uploading…"); // the part tried again is moving
    }
    if (!this.sent.record(part, bytes)) return;
    this.bar.value = this.sent.total;
    this.rate.add(this.sent.total);
    this.ctx.batch.update();
    if (performance.now() - this.rateDrawn >= 500) this.redraw();
  }

  /** Speed and time left, and the batch's summary. */
  redraw() {
    this.rateDrawn = performance.now();
    this.rateText.textContent = this.phase === "active"
      ? describeRate(this.rate.perSecond(), this.file.size - this.sent.total) : "";
    this.ctx.batch.update(true);
  }

  // --- what the buttons do, and how a run ends

  pause() {
    if (!this.controller || this.node.dataset.state !== "uploading") return;
    this.stopping = "paused";
    this.controller.abort(); // in-flight parts stop; finished ones stay in this.parts
  }

  cancel() {
    this.stopping = "cancelled";
    if (this.controller) {
      this.controller.abort(); // run() ends in stopped(), which cleans up
      return;
    }
    this.ctx.queue.remove(this);
    this.cancelled();
  }

  stopped(err) {
    if (this.stopping === "paused") this.paused();
    else if (this.stopping === "cancelled") this.cancelled();
    else this.failed(err);
  }

  paused() {
    this.setPhase("paused");
    this.show("paused", "Paused.");
    this.buttons("resume", "cancel");
  }

  cancelled() {
    this.discard(); // in the background: the state is shown at once
    this.sent.reset(); // the bytes are gone: Retry starts from nothing
    this.bar.value = 0;
    this.setPhase("cancelled");
    this.show("cancelled", "Cancelled.");
    this.buttons("retry");
  }

  /** Keep the server's upload when Retry can resume it; delete it after a refusal no retry can fix. */
  failed(err) {
    if (GONE.has(err.code)) this.dropUpload();
    else if (!retryable(err)) this.discard();
    this.setPhase("failed");
    this.show("failed", err.message);
    if (retryable(err)) this.buttons("retry", ...(this.upload ? ["cancel"] : []));
    else this.buttons();
  }

  /** Delete the pending upload on the server (its parts and the quota it reserved) and forget it. */
  async discard() {
    const upload = this.upload;
    this.dropUpload();
    if (upload) await this.ctx.api("DELETE", `/${encodeURIComponent(upload.id)}`).catch(() => {});
  }

  dropUpload() {
    if (this.upload?.plan) this.ctx.saved.forget(this.file);
    this.upload = null;
    this.sender = null;
    this.parts.clear();
  }
}
