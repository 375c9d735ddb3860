"""Jobs the worker tests queue by dotted path: what a real scan cannot be made to do on purpose."""

import os
import signal
import time
from pathlib import Path


def pid():
    """The process that ran this job."""
    return os.getpid()


def misbehave_once(marker, how):
    """The first run (no marker file yet) leaves a marker, then hangs where RQ's timeout signal
    cannot reach it ("hang": the signal is blocked, as inside C code) or dies ("crash"); a later
    run returns the pid that ran it."""
    marker = Path(marker)
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        if how == "hang":
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            time.sleep(3600)
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()
