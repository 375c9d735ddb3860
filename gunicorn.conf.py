"""gunicorn's settings for Satchel (read from the working directory; flags on the command line win).

With PROMETHEUS_MULTIPROC_DIR set (an empty directory, shared with the `flask worker` processes),
each process keeps its metrics in a file there and /metrics adds them up; a worker that exits is
marked dead so that its live gauges stop counting.
"""

import os


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
