"""RQ queues by purpose; jobs are enqueued by dotted path with ids, never ORM objects."""
import functools
import logging
import time
from datetime import UTC, datetime

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.results import Result

from webapp import logs

log = logging.getLogger(__name__)

SCANS = "scans"
MAINTENANCE = "maintenance"
QUEUE_NAMES = (SCANS, MAINTENANCE)

#: Backoff between retries of a scan that hit a transient error (seconds).
SCAN_RETRY_INTERVALS = [5, 20, 60, 180, 600]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LIVE_STATUSES = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def get_redis():
    """The app's Redis connection (short timeouts so a dead Redis fails fast)."""
    redis = current_app.extensions.get("satchel.redis")
    if redis is None:
        redis = Redis.from_url(current_app.config["REDIS_URL"], socket_connect_timeout=2,
                               socket_timeout=10)
        current_app.extensions["satchel.redis"] = redis
    return redis


def get_queue(name=SCANS):
    """The queue for a purpose, namespaced by QUEUE_PREFIX."""
    return Queue(f"{current_app.config['QUEUE_PREFIX']}-{name}", connection=get_redis())


def scan_job_timeout(size):
    """Seconds a scan of size bytes may take: a floor plus ~4 MiB/s of streaming."""
    return 120 + size // (4 * 1024 * 1024)


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
    return _status(f"scan-{upload_id}", get_redis())


def enqueue_scan(upload_id, size):
    """Queue the scan of an upload unless one is already queued or running; False if Redis is down."""
    return _enqueue_upload_job("webapp.jobs.scan_upload", f"scan-{upload_id}", upload_id, size,
                               f"scan upload {upload_id}")


def enqueue_rescan(upload_id, size):
    """Queue the malware scan of a file accepted while scanning was off; False if Redis is down."""
    return _enqueue_upload_job("webapp.jobs.rescan_upload", f"rescan-{upload_id}", upload_id, size,
                               f"scan unscanned upload {upload_id}")


def _enqueue_upload_job(function, job_id, upload_id, size, description):
    queue = get_queue(SCANS)
    try:
        if _is_live(job_id, queue.connection):
            return True
        retries = current_app.config["SCAN_JOB_RETRIES"]
        queue.enqueue(function, upload_id, job_id=job_id,
                      job_timeout=scan_job_timeout(size), result_ttl=3600, failure_ttl=7 * 86400,
                      retry=Retry(max=retries, interval=SCAN_RETRY_INTERVALS[:retries]),
                      description=description, meta={"request_id": logs.current().get("request_id")})
    except RedisError:
        log.warning("redis unavailable: %s left for the reconciler", job_id)
        return False
    return True


def _or_none_if_redis_down(function):
    """Admin listings: None (shown as "Redis is unreachable") instead of an error page."""
    @functools.wraps(function)
    def wrapped(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except RedisError:
            return None
    return wrapped


def _queues():
    return [get_queue(name) for name in QUEUE_NAMES]


@_or_none_if_redis_down
def overview():
    """Per queue: waiting, running, scheduled (retries included) and failed job counts; None if Redis is down."""
    return [{"name": name, "queued": q.count, "started": q.started_job_registry.count,
             "scheduled": q.scheduled_job_registry.count, "failed": q.failed_job_registry.count}
            for name, q in zip(QUEUE_NAMES, _queues(), strict=True)]


def _registry_jobs(registry_name, limit=None):
    """(queue name, registry, job) for the jobs in one registry of every Satchel queue."""
    for name, q in zip(QUEUE_NAMES, _queues(), strict=True):
        registry = getattr(q, registry_name)
        ids = registry.get_job_ids(0, limit - 1) if limit else registry.get_job_ids()
        for job in Job.fetch_many(ids, connection=q.connection):
            if job is not None:
                yield name, registry, job


def _describe(job, queue_name, when, error=""):
    return {"id": job.id, "queue": queue_name, "description": job.description, "error": error, "when": when}


def _last_error_line(job):
    result = job.latest_result()
    if result is None or result.type != Result.Type.FAILED:
        return ""
    lines = (result.exc_string or "").strip().splitlines()
    return lines[-1] if lines else ""


@_or_none_if_redis_down
def failed_jobs(limit=100):
    """The newest failed jobs of every queue, with the last line of their error."""
    jobs = [_describe(job, name, job.ended_at or job.enqueued_at, _last_error_line(job))
            for name, _, job in _registry_jobs("failed_job_registry", limit)]
    return sorted(jobs, key=lambda j: j["when"] or _EPOCH, reverse=True)[:limit]


@_or_none_if_redis_down
def scheduled_jobs(limit=100):
    """Jobs waiting for a time: retries after a transient failure and scheduled maintenance."""
    jobs = [_describe(job, name, registry.get_scheduled_time(job))
            for name, registry, job in _registry_jobs("scheduled_job_registry", limit)]
    return sorted(jobs, key=lambda j: j["when"])[:limit]


@_or_none_if_redis_down
def running_jobs():
    """Jobs a worker is executing now."""
    return [_describe(job, name, job.started_at) for name, _, job in _registry_jobs("started_job_registry")]


def retry_failed(job_id):
    """Put a failed job back on its queue; False if no queue holds it as failed (or Redis is down)."""
    try:
        for q in _queues():
            if job_id in q.failed_job_registry:
                q.failed_job_registry.requeue(job_id)
                return True
    except (NoSuchJobError, InvalidJobOperation, RedisError):
        # Its data expired, another admin retried it first, or Redis is unreachable.
        return False
    return False


def maintenance_intervals():
    """Seconds between runs of each maintenance task."""
    from webapp.services.maintenance import TASKS

    config = current_app.config
    slow = {"sweep_orphans", "purge_removed"}  # they list the bucket or touch many rows
    return {name: config["SWEEP_INTERVAL"] if name in slow else config["MAINTENANCE_INTERVAL"] for name in TASKS}


def schedule_maintenance(task=None, now=None):
    """Schedule the next run of each task (or one) in RQ's scheduler.

    A run's job id names its time slot, so every worker that schedules the same slot schedules the
    same job: starting several workers, or a run scheduling its successor twice, adds nothing.
    """
    now = now or time.time()
    queue = get_queue(MAINTENANCE)
    scheduled = []
    for name, interval in maintenance_intervals().items():
        if task and name != task:
            continue
        slot = (int(now) // interval + 1) * interval
        job_id = f"maintenance-{name}-{slot}"
        queue.enqueue_at(datetime.fromtimestamp(slot, UTC), "webapp.jobs.run_maintenance", name,
                         job_id=job_id, job_timeout=max(600, interval), result_ttl=86400, failure_ttl=7 * 86400,
                         description=f"maintenance: {name}")
        scheduled.append(job_id)
    return scheduled
