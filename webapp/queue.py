"""RQ queues by purpose; jobs are enqueued by dotted path with ids, never ORM objects."""
import logging

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

log = logging.getLogger(__name__)

SCANS = "scans"
MAINTENANCE = "maintenance"
QUEUE_NAMES = (SCANS, MAINTENANCE)

#: Backoff between retries of a scan that hit a transient error (seconds).
SCAN_RETRY_INTERVALS = [5, 20, 60, 180, 600]
_LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


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


def enqueue_scan(upload_id, size):
    """Queue the scan of an upload unless one is already queued or running; False if Redis is down."""
    job_id = f"scan-{upload_id}"
    queue = get_queue(SCANS)
    try:
        try:
            if Job.fetch(job_id, connection=queue.connection).get_status() in _LIVE:
                return True
        except NoSuchJobError:
            pass
        retries = current_app.config["SCAN_JOB_RETRIES"]
        queue.enqueue("webapp.jobs.scan_upload", upload_id, job_id=job_id,
                      job_timeout=scan_job_timeout(size), result_ttl=3600, failure_ttl=7 * 86400,
                      retry=Retry(max=retries, interval=SCAN_RETRY_INTERVALS[:retries]),
                      description=f"scan upload {upload_id}")
    except RedisError:
        log.warning("redis unavailable: scan of %s left for the reconciler", upload_id)
        return False
    return True
