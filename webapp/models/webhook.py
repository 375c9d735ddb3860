"""Outbound webhooks: endpoints that want to hear about uploads, and each delivery to them."""

import secrets

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow

#: The events an endpoint can ask for.
EVENTS = (
    "upload.available",
    "upload.rejected",
    "upload.quarantined",
    "upload.removed",
    "upload.deleted",
    "report.created",
)


def new_webhook_secret():
    """The key deliveries are signed with (HMAC-SHA256), shown to the endpoint's owner."""
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookEndpoint(db.Model):
    """An HTTPS URL that receives signed JSON about one user's uploads (or every user's, for an admin's)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    #: space-separated, from EVENTS
    events: Mapped[str] = mapped_column(String(255), nullable=False)
    secret: Mapped[str] = mapped_column(String(64), nullable=False, default=new_webhook_secret)
    #: an admin's endpoint for the events of every user
    all_users: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
    #: an admin allowed it to resolve to loopback, link-local or private addresses
    allow_private: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
    created_at = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    owner = relationship("User")

    @property
    def event_set(self):
        return frozenset(self.events.split())


class WebhookDelivery(db.Model):
    """One event sent (or to be sent) to one endpoint: the exact body, and how the last attempt went."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: the id receivers see (Satchel-Delivery, and "id" in the body): the same on every retry and replay
    uid: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    endpoint_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False
    )
    event: Mapped[str] = mapped_column(String(32), nullable=False)
    #: the JSON body, as sent (signatures cover these bytes)
    payload: Mapped[str] = mapped_column(Text, nullable=False)
    #: pending, retrying, delivered, failed (out of retries) or refused (the address is not allowed)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    response_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(255))
    created_at = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    last_attempt_at = mapped_column(UTCDateTime)
    delivered_at = mapped_column(UTCDateTime)

    endpoint = relationship("WebhookEndpoint")
