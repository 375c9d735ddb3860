"""The RQ worker (`flask worker`): a supervisor, and the worker process it forks and keeps running.

The worker process runs job after job itself (RQ's SimpleWorker), so a small file's scan reuses the
app, its database pool, the Redis connection, the S3 client and libmagic instead of paying for a
fork and fresh connections. It lives under SCAN_MEMORY_LIMIT, so a file that makes a job exhaust
memory fails that job (a MemoryError, counted against the upload) and not the machine.

A job that overruns its timeout gets RQ's timeout signal. The supervisor covers what a signal cannot
reach (a job stuck inside C code): it kills the worker process once a job is JOB_HANG_GRACE seconds
past its timeout. Whenever the worker process dies in the middle of a job, killed or crashed, the
supervisor hands that job to RQ's abandoned-job handling at once (retried while it has retries; the
upload counts the run as failed), then starts a new worker process.
"""

import ctypes
import logging
import multiprocessing
import os
import resource
import signal
import threading
import time
from contextlib import contextmanager

from flask import current_app
from rq import SimpleWorker
from rq.registry import StartedJobRegistry
from rq.worker import WorkerStatus

from webapp.extensions import db
from webapp.queue import QUEUE_NAMES, get_queue, get_redis, schedule_maintenance
from webapp.services import maintenance

log = logging.getLogger(__name__)

#: Seconds between heartbeats of a running job (RQ's default is 30).
JOB_MONITORING_INTERVAL = 10
#: Seconds between the supervisor's looks at its worker process.
SUPERVISOR_TICK = 0.5
#: The longest wait before a worker process that keeps dying is started again.
MAX_RESTART_DELAY = 30


def limit_memory(limit):
    """Cap this process's address space at limit bytes (never above its hard limit; 0: no cap)."""
    if not limit:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


class Watch:
    """What the worker process tells its supervisor, in memory both share: the job it runs, and the
    monotonic time by which that job must have ended (0 when idle)."""

    def __init__(self, grace):
        self.grace = grace
        self._deadline = multiprocessing.Value(ctypes.c_double, 0.0, lock=False)
        self._job_id = multiprocessing.Array(ctypes.c_char, 256, lock=False)

    def begin(self, job):
        self._job_id.value = job.id.encode()[:255]
        timeout = job.timeout if job.timeout and job.timeout > 0 else 24 * 3600
        self._deadline.value = time.monotonic() + timeout + self.grace

    def end(self):
        self._deadline.value = 0.0
        self._job_id.value = b""

    @property
    def job_id(self):
        return self._job_id.value.decode() or None

    def overdue(self):
        deadline = self._deadline.value
        return bool(deadline) and time.monotonic() > deadline


class AppWorker(SimpleWorker):
    """Runs each job in this process, keeping the job's heartbeat while it runs (as a forking
    worker's parent does), so a worker that dies is noticed within a minute or so."""

    watch = None

    def get_heartbeat_ttl(self, job, working_time=0.0):
        # The job's entry lapses soon after its heartbeats stop, not a whole job timeout later.
        return self.job_monitoring_interval + 60

    def execute_job(self, job, queue):
        execution = self.prepare_execution(job)
        with self._heartbeats(job, execution):
            self.perform_job(job, queue, execution)
        self.set_state(WorkerStatus.IDLE)

    @contextmanager
    def _heartbeats(self, job, execution):
        stop = threading.Event()

        def beat():
            while not stop.wait(self.job_monitoring_interval):
                try:
                    self.maintain_heartbeats(job, execution)
                except Exception:  # Redis away: the job goes on; its entry may lapse
                    log.warning("could not record the heartbeat of %s", job.id)

        if self.watch:
            self.watch.begin(job)
        thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            if self.watch:
                self.watch.end()


def warm_up():
    """Do once, before the worker process is forked, what every job would otherwise repeat."""
    from webapp import jobs  # noqa: F401
    from webapp.scanning.filetypes import sniff_type
    from webapp.services import scans  # noqa: F401
    from webapp.storage import get_storage

    get_storage()  # the boto3 client: built before forking, no connection opened yet
    sniff_type(b"warm-up")  # loads libmagic's database


