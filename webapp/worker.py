"""The RQ worker process, run inside the app context (`flask worker`)."""
from rq import Worker

from webapp.extensions import db
from webapp.queue import QUEUE_NAMES, get_queue, get_redis, schedule_maintenance


class AppWorker(Worker):
    """A forking worker whose work horse does not share the parent's database connections."""

    def main_work_horse(self, *args, **kwargs):
        db.engine.dispose(close=False)
        return super().main_work_horse(*args, **kwargs)


def warm_up():
    """Do once in the parent what every forked job would otherwise repeat (imports, clients, magic)."""
    from webapp import jobs  # noqa: F401
    from webapp.scanning import sniff_type
    from webapp.services import verification  # noqa: F401
    from webapp.storage import get_storage

    get_storage()  # the boto3 client: built before forking, no connection opened yet
    sniff_type(b"warm-up")  # loads libmagic's database


def run_worker(burst=False, with_scheduler=True):
    """Work on every Satchel queue until stopped (or until empty with burst).

    With the scheduler, the maintenance tasks are scheduled too (idempotent across workers).
    """
    warm_up()
    if with_scheduler:
        schedule_maintenance()
    queues = [get_queue(name) for name in QUEUE_NAMES]
    worker = AppWorker(queues, connection=get_redis())
    worker.work(burst=burst, with_scheduler=with_scheduler)
