"""An uploaded file and its journey from pending to available."""

import enum
import re
import secrets

from sqlalchemy import DDL, BigInteger, Boolean, ForeignKey, Index, Integer, String, event, false, func, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow
from webapp.reasons import reason_text


class UploadStatus(enum.StrEnum):
    """Where an upload is in its lifecycle (see DESIGN.md)."""

    PENDING = "pending"
    UPLOADED = "uploaded"
    SCANNING = "scanning"
    AVAILABLE = "available"
    REJECTED = "rejected"
    QUARANTINED = "quarantined"
    EXPIRED = "expired"
    REMOVED = "removed"
    DELETED = "deleted"


#: Statuses still on their way to a verdict.
IN_FLIGHT = (UploadStatus.PENDING, UploadStatus.UPLOADED, UploadStatus.SCANNING)
#: Statuses of uploads whose bytes arrived and wait for the scan's verdict.
AWAITING_VERDICT = (UploadStatus.UPLOADED, UploadStatus.SCANNING)
#: What a file sent by the upload form is stored as, and declared as when its name tells no allowed
#: type: its scan then goes by what libmagic finds alone.
FORM_TYPE = "application/octet-stream"
#: The same, as the condition of a partial index (built from constants only).
AWAITING_VERDICT_SQL = "status IN ({})".format(", ".join(f"'{status.value}'" for status in AWAITING_VERDICT))
#: Statuses that count against the owner's quota.
COUNTS_AGAINST_QUOTA = IN_FLIGHT + (UploadStatus.AVAILABLE, UploadStatus.QUARANTINED)
#: Statuses shown in the owner's listing.
LISTED = COUNTS_AGAINST_QUOTA + (UploadStatus.REJECTED, UploadStatus.REMOVED)


#: What new_upload_id makes (token_urlsafe(16)): anything else cannot name an upload.
UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


def new_upload_id():
    """A random, unguessable id (128 bits, URL-safe)."""
    return secrets.token_urlsafe(16)


class Upload(db.Model):
    """One file a user sent; the original filename lives only here, never in object keys."""

    __tablename__ = "uploads"
    __table_args__ = (
        Index("ix_uploads_user_created", "user_id", "created_at", "id"),
        # The listing's other sorts, keyset pages included (services/listing.py).
        Index("ix_uploads_user_name", "user_id", text("lower(filename)"), "id"),
        Index("ix_uploads_user_size", "user_id", "size", "id"),
        Index("ix_uploads_status_updated", "status", "updated_at"),
        # A user's files waiting for a verdict, counted whenever one more is queued (few rows, even
        # for a user holding many files).
        Index(
            "ix_uploads_awaiting_verdict_user",
            "user_id",
            postgresql_where=text(AWAITING_VERDICT_SQL),
            sqlite_where=text(AWAITING_VERDICT_SQL),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_upload_id)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    #: original name as the user gave it (NFC), for display and downloads only
    filename: Mapped[str] = mapped_column(String(1024), nullable=False)
    #: size the client declared and the presigned URL signed
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    declared_type: Mapped[str] = mapped_column(String(127), nullable=False)
    #: type libmagic found; the only one ever used when serving
    detected_type: Mapped[str | None] = mapped_column(String(127))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=UploadStatus.PENDING.value)
    #: machine-readable reason for rejected/quarantined/expired
    reason: Mapped[str | None] = mapped_column(String(64))
    #: virus name reported by the scanner
    signature: Mapped[str | None] = mapped_column(String(255))
    #: the scanner's engine and signature database at the scan ("ClamAV 1.4.6/27000/<date>")
    scanner_version: Mapped[str | None] = mapped_column(String(255))
    #: where the browser writes (incoming/...)
    incoming_key: Mapped[str] = mapped_column(String(512), nullable=False)
    #: where the verified object lives (files/...), set at promotion
    file_key: Mapped[str | None] = mapped_column(String(512))
    thumbnail_key: Mapped[str | None] = mapped_column(String(512))
    #: an image's copy served by share links: re-encoded without location or camera metadata
    shared_key: Mapped[str | None] = mapped_column(String(512))
    #: ETag of the incoming object that was scanned
    etag: Mapped[str | None] = mapped_column(String(128))
    sha256: Mapped[str | None] = mapped_column(String(64))
    multipart_upload_id: Mapped[str | None] = mapped_column(String(1024))
    part_size: Mapped[int | None] = mapped_column(BigInteger)
    part_count: Mapped[int | None] = mapped_column(Integer)
    #: random token of the scan run that owns the row; guards compare-and-set updates
    scan_token: Mapped[str | None] = mapped_column(String(32))
    #: RQ job id that last touched the row
    job_id: Mapped[str | None] = mapped_column(String(64))
    #: scans that crashed, timed out or failed for a reason other than a dependency being down
    scan_failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    #: accepted while scanning was switched off (SCANNER=disabled): scanned once a scanner is configured
    unscanned: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
    #: sent by the plain HTML form (a presigned POST): until its bytes arrive, size is the most it may
    #: be (what it reserves), and its name and type are learnt from storage
    via_form: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
    #: sent through one of the owner's file requests (by someone without an account, as a rule)
    file_request_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("file_requests.id", ondelete="SET NULL"), index=True
    )
    #: SHA-256 of the sender's browser cookie, for a request's uploads: what that browser may see
    request_sender: Mapped[str | None] = mapped_column(String(64))
    created_at = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at = mapped_column(UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow)
    #: when a pending upload stops accepting bytes
    expires_at = mapped_column(UTCDateTime, nullable=False)
    uploaded_at = mapped_column(UTCDateTime)
    scanned_at = mapped_column(UTCDateTime)

    owner = relationship("User")
    file_request = relationship("FileRequest")

    @property
    def is_available(self):
        return self.status == UploadStatus.AVAILABLE.value

    @property
    def derived_keys(self):
        """The objects made from the file (preview, shared copy), those there are."""
        return [key for key in (self.thumbnail_key, self.shared_key) if key]

    @property
    def in_flight(self):
        return self.status in {s.value for s in IN_FLIGHT}

    def to_dict(self):
        """The JSON shape the API and the widget use."""
        return {
            "id": self.id,
            "status": self.status,
            "reason": self.reason,
            "message": reason_text(self.reason) if self.reason else None,
            "signature": self.signature,
            "filename": self.filename,
            "size": self.size,
            "content_type": self.declared_type,
            "detected_type": self.detected_type,
            "sha256": self.sha256,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "scanned_at": self.scanned_at.isoformat() if self.scanned_at else None,
            "unscanned": self.unscanned,
        }

    def __repr__(self):
        return f"<Upload {self.id} {self.status}>"


# Name search by substring on PostgreSQL: LIKE '%...%' on lower(filename) through a trigram index.
Index(
    "ix_uploads_filename_trgm",
    func.lower(Upload.filename).label("filename_lower"),
    postgresql_using="gin",
    postgresql_ops={"filename_lower": "gin_trgm_ops"},
).ddl_if(dialect="postgresql")
event.listen(
    db.metadata, "before_create", DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql")
)
