"""`make run`: Redis, S3 (moto), clamd, one RQ worker and the web server; Ctrl-C stops them all."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from devtools import localservices
from devtools.localservices import LaunchError
from webapp.config import INSTANCE, ROOT

WEB_PORT = 5000  # the bucket's CORS rules (flask storage apply) name this origin
CLAMAV_DB = Path("/var/lib/clamav")
FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]


def port_or_free(preferred):
    """preferred if nothing listens on it, else any free port."""
    with socket.socket() as sock:
        # As the servers do, so connections lingering in TIME_WAIT do not count as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            return localservices.free_port()
    return preferred


def stop_group(process, timeout=10):
    """SIGTERM the process's group, wait for it, then SIGKILL whatever of the group is left."""
    # The group can outlive its leader: RQ's scheduler and work horse are forked children.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass


class DevStack:
    """The processes started so far, the environment they share, and whether to stop."""

    def __init__(self):
        self.children = []  # (name, Popen), in start order
        self.summary = []
        self.stop_requested = False
        self.env = dict(os.environ)
        self.env["SATCHEL_ENV"] = self.env.get("SATCHEL_ENV") or "development"

    def request_stop(self, signum, frame):
        """Signal handler: only set a flag, so a service mid-start is still recorded, then stopped."""
        self.stop_requested = True

    def stop_point(self):
        """Raise KeyboardInterrupt if a stop was asked for meanwhile."""
        if self.stop_requested:
            raise KeyboardInterrupt

    def started(self, name, process, where):
        """Record a running child, then honour a pending stop."""
        self.children.append((name, process))
        self.summary.append(f"  {name:<13} {where}  (pid {process.pid})")
        self.stop_point()

    def spawn(self, *args):
        """Start a `flask --app wsgi ...` child in its own process group."""
        return subprocess.Popen([*FLASK, *args], cwd=ROOT, env=self.env, start_new_session=True)

    def start(self):
        """Start every service, the worker and the web server."""
        if port_or_free(WEB_PORT) != WEB_PORT:
            raise LaunchError(f"port {WEB_PORT} is already in use; stop whatever listens there")
        self.summary += [
            f"  {var} from the environment: {self.env[var]}"
            for var in ("REDIS_URL", "S3_ENDPOINT_URL", "CLAMD_URL")
            if self.env.get(var)
        ]
        if not self.env.get("REDIS_URL"):
            process, port = localservices.start_redis(INSTANCE / "redis", port_or_free(6380))
            self.env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
            self.started("redis-server", process, self.env["REDIS_URL"])
        if not self.env.get("S3_ENDPOINT_URL"):
            process, port = localservices.start_moto(port_or_free(9000))
            self.env["S3_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
            self.started("moto S3", process, self.env["S3_ENDPOINT_URL"])
            setup = subprocess.run([*FLASK, "storage", "apply"], cwd=ROOT, env=self.env)
            self.stop_point()
            if setup.returncode:
                raise LaunchError("`flask storage apply` failed (see above)")
        if self.env.get("SCANNER") == "disabled":
            self.summary.append("  clamd         SCANNER=disabled: files are accepted WITHOUT a virus scan")
        elif not self.env.get("CLAMD_URL"):
            self.start_clamd()
        self.started("worker", self.spawn("worker"), "RQ worker with scheduler")
        web = self.spawn("run", "--host", "127.0.0.1", "--port", str(WEB_PORT), "--no-reload", "--no-debugger")
        self.started("web", web, f"http://127.0.0.1:{WEB_PORT}")
        localservices.wait_for_port(WEB_PORT, web, name="web server")
        self.stop_point()

    def start_clamd(self):
        """Start clamd with the system signatures, or EICAR only. Without clamd, stop: scanning is
        switched off only when SCANNER=disabled says so."""
        if not localservices.clamd_binary():
            raise LaunchError(
                "clamd is not installed (Debian: clamav-daemon; scripts/system-packages.sh run "
                "installs it). To accept files without a virus scan: SCANNER=disabled make run"
            )
        system_db = CLAMAV_DB.is_dir() and any(f.suffix in (".cvd", ".cld", ".cud") for f in CLAMAV_DB.iterdir())
        if not system_db:
            print(
                f"NOTE: no ClamAV signatures in {CLAMAV_DB} (run freshclam): clamd loads only "
                "the EICAR test signature, so real malware is NOT detected.",
                flush=True,
            )
        process, port = localservices.start_clamd(
            INSTANCE / "clamd", port_or_free(3310), database=CLAMAV_DB if system_db else None
        )
        self.env.update(CLAMD_URL=f"tcp://127.0.0.1:{port}", SCANNER="clamd")
        self.started("clamd", process, self.env["CLAMD_URL"] + ("" if system_db else "  (EICAR test signature only)"))

    def supervise(self):
        """Block until a stop is asked for; raise LaunchError naming a child that exits."""
        while not self.stop_requested:
            for name, process in self.children:
                if process.poll() is not None:
                    raise LaunchError(f"{name} exited unexpectedly with code {process.returncode}")
            time.sleep(0.5)

    def stop_all(self):
        """Stop every child, newest first (the worker still needs Redis while it shuts down)."""
        for _, process in reversed(self.children):
            stop_group(process)


def main():
    """Run the stack until Ctrl-C/SIGTERM (exit 0) or until something fails (exit 1)."""
    stack = DevStack()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stack.request_stop)
    code = 0
    try:
        stack.start()
        print(
            "Satchel is running:",
            *stack.summary,
            f"Open http://127.0.0.1:{WEB_PORT}",
            "(Ctrl-C stops everything)",
            sep="\n",
            flush=True,
        )
        stack.supervise()
    except KeyboardInterrupt:
        pass
    except LaunchError as exc:
        print(f"devstack: {exc}; stopping everything", file=sys.stderr, flush=True)
        code = 1
    finally:
        print("devstack: stopping...", flush=True)
        stack.stop_all()
    sys.exit(code)


if __name__ == "__main__":
    main()