def run_worker(burst=False, with_scheduler=True):
    """Work on every Satchel queue until stopped (or until they are empty, with burst).

    With the scheduler, the maintenance tasks are scheduled too (idempotent across workers).
    """
    warm_up()
    if with_scheduler:
        schedule_maintenance(maintenance.intervals())
    watch = Watch(current_app.config["JOB_HANG_GRACE"])
    return Supervisor(lambda: _fork_worker(watch, burst, with_scheduler), watch).run()


def _fork_worker(watch, burst, with_scheduler):
    """Fork the worker process; returns its pid (in the parent)."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setpgid(0, 0)  # its own group, with the scheduler it starts: killed together if it must be
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)  # RQ installs its own warm/cold shutdown handlers
        db.engine.dispose(close=False)  # the parent's connections stay the parent's
        limit_memory(current_app.config["SCAN_MEMORY_LIMIT"])
        _work(watch, burst, with_scheduler)
        code = 0
    except BaseException:
        log.exception("the worker process failed")
    finally:
        os._exit(code)  # never back into the supervisor's code


def _work(watch, burst, with_scheduler):
    # A job's heartbeat lapses JOB_MONITORING_INTERVAL + 60 seconds after its worker died; RQ looks
    # for such jobs every maintenance interval, but an idle worker only looks when its blocking
    # dequeue times out (worker_ttl - 15 seconds), so the TTL follows the interval.
    interval = current_app.config["WORKER_MAINTENANCE_INTERVAL"]
    worker = AppWorker(
        [get_queue(name) for name in QUEUE_NAMES],
        connection=get_redis(),
        job_monitoring_interval=JOB_MONITORING_INTERVAL,
        maintenance_interval=interval,
        worker_ttl=max(30, interval + 15),
    )
    worker.watch = watch
    worker.work(burst=burst, with_scheduler=with_scheduler)


def _kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class Supervisor:
    """Keeps one worker process running: passes stop signals on, kills it when a job hangs, and
    starts it again when it dies."""

    def __init__(self, start, watch):
        self.start, self.watch = start, watch
        self.pid = None
        self.stopping = False

    def run(self):
        previous = {signum: signal.signal(signum, self._pass_on) for signum in (signal.SIGTERM, signal.SIGINT)}
        try:
            return self._loop()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _pass_on(self, signum, frame):
        # RQ's own meaning: the first signal lets the running job finish, a second one does not.
        self.stopping = True
        if self.pid:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def _loop(self):
        delay = 1
        while True:
            started = time.monotonic()
            self.pid = self.start()
            log.info("worker process %d started", self.pid)
            status = self._wait()
            code = os.waitstatus_to_exitcode(status)
            abandoned = self.watch.job_id
            if code != 0 or abandoned:
                _kill_group(self.pid)  # what it left behind, such as RQ's scheduler process
            if abandoned:
                self._abandon(abandoned)
                self.watch.end()
            self.pid = None
            if self.stopping or (code == 0 and not abandoned):
                return code
            log.error("worker process exited with %s; starting another", code)
            delay = 1 if time.monotonic() - started > 60 else min(delay * 2, MAX_RESTART_DELAY)
            time.sleep(delay)

    def _wait(self):
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return status
            if self.watch.overdue():
                log.error(
                    "job %s is %d s past its timeout: killing its worker process", self.watch.job_id, self.watch.grace
                )
                os.kill(self.pid, signal.SIGKILL)
                _, status = os.waitpid(self.pid, 0)
                return status
            time.sleep(SUPERVISOR_TICK)

    @staticmethod
    def _abandon(job_id):
        """The worker process died running job_id: let RQ fail it now (retrying it while it may)
        rather than when its heartbeat lapses."""
        redis = get_redis()
        for name in QUEUE_NAMES:
            registry = StartedJobRegistry(queue=get_queue(name))
            entries = [entry for entry in redis.zrange(registry.key, 0, -1) if entry.decode().startswith(f"{job_id}:")]
            if entries:
                redis.zadd(registry.key, dict.fromkeys(entries, 1), xx=True)  # expired long ago
                registry.cleanup()
                log.warning("job %s was running in a worker process that died: handed to RQ as abandoned", job_id)
