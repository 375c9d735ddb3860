"""The RQ worker process, run inside the app context (`flask worker`)."""
from rq import Worker

from webapp.extensions import db
from webapp.queue import QUEUE_NAMES, get_queue, get_redis


class AppWorker(Worker):
    """A forking worker whose work horse does not share the parent's database connections."""

    def main_work_horse(self, *args, **kwargs):
        db.engine.dispose(close=False)
        return super().main_work_horse(*args, **kwargs)


def run_worker(burst=False, with_scheduler=True):
    """Work on every Satchel queue until stopped (or until empty with burst)."""
    queues = [get_queue(name) for name in QUEUE_NAMES]
    worker = AppWorker(queues, connection=get_redis())
    worker.work(burst=burst, with_scheduler=with_scheduler)
