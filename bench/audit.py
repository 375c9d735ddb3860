"""After a load run: did every completed upload reach one final state, with rows and objects one to one?

Runs inside the app context, against the database, the bucket and RQ's job results.
"""

from collections import Counter
from dataclasses import dataclass, field

from rq.job import Job
from rq.results import Result
from sqlalchemy import select

from webapp import storage as store
from webapp.extensions import db
from webapp.models import Upload, UploadStatus
from webapp.queue import get_redis

FINAL = {UploadStatus.AVAILABLE.value, UploadStatus.REJECTED.value, UploadStatus.QUARANTINED.value}
WAITING = {UploadStatus.UPLOADED.value, UploadStatus.SCANNING.value}
#: Rows whose incoming/ object must still exist (quarantined bytes wait for a moderator).
KEEPS_INCOMING = WAITING | {UploadStatus.PENDING.value, UploadStatus.QUARANTINED.value}

#: Every figure that must be zero, in report order, with what it counts.
CHECKS = {
    "lost": "completed uploads with no row, or whose row left the flow (pending, expired, deleted ...)",
    "stuck": "uploads still uploaded or scanning after the settle time",
    "duplicates": "uploads promoted twice: two files/ objects, or two scan runs that ended available",
    "orphans": "files/ and derivatives/ objects that no available row points at",
    "missing": "available rows whose files/ object or thumbnail is not in the bucket",
    "incoming_left": "incoming/ objects of uploads that are finished (or have no row)",
    "refused": "clean files that ended rejected or quarantined",
    "corrupt": "available rows whose size or SHA-256 is not what the client sent",
    "errors": "client requests that failed (status or exception)",
}


@dataclass
class Findings:
    """The audit's figures, a few example ids per failed check, and what the scan jobs did."""

    figures: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)
    refusals: Counter = field(default_factory=Counter)
    scan_jobs: int = 0
    scans_rerun: int = 0

    def flag(self, check, example):
        """Count one failure of check, keeping the first few examples (ids, keys, errors)."""
        self.figures[check] += 1
        examples = self.examples.setdefault(check, [])
        if len(examples) < 3:
            examples.append(example)

    @property
    def failed(self):
        """True when any check found something."""
        return any(self.figures[check] for check in CHECKS)


def load_rows():
    """Every upload row, by id (fresh from the database)."""
    db.session.expire_all()
    return {row.id: row for row in db.session.scalars(select(Upload))}


def _upload_id_of(file_key):
    # files/<user id>/<upload id>-<scan token>.<ext>: the token is hex, the id may hold "-".
    return file_key.rsplit("/", 1)[-1].rsplit(".", 1)[0].rsplit("-", 1)[0]


def _check_rows(findings, completed, rows):
    available = UploadStatus.AVAILABLE.value
    for upload_id, attempt in completed.items():
        row = rows.get(upload_id)
        if row is None or row.status not in FINAL | WAITING:
            findings.flag("lost", upload_id)
        elif row.status in FINAL - {available}:
            findings.flag("refused", upload_id)
            findings.refusals[f"{row.status}:{row.reason}"] += 1
        elif row.status == available and (row.size, row.sha256) != (attempt.size, attempt.sha256):
            findings.flag("corrupt", upload_id)
    # Every row, also those whose client did not see its complete succeed.
    for row in rows.values():
        if row.status in WAITING:
            findings.flag("stuck", row.id)


def _check_objects(findings, rows):
    storage = store.get_storage()
    keys = {prefix: set(storage.list_keys(prefix + "/")) for prefix in (store.INCOMING, store.FILES, store.DERIVATIVES)}
    available = [row for row in rows.values() if row.status == UploadStatus.AVAILABLE.value]
    for row in available:
        thumbnail_gone = row.thumbnail_key and row.thumbnail_key not in keys[store.DERIVATIVES]
        if row.file_key not in keys[store.FILES] or thumbnail_gone:
            findings.flag("missing", row.id)
    pointed_at = {row.file_key for row in available} | {row.thumbnail_key for row in available}
    for key in sorted((keys[store.FILES] | keys[store.DERIVATIVES]) - pointed_at):
        findings.flag("orphans", key)
    live_incoming = {row.incoming_key for row in rows.values() if row.status in KEEPS_INCOMING}
    for key in sorted(keys[store.INCOMING] - live_incoming):
        findings.flag("incoming_left", key)
    return {upload_id for upload_id, n in Counter(map(_upload_id_of, keys[store.FILES])).items() if n > 1}


def _promoted_twice(findings, upload_ids):
    """Upload ids whose scan job has more than one run that ended "available" (RQ keeps every result)."""
    twice = set()
    job_ids = [f"scan-{upload_id}" for upload_id in upload_ids]
    for job in Job.fetch_many(job_ids, connection=get_redis()):
        if job is None:
            continue
        findings.scan_jobs += 1
        results = job.results()
        if len(results) > 1:
            findings.scans_rerun += 1
        promotions = [r for r in results if r.type == Result.Type.SUCCESSFUL and r.return_value == "available"]
        if len(promotions) > 1:
            twice.add(job.id.removeprefix("scan-"))
    return twice


def audit(attempts, rows):
    """Compare what the clients completed with the rows, the bucket and the scan jobs' results.

    attempts have upload_id, size, sha256, error and completed (bench.client.Attempt).
    """
    findings = Findings()
    completed = {attempt.upload_id: attempt for attempt in attempts if attempt.completed}
    _check_rows(findings, completed, rows)
    two_objects = _check_objects(findings, rows)
    for upload_id in sorted(two_objects | _promoted_twice(findings, completed)):
        findings.flag("duplicates", upload_id)
    for attempt in attempts:
        if attempt.error:
            findings.flag("errors", attempt.error)
    return findings
