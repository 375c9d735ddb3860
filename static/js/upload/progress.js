// Progress that never goes backwards, upload speed and time left, per file and for the batch.

export function humanSize(bytes) {
  const units = ["bytes", "KB", "MB", "GB"];
  let i = 0;
  let value = bytes;
  while (value >= 1024 && i < units.length - 1) { value /= 1024; i += 1; }
  return i === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[i]}`;
}

function timeLeft(seconds) {
  if (seconds < 60) return `${Math.max(1, Math.ceil(seconds))} s left`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min left`;
  const hours = Math.floor(seconds / 3600);
  return `${hours} h ${Math.round((seconds - hours * 3600) / 60)} min left`;
}

/** "3.2 MB/s, 1 min left", or "" while the speed is not known yet. */
export function describeRate(bytesPerSecond, bytesLeft) {
  if (!bytesPerSecond) return "";
  return `${humanSize(bytesPerSecond)}/s, ${timeLeft(bytesLeft / bytesPerSecond)}`;
}

/** Bytes of one file that storage has been sent, part by part. A part sent again (a retry, a resume)
 *  keeps the most it ever reached, so the total never goes backwards. */
export class SentBytes {
  constructor() { this.reset(); }

  reset() {
    this.best = new Map();
    this.total = 0;
  }

  /** Record that `bytes` of `part` went out; true if the total grew. */
  record(part, bytes) {
    const before = this.best.get(part) || 0;
    if (bytes <= before) return false;
    this.best.set(part, bytes);
    this.total += bytes - before;
    return true;
  }
}

/** Bytes per second over the last few seconds of a growing count. */
export class RateMeter {
  constructor(windowMs = 5000) {
    this.windowMs = windowMs;
    this.samples = [];
  }

  reset() { this.samples = []; }

  add(count, now = performance.now()) {
    this.samples.push([now, count]);
    while (this.samples.length > 2 && now - this.samples[1][0] > this.windowMs) this.samples.shift();
  }

  /** Bytes per second, or 0 until a second's worth of samples is in. */
  perSecond(now = performance.now()) {
    if (this.samples.length < 2) return 0;
    const [start, first] = this.samples[0];
    const last = this.samples[this.samples.length - 1][1];
    const span = now - start;
    return span < 1000 ? 0 : ((last - first) * 1000) / span;
  }
}

/** The overall <progress> of the files dropped together, with counts, speed and time left. A batch
 *  lasts while any of its files is queued, uploading or paused; files added then join it. */
export class BatchProgress {
  constructor(node) {
    this.node = node;
    this.bar = node.querySelector("progress");
    this.summary = node.querySelector('[data-role="batch-summary"]');
    this.members = new Set();
    this.rate = new RateMeter();
    this.shown = 0;
    this.lastText = 0;
  }

  open() {
    return [...this.members].some((transfer) => transfer.phase === "queued" || transfer.phase === "active"
      || transfer.phase === "paused");
  }

  join(transfer) {
    if (!this.open()) this.restart();
    this.members.add(transfer);
    this.bar.max = Math.max(1, [...this.members].reduce((sum, t) => sum + t.file.size, 0));
    this.node.hidden = false;
    this.update(true);
  }

  restart() {
    this.members.clear();
    this.rate.reset();
    this.shown = 0;
    this.bar.value = 0;
  }

  /** Recompute from the members; the bar only ever moves forward. Text at most twice a second unless forced. */
  update(force = false) {
    let settled = 0;
    let sending = 0;
    for (const transfer of this.members) {
      const moving = transfer.phase === "queued" || transfer.phase === "active" || transfer.phase === "paused";
      settled += moving ? transfer.sent.total : transfer.file.size; // sent, failed or cancelled: done with
      sending += transfer.sent.total;
    }
    if (settled > this.shown) {
      this.shown = settled;
      this.bar.value = settled;
    }
    this.rate.add(sending);
    const now = performance.now();
    if (force || now - this.lastText > 500) {
      this.lastText = now;
      this.summary.textContent = this.describe();
    }
  }

  describe() {
    const count = { sent: 0, failed: 0, cancelled: 0, paused: 0 };
    for (const transfer of this.members) if (transfer.phase in count) count[transfer.phase] += 1;
    const total = this.members.size;
    const parts = [`${count.sent} of ${total} ${total === 1 ? "file" : "files"} sent`];
    if (count.failed) parts.push(`${count.failed} failed`);
    if (count.cancelled) parts.push(`${count.cancelled} cancelled`);
    if (count.paused) parts.push(`${count.paused} paused`);
    const rate = this.open() ? describeRate(this.rate.perSecond(), Number(this.bar.max) - this.shown) : "";
    return parts.join(", ") + (rate ? ` · ${rate}` : ".");
  }
}
