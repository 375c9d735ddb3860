"""The RQ worker process, run inside the app context (`flask worker`)."""

import resource

from flask import current_app
from rq import Worker

from webapp.extensions import db
from webapp.queue import QUEUE_NAMES, get_queue, get_redis, schedule_maintenance
from webapp.services import maintenance

#: Seconds between a work horse's heartbeats (RQ's default is 30).
JOB_MONITORING_INTERVAL = 10


def limit_memory(limit):
    """Cap this process's address space at limit bytes (never above its hard limit; 0: no cap)."""
    if not limit:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


class AppWorker(Worker):
    """A forking worker whose work horse does not share the parent's database connections, and
    runs its job under SCAN_MEMORY_LIMIT."""

    def main_work_horse(self, *args, **kwargs):
        db.engine.dispose(close=False)
        # Only the forked horse: a file that makes a job exhaust memory fails that job (a
        # MemoryError, counted against the upload) instead of the worker or the machine.
        limit_memory(current_app.config["SCAN_MEMORY_LIMIT"])
        return super().main_work_horse(*args, **kwargs)


def warm_up():
    """Do once in the parent what every forked job would otherwise repeat (imports, clients, magic)."""
    from webapp import jobs  # noqa: F401
    from webapp.scanning.filetypes import sniff_type
    from webapp.services import scans  # noqa: F401
    from webapp.storage import get_storage

    get_storage()  # the boto3 client: built before forking, no connection opened yet
    sniff_type(b"warm-up")  # loads libmagic's database


def run_worker(burst=False, with_scheduler=True):
    """Work on every Satchel queue until stopped (or until empty with burst).

    With the scheduler, the maintenance tasks are scheduled too (idempotent across workers).
    """
    warm_up()
    if with_scheduler:
        schedule_maintenance(maintenance.intervals())
    queues = [get_queue(name) for name in QUEUE_NAMES]
    # A work horse heartbeats every JOB_MONITORING_INTERVAL seconds; RQ gives up on a job whose
    # heartbeat is that plus 60 seconds late (its worker died), and looks for such jobs every
    # maintenance interval, but an idle worker only looks up when its blocking dequeue times out
    # (worker_ttl - 15 seconds; 405 by default), so the TTL follows the interval.
    interval = current_app.config["WORKER_MAINTENANCE_INTERVAL"]
    worker = AppWorker(
        queues,
        connection=get_redis(),
        job_monitoring_interval=JOB_MONITORING_INTERVAL,
        maintenance_interval=interval,
        worker_ttl=max(30, interval + 15),
    )
    worker.work(burst=burst, with_scheduler=with_scheduler)
