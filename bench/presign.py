"""Benchmark: what one presign costs in Satchel, next to a bare signer and Uppy Companion, in one run.

Each server in turn runs pinned to the same core (taskset) while wrk, pinned to the other core,
keeps --connections connections busy for --duration seconds after a warm-up:

- Satchel as in production: gunicorn `wsgi:app` (SATCHEL_ENV=production), PostgreSQL, Redis, a
  logged-in session, `POST /api/uploads` with its CSRF token; rate limits and quotas are raised by
  settings so that nothing is refused, and each is still checked on every request. It runs with
  100 files held, then again with 100,000.
- A minimal Flask signer on the same stack (bench/minimal_signer.py): validate the JSON, insert one
  row, answer a presigned PUT; the same gunicorn settings.
- Uppy Companion (`@uppy/companion` from npm, bench/companion): `GET /s3/params`, which signs an S3
  POST policy.

It prints req/s, p50/p99 latency and the server's CPU milliseconds per request (user + system time
of the server's processes, read from /proc), and Satchel's ratios to the peers, against the goals.
PostgreSQL, Redis and the S3 endpoint are shared by all and not counted in CPU per request.

    python -m bench.presign [--duration 15] [--connections 32] [--gunicorn-workers 2]
"""

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import uuid
from pathlib import Path

import requests

from bench.listing import add_files
from bench.load import UNTHROTTLED, fresh_services
from bench.stack import ROOT, pinned, spawn, start_gunicorn, stop_all
from devtools import localservices

COMPANION = ROOT / "bench" / "companion" / "node_modules" / ".bin" / "companion"
BODY = {"filename": "report.pdf", "size": 1_000_000, "content_type": "application/pdf"}
#: wrk's Lua: the request, then one line of figures when the run ends.
WRK_SCRIPT = """
wrk.method = "{method}"
wrk.body = [==[{body}]==]
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    e.status, e.connect + e.read + e.write, e.timeout, latency:percentile(50), latency:percentile(99),
    latency.max))
end
"""
GOALS = "goals: Satchel >= 0.8x the bare signer's req/s and >= 1.5x Companion's; CPU <= 1.5 ms; p99 < 50 ms"


def cores():
    """(the servers' core, the load's core): two different ones where the machine has them."""
    available = sorted(os.sched_getaffinity(0))
    return str(available[0]), str(available[-1])


def cpu_seconds(pid):
    """User + system CPU seconds of pid and every process below it, so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for process in [pid, *localservices.descendants(pid)]:
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks


def wrk(url, method, body, headers, seconds, connections, core, workdir):
    """One wrk run; returns its figures (requests, seconds, errors, latency in ms)."""
    lines = "\n".join(f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}" for name, value in headers.items())
    script = workdir / "request.lua"
    script.write_text(WRK_SCRIPT.format(method=method, body=body, headers=lines))
    command = [*pinned(core), "wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s", "--timeout", "10s"]
    command += ["-s", script, url]
    run = subprocess.run(command, capture_output=True, text=True)
    output = run.stdout
    if run.returncode:
        raise RuntimeError(f"wrk failed:\n{run.stdout}{run.stderr}")
    match = re.search(r"^RESULT (.*)$", output, re.M)
    if not match:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    requests_done, micros, status_errors, socket_errors, timeouts, p50, p99, worst = map(int, match.group(1).split())
    return {
        "requests": requests_done,
        "seconds": micros / 1e6,
        "errors": status_errors + socket_errors + timeouts,
        "p50": p50 / 1000,
        "p99": p99 / 1000,
        "max": worst / 1000,
    }


def measure(name, server, url, method, body, headers, args, workdir):
    """Warm the server up, then load it while counting its CPU time."""
    load_core = args.load_core
    wrk(url, method, body, headers, args.warmup, args.connections, load_core, workdir)
    before = cpu_seconds(server.pid)
    result = wrk(url, method, body, headers, args.duration, args.connections, load_core, workdir)
    result["cpu_ms"] = (cpu_seconds(server.pid) - before) * 1000 / max(result["requests"], 1)
    result["rps"] = result["requests"] / result["seconds"]
    result["name"] = name
    print(
        f"  {name}: {result['rps']:.0f} req/s, p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms, "
        f"{result['cpu_ms']:.2f} ms CPU/request, {result['errors']} errors",
        flush=True,
    )
    return result


def satchel_session(base_url, email, password):
    """Log in through the form; returns (session cookie, CSRF token) for the API.

    The cookie is Secure, as in production; wrk sends it over loopback's plain HTTP anyway."""
    cookies = {}

    def keep(response):
        cookies.update({name: value for name, value in response.cookies.items() if name == "session"})
        return response

    page = keep(requests.get(f"{base_url}/auth/login", timeout=30))
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    login = keep(
        requests.post(
            f"{base_url}/auth/login",
            data={"email": email, "password": password, "csrf_token": token},
            cookies=cookies,
            allow_redirects=False,
            timeout=30,
        )
    )
    if login.status_code != 302:
        raise RuntimeError(f"login answered {login.status_code}")
    page = keep(requests.get(f"{base_url}/files", cookies=cookies, timeout=30))
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
    return cookies["session"], csrf


