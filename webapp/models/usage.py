"""Each user's usage counters, kept by the database in the transaction that changes an upload.

`users.bytes_held` sums the sizes of uploads available or quarantined, `users.bytes_reserved` those
still on their way to a verdict, and `users.pending_uploads` counts those waiting for their bytes.
Triggers on `uploads` change them with every insert, delete and change of status, size or owner,
whichever code (ORM or bulk UPDATE) makes it, so a quota check reads three columns of a row it has
already locked instead of summing every upload the user holds. `services.usage.check_counters`
finds and corrects any drift.
"""

from sqlalchemy import DDL, event

from webapp.models.upload import IN_FLIGHT, Upload, UploadStatus

#: Statuses whose bytes the user holds, and those reserved for uploads still in flight.
HELD = (UploadStatus.AVAILABLE, UploadStatus.QUARANTINED)
RESERVED = IN_FLIGHT


def _names(statuses):
    return ", ".join(f"'{status.value}'" for status in statuses)


def _share(row, statuses, value):
    """row's (NEW or OLD) share of a counter: value when its status is one of statuses, else 0."""
    return f"(CASE WHEN {row}.status IN ({_names(statuses)}) THEN {value} ELSE 0 END)"


def _apply(row, sign):
    """Add (sign "+") or remove (sign "-") row's share of its owner's counters. Built from constants only."""
    return (
        f"UPDATE users SET bytes_held = bytes_held {sign} {_share(row, HELD, row + '.size')}, "  # noqa: S608
        f"bytes_reserved = bytes_reserved {sign} {_share(row, RESERVED, row + '.size')}, "
        f"pending_uploads = pending_uploads {sign} {_share(row, [UploadStatus.PENDING], 1)} "
        f"WHERE id = {row}.user_id AND {row}.status IN ({_names(HELD + RESERVED)})"
    )


_CHANGED = "OLD.status IS DISTINCT FROM NEW.status OR OLD.size <> NEW.size OR OLD.user_id <> NEW.user_id"

#: The triggers, per dialect (migration 0007 creates them too).
USAGE_TRIGGERS = {
    "postgresql": [
        f"""CREATE OR REPLACE FUNCTION uploads_usage() RETURNS trigger AS $$
           BEGIN
             IF TG_OP <> 'INSERT' THEN {_apply("OLD", "-")}; END IF;
             IF TG_OP <> 'DELETE' THEN {_apply("NEW", "+")}; END IF;
             RETURN NULL;
           END; $$ LANGUAGE plpgsql""",
        """CREATE TRIGGER uploads_usage_insert_delete AFTER INSERT OR DELETE ON uploads
           FOR EACH ROW EXECUTE FUNCTION uploads_usage()""",
        f"""CREATE TRIGGER uploads_usage_update AFTER UPDATE OF status, size, user_id ON uploads
           FOR EACH ROW WHEN ({_CHANGED}) EXECUTE FUNCTION uploads_usage()""",
    ],
    "sqlite": [
        f"""CREATE TRIGGER uploads_usage_insert AFTER INSERT ON uploads
           BEGIN {_apply("NEW", "+")}; END""",
        f"""CREATE TRIGGER uploads_usage_delete AFTER DELETE ON uploads
           BEGIN {_apply("OLD", "-")}; END""",
        f"""CREATE TRIGGER uploads_usage_update AFTER UPDATE OF status, size, user_id ON uploads
           WHEN {_CHANGED.replace("IS DISTINCT FROM", "IS NOT")}
           BEGIN {_apply("OLD", "-")}; {_apply("NEW", "+")}; END""",
    ],
}

for _dialect, _statements in USAGE_TRIGGERS.items():
    for _statement in _statements:
        event.listen(Upload.__table__, "after_create", DDL(_statement).execute_if(dialect=_dialect))
