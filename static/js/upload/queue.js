// Files wait here and go up a few at a time (UPLOAD_PARALLEL_FILES), so a drop of hundreds works.

export class TransferQueue {
  constructor(limit) {
    this.limit = limit;
    this.waiting = [];
    this.running = 0;
  }

  add(transfer) {
    if (!this.waiting.includes(transfer)) this.waiting.push(transfer);
    transfer.queued();
    this.pump();
  }

  remove(transfer) {
    this.waiting = this.waiting.filter((t) => t !== transfer);
  }

  pump() {
    while (this.running < this.limit && this.waiting.length) {
      const transfer = this.waiting.shift();
      this.running += 1;
      transfer.run()
        .catch((err) => console.error("upload widget:", err))
        .finally(() => { this.running -= 1; this.pump(); });
    }
  }
}
