"""Scanning is never off silently: files accepted without a scan say so, and are scanned later."""

import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from devtools import localservices
from devtools import run as devstack
from devtools.localservices import LaunchError
from tests.conftest import bucket_keys
from webapp.extensions import db
from webapp.models import Upload
from webapp.scanning.clamd import EICAR
from webapp.services.maintenance import run_task

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def app_config():
    return {"SCANNER": "disabled"}


def test_files_accepted_unscanned_say_so_and_are_scanned_once_a_scanner_is_configured(app, api, run_worker):
    clean = api.upload(b"ordinary words", filename="words.txt")
    infected = api.upload(EICAR, filename="eicar.txt")
    run_worker()
    for upload_id in (clean, infected):
        found = api.status(upload_id)
        assert (found["status"], found["unscanned"]) == ("available", True)
    assert "not scanned for viruses" in api.get(f"/files/{infected}").get_data(as_text=True)
    assert "not virus-scanned" in api.get("/files").get_data(as_text=True)
    assert run_task("rescan_unscanned").counts == {"queued": 0}  # still no scanner: nothing to do

    app.config["SCANNER"] = "clamd"
    # A scanner is back: nothing unscanned is served until it has been scanned.
    refused = api.get(f"/files/{infected}/download")
    assert refused.status_code == 409 and "waiting for its scan" in refused.get_data(as_text=True)
    assert run_task("rescan_unscanned").counts == {"queued": 2}
    run_worker()
    assert api.status(clean)["status"] == "available" and api.status(clean)["unscanned"] is False
    found = api.status(infected)
    assert (found["status"], found["reason"], found["unscanned"]) == ("quarantined", "malware", False)
    assert found["signature"].startswith("Eicar")
    assert api.get(f"/files/{infected}/download").status_code == 404
    assert "not scanned for viruses" not in api.get(f"/files/{clean}").get_data(as_text=True)
    assert run_task("rescan_unscanned").counts == {"queued": 0}


def test_a_file_that_keeps_breaking_the_rescan_ends_quarantined_not_served(app, api, run_worker):
    from webapp.scanning.clamd import ScanAborted
    from webapp.services.scans import rescan_upload

    upload_id = api.upload(b"ordinary words")
    run_worker()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def hang_up():  # a clamd that dies on this file: it takes the stream, then the connection drops
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.recv(65536)
            connection.close()

    threading.Thread(target=hang_up, daemon=True).start()
    app.config.update(SCANNER="clamd", CLAMD_URL=f"tcp://127.0.0.1:{listener.getsockname()[1]}", MAX_SCAN_FAILURES=2)
    try:
        with pytest.raises(ScanAborted):
            rescan_upload(upload_id)
        assert db.session.get(Upload, upload_id).scan_failures == 1
        assert rescan_upload(upload_id).value == "quarantined"
    finally:
        listener.close()
    found = api.status(upload_id)
    assert (found["status"], found["reason"], found["unscanned"]) == ("quarantined", "scan_failed", False)


def test_blocked_bytes_accepted_unscanned_are_taken_down_by_the_rescan(app, api, run_worker):
    import hashlib

    from webapp.models import BlockedHash

    upload_id = api.upload(b"bytes a moderator blocked")
    run_worker()
    db.session.add(BlockedHash(sha256=hashlib.sha256(b"bytes a moderator blocked").hexdigest(), reason="test"))
    db.session.commit()
    app.config["SCANNER"] = "clamd"
    run_task("rescan_unscanned")
    run_worker()
    assert (api.status(upload_id)["status"], api.status(upload_id)["reason"]) == ("removed", "blocked_content")
    assert bucket_keys(app, "files/") == []


def test_files_scanned_normally_are_not_marked(app, api, run_worker):
    app.config["SCANNER"] = "clamd"
    upload_id = api.upload(b"ordinary words")
    run_worker()
    assert db.session.get(Upload, upload_id).unscanned is False
    assert "not virus-scanned" not in api.get("/files").get_data(as_text=True)


def test_make_run_stops_without_clamd_unless_scanning_is_explicitly_disabled(monkeypatch):
    monkeypatch.setattr(localservices, "clamd_binary", lambda: None)
    stack = devstack.DevStack()
    with pytest.raises(LaunchError) as info:
        stack.start_clamd()
    assert "SCANNER=disabled" in str(info.value)
    assert stack.env.get("SCANNER") != "disabled" and stack.children == []


def test_system_packages_names_the_one_command_when_it_cannot_install(tmp_path):
    # A machine where nothing is installed and the user may not install: the script stops at once.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {"id": "echo 1000", "apt-get": "exit 99"}.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    for tool in ("grep", "sh", "env"):
        os.symlink(f"/bin/{tool}" if Path(f"/bin/{tool}").exists() else f"/usr/bin/{tool}", bin_dir / tool)
    result = subprocess.run(
        ["/bin/bash", str(ROOT / "scripts" / "system-packages.sh"), "test"],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "nodejs npm" in result.stderr and "python3-venv" in result.stderr
    assert "sudo sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq" in result.stderr


def test_system_packages_has_nothing_to_do_on_this_machine():
    # `make test` ran it first, so nothing is missing by now (and nothing is installed here).
    result = subprocess.run(
        [str(ROOT / "scripts" / "system-packages.sh"), "test"], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout) == (0, "")
