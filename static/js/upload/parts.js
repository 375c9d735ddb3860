// A multipart upload's parts: signed in batches ahead of need, sent several at a time, each retried.
import { Refused, isTransient, sendBytes, withRetries } from "./net.js";

/** Parts signed per request (the API takes up to 1000; URLs expire, so sign as you go). */
const SIGN_BATCH = 20;
/** A signed URL is used only while it has at least this long to live. */
const URL_MARGIN_MS = 60_000;

/** How the server cut a file into parts. */
export class PartPlan {
  constructor(size, partSize, count) {
    Object.assign(this, { size, partSize, count });
  }

  start(n) { return (n - 1) * this.partSize; }

  length(n) { return Math.min(this.partSize, this.size - this.start(n)); }

  numbers() { return Array.from({ length: this.count }, (_, i) => i + 1); }
}

/** Milliseconds a URL signed now stays usable, from the server's expires_at (a guess if the clocks disagree). */
function usableFor(expiresAt) {
  const left = Date.parse(expiresAt) - Date.now();
  return (left > 2 * URL_MARGIN_MS && left < 3_600_000 ? left : 2 * URL_MARGIN_MS) - URL_MARGIN_MS;
}

/** Presigned part URLs of one upload, fetched in batches and fetched again once they grow old. */
export class PartSigner {
  constructor(api, uploadId) {
    this.api = api;
    this.path = `/${encodeURIComponent(uploadId)}/parts`;
    this.urls = new Map(); // part -> { url, until }
    this.signing = new Map(); // part -> the request signing it
    this.waiting = new Set(); // parts still to send, in order: the next batch is taken from them
  }

  plan(order) { this.waiting = new Set(order); }

  sent(n) {
    this.waiting.delete(n);
    this.urls.delete(n);
  }

  forget(n) { this.urls.delete(n); }

  fresh(n) { return (this.urls.get(n)?.until || 0) > Date.now(); }

  async urlFor(n) {
    if (!this.fresh(n)) {
      if (!this.signing.has(n)) this.sign(this.batchFrom(n));
      await this.signing.get(n);
    }
    return this.urls.get(n).url;
  }

  batchFrom(n) {
    const batch = [n];
    for (const m of this.waiting) {
      if (batch.length >= SIGN_BATCH) break;
      if (m !== n && !this.fresh(m) && !this.signing.has(m)) batch.push(m);
    }
    return batch;
  }

  sign(numbers) {
    const request = this.api("POST", this.path, { part_numbers: numbers })
      .then(({ parts, expires_at: expiresAt }) => {
        const until = Date.now() + usableFor(expiresAt);
        numbers.forEach((m) => this.urls.set(m, { url: parts[String(m)], until }));
      })
      .finally(() => numbers.forEach((m) => this.signing.delete(m)));
    numbers.forEach((m) => this.signing.set(m, request));
  }
}

async function putPart(url, blob, options) {
  const etag = await sendBytes(url, blob, options);
  if (!etag) throw new Refused("Storage did not return the part's ETag (check the bucket's CORS rules).", "no_etag");
  return etag;
}

/** Worth another try: anything storage said (it may be busy, or the part URL expired), or a transient API failure. */
function partRetryable(err) {
  return err.code === "storage" || isTransient(err);
}

/** Sends the parts of one upload that storage does not hold yet, `parallel` at a time. */
export class PartSender {
  constructor({ api, uploadId, file, plan, parallel }) {
    Object.assign(this, { file, plan, parallel });
    this.signer = new PartSigner(api, uploadId);
  }

  /** Send every part missing from done (part -> ETag), adding each as it lands. Rejects with the first
   *  part that fails for good (the others are stopped) or with aborted() when signal aborts. */
  async send(done, { signal, onProgress, onRetry }) {
    const waiting = this.plan.numbers().filter((n) => !done.has(n));
    this.signer.plan(waiting);
    const stop = new AbortController();
    const relay = () => stop.abort();
    signal.addEventListener("abort", relay, { once: true });
    let next = 0;
    const lane = async () => {
      for (let n = waiting[next++]; n !== undefined; n = waiting[next++]) {
        done.set(n, await this.sendPart(n, { signal: stop.signal, onProgress, onRetry }));
        this.signer.sent(n);
        onProgress(n, this.plan.length(n));
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.parallel, waiting.length) }, lane));
    } catch (err) {
      stop.abort(); // the other lanes stop; the parts they finished stay in done
      throw err;
    } finally {
      signal.removeEventListener("abort", relay);
    }
  }

  /** One part, with up to five tries (1 s, 2 s, 4 s, 8 s apart); a 403 (an expired URL) is signed
   *  again once and sent again at once. Resolves with the part's ETag. */
  sendPart(n, { signal, onProgress, onRetry }) {
    const start = this.plan.start(n);
    const blob = this.file.slice(start, start + this.plan.length(n));
    const options = { signal, onProgress: (loaded) => onProgress(n, loaded) };
    let signedAgain = false;
    const attempt = async () => {
      try {
        return await putPart(await this.signer.urlFor(n), blob, options);
      } catch (err) {
        if (err.code !== "storage" || err.status !== 403 || signedAgain) throw err;
        signedAgain = true;
        this.signer.forget(n);
        return putPart(await this.signer.urlFor(n), blob, options);
      }
    };
    return withRetries(attempt, { signal, retryable: partRetryable, onRetry: (err, delay) => onRetry(n, err, delay) });
  }
}
