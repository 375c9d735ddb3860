// Talking to Satchel's JSON API and PUTting bytes to object storage, with retries.

/** A refusal or failure: code is the server's error code, or "network", "storage", "aborted";
 *  status is the HTTP status (0 when there was no answer). */
export class Refused extends Error {
  constructor(message, code, { status = 0, retryAfter = 0 } = {}) {
    super(message);
    this.code = code;
    this.status = status;
    this.retryAfter = retryAfter; // seconds, from a 429's Retry-After
  }
}

export function aborted() {
  return new Refused("Stopped.", "aborted");
}

/** True for failures that may go away by themselves: no answer, a busy or failing server. */
export function isTransient(err) {
  return err.code === "network" || err.status === 429 || err.status >= 500;
}

/** An api(method, path, body) function for the JSON API under base, sending the CSRF token. */
export function createApi(base, csrf) {
  return async function api(method, path, body, { signal } = {}) {
    let response;
    try {
      response = await fetch(`${base}${path}`, {
        method,
        signal,
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      if (signal?.aborted) throw aborted();
      throw new Refused("The server could not be reached. Check your connection and retry.", "network");
    }
    if (response.status === 204) return null;
    let data = null;
    try { data = await response.json(); } catch (err) { data = null; }
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new Refused(error.message || `The server refused the upload (${response.status}).`,
        error.code || String(response.status),
        { status: response.status, retryAfter: Number(response.headers.get("Retry-After")) || 0 });
    }
    return data;
  };
}

/** PUT a blob with XHR (fetch cannot report upload progress); resolves with the ETag.
 *  onProgress(bytesSent) as it goes; aborting signal aborts the request. */
export function sendBytes(url, blob, { headers = {}, onProgress = () => {}, signal } = {}) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(aborted()); return; }
    const xhr = new XMLHttpRequest();
    const stop = () => xhr.abort();
    const settle = (finish, value) => { signal?.removeEventListener("abort", stop); finish(value); };
    signal?.addEventListener("abort", stop, { once: true });
    xhr.open("PUT", url);
    Object.entries(headers).forEach(([name, value]) => xhr.setRequestHeader(name, value));
    xhr.upload.onprogress = (event) => { if (event.lengthComputable) onProgress(event.loaded); };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) settle(resolve, xhr.getResponseHeader("ETag"));
      else settle(reject, new Refused(`Storage refused the bytes (${xhr.status}).`, "storage", { status: xhr.status }));
    };
    xhr.onerror = () => settle(reject, new Refused("The upload was interrupted.", "network"));
    xhr.onabort = () => settle(reject, aborted());
    xhr.send(blob);
  });
}

/** Resolves after ms, or rejects with aborted() as soon as signal aborts. */
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(aborted()); return; }
    const wake = () => { clearTimeout(timer); reject(aborted()); };
    const timer = setTimeout(() => { signal?.removeEventListener("abort", wake); resolve(); }, ms);
    signal?.addEventListener("abort", wake, { once: true });
  });
}

/** Milliseconds to wait before try number `tries + 1`: 1 s, 2 s, 4 s ... up to cap. */
export function backoff(tries, cap = 16_000) {
  return Math.min(1000 * 2 ** (tries - 1), cap);
}

/** Call attempt() until it succeeds, at most `tries` times, waiting backoff() between tries while
 *  retryable(err) says the failure is worth another go; onRetry(err, delayMs) before each wait. */
export async function withRetries(attempt, { tries = 5, retryable = () => true, onRetry = () => {}, signal } = {}) {
  for (let made = 1; ; made += 1) {
    try {
      return await attempt();
    } catch (err) {
      if (err.code === "aborted" || made >= tries || !retryable(err)) throw err;
      const delay = backoff(made);
      onRetry(err, delay);
      await sleep(delay, signal);
    }
  }
}