def start_companion(settings, workdir, core):
    """Uppy Companion, standalone, signing for the same bucket and endpoint; returns (process, URL)."""
    if not COMPANION.exists():
        raise SystemExit("Uppy Companion is missing: run `make bench` (it installs bench/companion)")
    port = localservices.free_port()
    data = workdir / "companion"
    data.mkdir()
    env = {
        "NODE_ENV": "production",
        "COMPANION_PORT": str(port),
        "COMPANION_DOMAIN": f"127.0.0.1:{port}",
        "COMPANION_PROTOCOL": "http",
        "COMPANION_DATADIR": str(data),
        "COMPANION_SECRET": secrets.token_hex(32),
        "COMPANION_PREAUTH_SECRET": secrets.token_hex(32),
        "COMPANION_UPLOAD_URLS": settings["S3_ENDPOINT_URL"],  # required, though only remote uploads use it
        "COMPANION_REDIS_URL": settings["REDIS_URL"],
        "COMPANION_AWS_KEY": "testing",
        "COMPANION_AWS_SECRET": "testing",
        "COMPANION_AWS_BUCKET": settings["S3_BUCKET"],
        "COMPANION_AWS_REGION": "us-east-1",
        "COMPANION_AWS_ENDPOINT": settings["S3_ENDPOINT_URL"],
        "COMPANION_AWS_FORCE_PATH_STYLE": "true",
        "COMPANION_CLIENT_ORIGINS": "true",
    }
    process = spawn(pinned(core) + [str(COMPANION)], env, workdir / "companion.log")
    localservices.wait_for_port(port, process, name="companion")
    return process, f"http://127.0.0.1:{port}"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="measured seconds per server")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--gunicorn-workers", type=int, default=2)
    parser.add_argument("--gunicorn-threads", type=int, default=1, help="threads per worker (gthread when > 1)")
    parser.add_argument("--held", default="100,100000", help="files the user holds, one run each")
    return parser.parse_args()


