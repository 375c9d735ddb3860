"""What the benchmarks share: the local services, the app's processes, and stopping them all."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

from devtools import localservices

ROOT = Path(__file__).resolve().parent.parent


def start_services(workdir, database_url, redis_url=None):
    """moto, clamd and (unless redis_url) Redis; returns (the app's environment settings, processes)."""
    urls, processes = localservices.start_scanning_stack(workdir, redis_url)
    tag = uuid.uuid4().hex[:8]
    settings = {
        "SATCHEL_ENV": "development",
        "DATABASE_URL": database_url,
        "REDIS_URL": urls["redis"],
        "S3_ENDPOINT_URL": urls["s3"],
        "S3_BUCKET": f"satchel-bench-{tag}",
        "CLAMD_URL": urls["clamd"],
        "SCANNER": "clamd",
        "QUEUE_PREFIX": f"bench-{tag}",
    }
    return settings, processes


def spawn(command, settings, log=None):
    """Run command from the project root with settings added to the environment, output to log."""
    with open(log or os.devnull, "ab") as output:  # the child keeps its own copy of the file
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **settings},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def start_worker(settings, log=None):
    """One `flask worker` process (as in production: a supervisor, its worker process and RQ's scheduler)."""
    return spawn([sys.executable, "-m", "flask", "--app", "wsgi", "worker"], settings, log)


def start_gunicorn(settings, workers, threads=1, log=None, app="wsgi:app", cpus=None):
    """`gunicorn wsgi:app` (or app) on a free port (sync workers, or gthread ones with threads > 1),
    on the CPUs cpus names (taskset's list, such as "0") if given; returns (process, base URL) once
    it listens."""
    port = localservices.free_port()
    process = spawn(
        pinned(cpus)
        + [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--bind",
            f"127.0.0.1:{port}",
            "--graceful-timeout",
            "10",
            app,
        ],
        settings,
        log,
    )
    try:
        localservices.wait_for_port(port, process, name="gunicorn")
    except BaseException:
        stop_all([process])
        raise
    return process, f"http://127.0.0.1:{port}"


def pinned(cpus):
    """The prefix that runs a command (and all it starts) on the CPUs cpus names, or none."""
    return ["taskset", "-c", cpus] if cpus is not None else []


def stop_all(processes):
    """Stop processes newest first, each with everything it started (gunicorn workers, RQ's scheduler
    and worker processes), even what a process that died early left behind."""
    for process in reversed(processes):
        localservices.stop_tree(process)
