"""RQ queues by purpose; jobs are enqueued by dotted path with ids, never ORM objects."""

import logging
import time
from datetime import UTC, datetime

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus

from webapp import logs

log = logging.getLogger(__name__)

SCANS = "scans"
MAINTENANCE = "maintenance"
#: Scans past their user's fair share, and rescans: a worker takes them when the others are empty.
SCAN_BACKLOG = "scan-backlog"
#: Webhook deliveries: an HTTP POST each, never in the way of a scan.
WEBHOOKS = "webhooks"
#: Every queue, in the order a worker takes jobs from them.
QUEUE_NAMES = (SCANS, MAINTENANCE, WEBHOOKS, SCAN_BACKLOG)
#: Backoff between attempts at a webhook delivery whose receiver did not take it (seconds).
WEBHOOK_RETRY_INTERVALS = [10, 60, 300, 1800, 7200]

#: Backoff between retries of a scan that hit a transient error (seconds).
SCAN_RETRY_INTERVALS = [5, 20, 60, 180, 600]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LIVE_STATUSES = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def get_redis():
    """The app's Redis connection (short timeouts so a dead Redis fails fast)."""
    redis = current_app.extensions.get("satchel.redis")
    if redis is None:
        redis = Redis.from_url(current_app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=10)
        current_app.extensions["satchel.redis"] = redis
    return redis


def get_queue(name=SCANS):
    """The queue for a purpose, namespaced by QUEUE_PREFIX."""
    return Queue(f"{current_app.config['QUEUE_PREFIX']}-{name}", connection=get_redis())


def scan_job_timeout(size):
    """Seconds a scan of size bytes may take: a floor plus ~4 MiB/s of streaming."""
    return 120 + size // (4 * 1024 * 1024)


def scan_job_id(upload_id):
    """The id of an upload's scan job: one per upload, so a second enqueue finds the first."""
    return f"scan-{upload_id}"


def rescan_job_id(upload_id):
    """The id of the job that scans a file accepted while scanning was off."""
    return f"rescan-{upload_id}"


def _status(job_id, connection):
    try:
        return Job.fetch(job_id, connection=connection).get_status()
    except NoSuchJobError:
        return None


def _is_live(job_id, connection):
    return _status(job_id, connection) in LIVE_STATUSES


def scan_job_status(upload_id):
    """The RQ status of the upload's scan job, or None when Redis has no such job (never queued,
    expired, or lost with a Redis that restarted empty)."""
    return _status(scan_job_id(upload_id), get_redis())


def enqueue_scan(upload_id, size, backlog=False):
    """Queue the scan of an upload (on the backlog, behind every other scan, with backlog) unless one
    is already queued or running; False if Redis is down."""
    return _enqueue_upload_job(
        SCAN_BACKLOG if backlog else SCANS,
        "webapp.jobs.scan_upload",
        scan_job_id(upload_id),
        upload_id,
        size,
        f"scan upload {upload_id}",
    )


def enqueue_rescan(upload_id, size):
    """Queue the malware scan of a file accepted while scanning was off, on the backlog (files already
    served wait behind new uploads); False if Redis is down."""
    return _enqueue_upload_job(
        SCAN_BACKLOG,
        "webapp.jobs.rescan_upload",
        rescan_job_id(upload_id),
        upload_id,
        size,
        f"scan unscanned upload {upload_id}",
    )


def _enqueue_upload_job(queue_name, function, job_id, upload_id, size, description):
    queue = get_queue(queue_name)
    try:
        if _is_live(job_id, queue.connection):
            return True
        retries = current_app.config["SCAN_JOB_RETRIES"]
        queue.enqueue(
            function,
            upload_id,
            job_id=job_id,
            job_timeout=scan_job_timeout(size),
            result_ttl=3600,
            failure_ttl=7 * 86400,
            retry=Retry(max=retries, interval=SCAN_RETRY_INTERVALS[:retries]),
            description=description,
            meta={"request_id": logs.current().get("request_id")},
        )
    except RedisError:
        log.warning("redis unavailable: %s left for the reconciler", job_id)
        return False
    return True


