"""All models, imported here so Alembic sees the whole schema."""

from webapp.models import usage  # noqa: F401  (the usage triggers on uploads)
from webapp.models.api_token import ApiToken
from webapp.models.audit import AuditEvent
from webapp.models.file_request import FileRequest, RequestReport
from webapp.models.maintenance import MaintenanceRun
from webapp.models.moderation import BlockedHash, Report
from webapp.models.scanner import ScannerCheck
from webapp.models.share import Share
from webapp.models.upload import Upload, UploadStatus
from webapp.models.user import User
from webapp.models.webhook import WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiToken",
    "AuditEvent",
    "BlockedHash",
    "FileRequest",
    "MaintenanceRun",
    "Report",
    "RequestReport",
    "ScannerCheck",
    "Share",
    "Upload",
    "UploadStatus",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
]