def main():
    args = parse_args()
    server_core, args.load_core = cores()
    held_sizes = [int(size) for size in args.held.split(",")]
    workdir, settings, processes = fresh_services(UNTHROTTLED)
    print(
        f"presign under load: each server on core {server_core}, wrk on core {args.load_core}, "
        f"{args.connections} connections, {args.duration:g} s after {args.warmup:g} s of warm-up",
        flush=True,
    )
    results = {}
    try:
        app, user_id, email, password = prepare_satchel()
        production = {
            **settings,
            "SATCHEL_ENV": "production",
            "SECRET_KEY": secrets.token_hex(32),
            "S3_ACCESS_KEY_ID": "testing",
            "S3_SECRET_ACCESS_KEY": "testing",
        }
        held = 0
        for size in held_sizes:
            with app.app_context():
                add_files(user_id, size - held, held)
                held = size
            name = f"Satchel, {size:,} files held"
            server, base_url = start_gunicorn(
                production, args.gunicorn_workers, args.gunicorn_threads, workdir / "satchel.log", cpus=server_core
            )
            try:
                cookie, csrf = satchel_session(base_url, email, password)
                headers = {"Content-Type": "application/json", "Cookie": f"session={cookie}", "X-CSRFToken": csrf}
                check = requests.post(f"{base_url}/api/uploads", data=json.dumps(BODY), headers=headers, timeout=30)
                assert check.status_code == 201, check.text
                results[size] = measure(
                    name, server, f"{base_url}/api/uploads", "POST", json.dumps(BODY), headers, args, workdir
                )
            finally:
                stop_all([server])
            if size == held_sizes[0]:
                results["minimal"] = run_minimal(settings, args, server_core, workdir)
                results["companion"] = run_companion(settings, args, server_core, workdir)
        report(results, held_sizes)
    except BaseException:
        print(f"logs kept in {workdir}")
        raise
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    finally:
        stop_all(processes)


def prepare_satchel():
    """Migrations, the bucket and one user; returns (app, user id, email, password)."""
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.services.accounts import create_user
    from webapp.storage import get_storage

    app = create_app()
    email, password = f"bench-{uuid.uuid4().hex[:6]}@example.com", "benchmark password"
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        get_storage().ensure_bucket(["http://127.0.0.1:5000"])
        user_id = create_user(email, password).id
    return app, user_id, email, password


def run_minimal(settings, args, core, workdir):
    from bench import minimal_signer

    minimal_signer.create_table()
    minimal_signer.engine.dispose()
    server, base_url = start_gunicorn(
        settings,
        args.gunicorn_workers,
        args.gunicorn_threads,
        workdir / "minimal.log",
        app="bench.minimal_signer:app",
        cpus=core,
    )
    try:
        headers = {"Content-Type": "application/json"}
        check = requests.post(f"{base_url}/sign", json=BODY, timeout=30)
        assert check.status_code == 201, check.text
        return measure("minimal Flask", server, f"{base_url}/sign", "POST", json.dumps(BODY), headers, args, workdir)
    finally:
        stop_all([server])


def run_companion(settings, args, core, workdir):
    server, base_url = start_companion(settings, workdir, core)
    try:
        url = f"{base_url}/s3/params?filename={BODY['filename']}&type={BODY['content_type']}"
        check = requests.get(url, timeout=30)
        assert check.status_code == 200 and check.json()["method"] == "POST", check.text
        return measure("Uppy Companion", server, url, "GET", "", {}, args, workdir)
    finally:
        stop_all([server])


def report(results, held_sizes):
    rows = [results[size] for size in held_sizes] + [results["minimal"], results["companion"]]
    print(f"\n{'server':<32}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/req':>12}{'errors':>8}")
    for row in rows:
        print(
            f"{row['name']:<32}{row['rps']:>8.0f}{row['p50']:>9.1f}{row['p99']:>9.1f}"
            f"{row['cpu_ms']:>12.2f}{row['errors']:>8}"
        )
    minimal, companion = results["minimal"], results["companion"]
    print()
    for size in held_sizes:
        satchel = results[size]
        print(
            f"Satchel with {size:,} files held: {satchel['rps'] / minimal['rps']:.2f}x the bare signer's req/s, "
            f"{satchel['rps'] / companion['rps']:.2f}x Companion's; CPU {satchel['cpu_ms'] / minimal['cpu_ms']:.2f}x "
            f"the bare signer's"
        )
    first, last = results[held_sizes[0]], results[held_sizes[-1]]
    print(f"{held_sizes[-1]:,} vs {held_sizes[0]:,} files held: p50 {last['p50'] / first['p50']:.2f}x (goal <= 1.2x)")
    print(GOALS)
    if any(row["errors"] for row in rows):
        raise SystemExit("some requests failed: the figures above are not comparable")


if __name__ == "__main__":
    main()