def webhook_job_id(delivery_id):
    """Delivery ids restart with each database: the queue prefix keeps two installations on one Redis apart."""
    return f"{current_app.config['QUEUE_PREFIX']}-webhook-{delivery_id}"


def enqueue_webhook(delivery_id):
    """Queue one attempt at a webhook delivery (unless one is queued), with RQ's retries and backoff;
    False if Redis is down (maintenance queues it again)."""
    queue = get_queue(WEBHOOKS)
    job_id = webhook_job_id(delivery_id)
    try:
        if _is_live(job_id, queue.connection):
            return True
        queue.enqueue(
            "webapp.jobs.deliver_webhook",
            delivery_id,
            job_id=job_id,
            job_timeout=60,
            result_ttl=3600,
            failure_ttl=7 * 86400,
            retry=Retry(max=len(WEBHOOK_RETRY_INTERVALS), interval=WEBHOOK_RETRY_INTERVALS),
            description=f"webhook delivery {delivery_id}",
            meta={"request_id": logs.current().get("request_id")},
        )
    except RedisError:
        log.warning("redis unavailable: webhook delivery %s left for maintenance", delivery_id)
        return False
    return True


def queue_stats():
    """{queue name: {"depth", "oldest_age" (seconds the first waiting job has waited), "failed"}};
    raises RedisError when Redis is down."""
    now = time.time()
    stats = {}
    for name, q in zip(QUEUE_NAMES, queues(), strict=True):
        first = q.get_job_ids(0, 1)
        try:
            job = Job.fetch(first[0], connection=q.connection) if first else None
        except NoSuchJobError:  # taken (or expired) between the two reads
            job = None
        at = job.enqueued_at if job else None
        enqueued = (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp() if at else now
        stats[name] = {"depth": q.count, "oldest_age": max(0.0, now - enqueued), "failed": q.failed_job_registry.count}
    return stats


def queues():
    """Every Satchel queue, in QUEUE_NAMES order."""
    return [get_queue(name) for name in QUEUE_NAMES]


def registry_jobs(registry_name, limit=None):
    """(queue name, registry, job) for the jobs in one registry of every Satchel queue."""
    for name, q in zip(QUEUE_NAMES, queues(), strict=True):
        registry = getattr(q, registry_name)
        ids = registry.get_job_ids(0, limit - 1) if limit else registry.get_job_ids()
        for job in Job.fetch_many(ids, connection=q.connection):
            if job is not None:
                yield name, registry, job


def retry_failed(job_id):
    """Put a failed job back on its queue; False if no queue holds it as failed (or Redis is down)."""
    try:
        for q in queues():
            if job_id in q.failed_job_registry:
                q.failed_job_registry.requeue(job_id)
                return True
    except (NoSuchJobError, InvalidJobOperation, RedisError):
        # Its data expired, another admin retried it first, or Redis is unreachable.
        return False
    return False


def schedule_maintenance(intervals, task=None, now=None):
    """Schedule the next run of each task in intervals ({name: seconds}; or of one task) in RQ's scheduler.

    A run's job id names its time slot, so every worker that schedules the same slot schedules the
    same job: starting several workers, or a run scheduling its successor twice, adds nothing.
    """
    now = now or time.time()
    queue = get_queue(MAINTENANCE)
    scheduled = []
    for name, interval in intervals.items():
        if task and name != task:
            continue
        slot = (int(now) // interval + 1) * interval
        job_id = f"maintenance-{name}-{slot}"
        queue.enqueue_at(
            datetime.fromtimestamp(slot, UTC),
            "webapp.jobs.run_maintenance",
            name,
            job_id=job_id,
            job_timeout=max(600, interval),
            result_ttl=86400,
            failure_ttl=7 * 86400,
            description=f"maintenance: {name}",
        )
        scheduled.append(job_id)
    return scheduled
