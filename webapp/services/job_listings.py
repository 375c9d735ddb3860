"""What the admin jobs page lists: queue depths, failed, scheduled and running jobs, read from RQ."""

import functools
from datetime import UTC, datetime

from redis.exceptions import RedisError
from rq.results import Result

from webapp.queue import QUEUE_NAMES, queues, registry_jobs

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _or_none_if_redis_down(function):
    """Admin listings: None (shown as "Redis is unreachable") instead of an error page."""

    @functools.wraps(function)
    def wrapped(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except RedisError:
            return None

    return wrapped


@_or_none_if_redis_down
def overview():
    """Per queue: waiting, running, scheduled (retries included) and failed job counts; None if Redis is down."""
    return [
        {
            "name": name,
            "queued": q.count,
            "started": q.started_job_registry.count,
            "scheduled": q.scheduled_job_registry.count,
            "failed": q.failed_job_registry.count,
        }
        for name, q in zip(QUEUE_NAMES, queues(), strict=True)
    ]


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
    jobs = [
        _describe(job, name, job.ended_at or job.enqueued_at, _last_error_line(job))
        for name, _, job in registry_jobs("failed_job_registry", limit)
    ]
    return sorted(jobs, key=lambda j: j["when"] or _EPOCH, reverse=True)[:limit]


@_or_none_if_redis_down
def scheduled_jobs(limit=100):
    """Jobs waiting for a time: retries after a transient failure and scheduled maintenance."""
    jobs = [
        _describe(job, name, registry.get_scheduled_time(job))
        for name, registry, job in registry_jobs("scheduled_job_registry", limit)
    ]
    return sorted(jobs, key=lambda j: j["when"])[:limit]


@_or_none_if_redis_down
def running_jobs():
    """Jobs a worker is executing now."""
    return [_describe(job, name, job.started_at) for name, _, job in registry_jobs("started_job_registry")]


def jobs_page():
    """Everything the jobs page shows about RQ, and when each maintenance task runs next."""
    scheduled = scheduled_jobs()
    next_runs = {}
    for job in scheduled or []:
        if job["id"].startswith("maintenance-"):
            next_runs.setdefault(job["id"].split("-")[1], job["when"])
    return {
        "queues": overview(),
        "failed": failed_jobs(),
        "running": running_jobs(),
        "scheduled": scheduled,
        "next_runs": next_runs,
    }
