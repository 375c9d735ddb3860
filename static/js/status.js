// Follows uploads still in flight and updates their status badges without a reload.
const FINAL = new Set(["available", "rejected", "quarantined", "expired", "removed", "deleted"]);
const POLL_MS = 1500;

export function setStatus(el, upload) {
  el.dataset.status = upload.status;
  const badge = el.querySelector('[data-role="status"]');
  if (badge) {
    badge.textContent = upload.status;
    badge.className = `badge status-${upload.status}`;
    badge.title = upload.message || "";
  }
  const download = el.querySelector('[data-role="download"]');
  if (download) download.hidden = upload.status !== "available";
  const type = el.querySelector('[data-role="type"]');
  if (type && upload.detected_type) type.textContent = upload.detected_type;
}

// Poll url until the upload reaches a final status; onChange(upload) on every answer.
export function follow(url, onChange) {
  let stopped = false;
  async function tick() {
    if (stopped) return;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.status === 404) return;
      if (response.ok) {
        const { upload } = await response.json();
        onChange(upload);
        if (FINAL.has(upload.status)) return;
      }
    } catch (err) {
      // Network hiccup: keep trying.
    }
    setTimeout(tick, POLL_MS);
  }
  tick();
  return () => { stopped = true; };
}

export function watchElement(el) {
  const url = el.dataset.pollUrl;
  if (!url || el.dataset.watching) return;
  el.dataset.watching = "1";
  follow(url, (upload) => {
    setStatus(el, upload);
    if (FINAL.has(upload.status) && el.hasAttribute("data-reload-when-done")) window.location.reload();
  });
}

document.querySelectorAll("[data-poll-url]").forEach(watchElement);
