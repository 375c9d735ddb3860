"""Outbound webhooks: endpoints, the events they receive, and delivering them.

An event becomes one delivery row per interested endpoint, written in the same transaction as the
change it tells about (a verdict, a deletion, a report), so neither can happen without the other; the
rows are queued for the `webhooks` RQ queue once that transaction commits. Nothing in the upload
pipeline waits for a receiver: a delivery is an HTTP POST made by a worker, retried with backoff, cut
off by WEBHOOK_TIMEOUT, and logged on the endpoint's page, where it can be replayed.

Each delivery is signed: `Satchel-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
with the endpoint's secret (README, "Webhooks", shows how to check it).
"""

import hashlib
import hmac
import json
import logging
import time
import uuid

from flask import current_app
from sqlalchemy import and_, event, or_, select

from webapp import outbound, queue
from webapp.extensions import db
from webapp.models import Upload, User, WebhookDelivery, WebhookEndpoint
from webapp.models.base import utcnow
from webapp.models.webhook import EVENTS, new_webhook_secret
from webapp.services import audit
from webapp.services.refusals import InvalidInput, NotFound

log = logging.getLogger(__name__)
MAX_ENDPOINTS = 20
#: Attempts at one delivery before it is failed for good (RQ's first try and its retries; a replay
#: starts a fresh count).
MAX_ATTEMPTS = 6
#: Upload statuses that are events of their own when a scan (or a moderator) sets them.
VERDICT_EVENTS = {"available": "upload.available", "rejected": "upload.rejected", "quarantined": "upload.quarantined"}
_QUEUED = "satchel.webhook_deliveries"


# --- Endpoints --------------------------------------------------------------------------------------


def create_endpoint(user, url, events, all_users=False, allow_private=False, ip=None):
    """Register an HTTPS endpoint of the user's for events. all_users (every user's events) and
    allow_private (it may resolve to private addresses) are an admin's to set."""
    if (all_users or allow_private) and not user.is_admin:
        raise NotFound()
    url = (url or "").strip()
    if not url or len(url) > 2048:
        raise InvalidInput("Give the endpoint's https:// URL.", "invalid_url")
    chosen = [name for name in EVENTS if name in set(events or ())]
    if not chosen or set(events) - set(EVENTS):
        raise InvalidInput(f"Choose at least one event of {', '.join(EVENTS)}.", "invalid_events")
    try:
        outbound.check_url(url, allow_private=allow_private)
    except ValueError as exc:
        raise InvalidInput(str(exc), "invalid_url") from None
    except (outbound.AddressRefused, outbound.Unresolvable) as exc:
        raise InvalidInput(f"{exc} Only an admin can allow private ones.", "private_address") from None
    count = db.session.scalar(
        select(db.func.count()).select_from(WebhookEndpoint).where(WebhookEndpoint.user_id == user.id)
    )
    if count >= MAX_ENDPOINTS:
        raise InvalidInput(f"You have {MAX_ENDPOINTS} endpoints; delete one first.", "too_many_endpoints")
    endpoint = WebhookEndpoint(
        user_id=user.id, url=url, events=" ".join(chosen), all_users=all_users, allow_private=allow_private
    )
    db.session.add(endpoint)
    db.session.flush()
    details = {"url": url, "events": chosen, "all_users": all_users, "allow_private": allow_private}
    audit.record("webhook_created", user, "webhook", endpoint.id, details=details, ip=ip)
    db.session.commit()
    return endpoint


def endpoints_of(user):
    return list(
        db.session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.user_id == user.id).order_by(WebhookEndpoint.id.desc())
        )
    )


def own_endpoint(user, endpoint_id):
    """One of the user's endpoints, or NotFound."""
    endpoint = db.session.get(WebhookEndpoint, endpoint_id) if 0 < endpoint_id < 2**31 else None
    if endpoint is None or endpoint.user_id != user.id:
        raise NotFound()
    return endpoint


def rotate_secret(user, endpoint_id, ip=None):
    """Give an endpoint a new signing secret (deliveries made from now on, retries included, use it)."""
    endpoint = own_endpoint(user, endpoint_id)
    endpoint.secret = new_webhook_secret()
    audit.record("webhook_secret_rotated", user, "webhook", endpoint.id, ip=ip)
    db.session.commit()
    return endpoint


def delete_endpoint(user, endpoint_id, ip=None):
    """Delete an endpoint and its delivery log; deliveries still queued find nothing to send."""
    endpoint = own_endpoint(user, endpoint_id)
    audit.record("webhook_deleted", user, "webhook", endpoint.id, details={"url": endpoint.url}, ip=ip)
    db.session.delete(endpoint)
    db.session.commit()


def deliveries_of(endpoint, limit=50):
    return list(
        db.session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint.id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
    )


def replay(user, endpoint_id, delivery_id):
    """Send a delivery of the user's endpoint again (the same body and id, a fresh signature)."""
    endpoint = own_endpoint(user, endpoint_id)
    delivery = db.session.get(WebhookDelivery, delivery_id) if 0 < delivery_id < 2**31 else None
    if delivery is None or delivery.endpoint_id != endpoint.id:
        raise NotFound()
    delivery.status, delivery.attempts = "pending", 0
    _queue_after_commit(delivery.id)
    db.session.commit()
    return delivery


# --- Events -----------------------------------------------------------------------------------------


def _upload_data(upload):
    return {**upload.to_dict(), "owner_id": upload.user_id}


def emit(event_name, upload_id, extra=None, for_admins=None):
    """Record a delivery of event_name about an upload for every endpoint that wants it (its owner's,
    and admins' endpoints for all users), in the caller's transaction; they are queued when it commits.
    for_admins: data only admins' endpoints for all users receive (a report's words, say)."""
    subscribed = select(WebhookEndpoint.id).where(WebhookEndpoint.events.contains(event_name)).limit(1)
    if db.session.scalar(subscribed) is None:
        return []  # the usual case: nobody listens, and the upload is not even read
    upload = db.session.execute(
        select(Upload).where(Upload.id == upload_id).execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if upload is None:
        return []
    # The owner's endpoints, and those of admins (not banned) for every user's events.
    for_everyone = and_(WebhookEndpoint.all_users.is_(True), User.is_admin.is_(True), User.is_banned.is_(False))
    candidates = db.session.scalars(
        select(WebhookEndpoint)
        .join(User, User.id == WebhookEndpoint.user_id)
        .where(
            WebhookEndpoint.events.contains(event_name),
            or_(WebhookEndpoint.user_id == upload.user_id, for_everyone),
        )
    )
    wanted = [endpoint for endpoint in candidates if event_name in endpoint.event_set]
    made = []
    for endpoint in wanted:
        uid = uuid.uuid4().hex
        data = {"upload": _upload_data(upload), **(extra or {})}
        if endpoint.all_users and for_admins:
            data.update(for_admins)
        body = {"id": uid, "type": event_name, "created_at": utcnow().isoformat(), "data": data}
        delivery = WebhookDelivery(
            uid=uid,
            endpoint_id=endpoint.id,
            event=event_name,
            payload=json.dumps(body, separators=(",", ":"), sort_keys=True),
            status="pending",
        )
        db.session.add(delivery)
        made.append(delivery)
    db.session.flush()
    for delivery in made:
        _queue_after_commit(delivery.id)
    return made


def _queue_after_commit(delivery_id):
    db.session.info.setdefault(_QUEUED, set()).add(delivery_id)


@event.listens_for(db.session, "after_commit")
def _enqueue_committed(session):
    ids = session.info.pop(_QUEUED, None)
    for delivery_id in sorted(ids or ()):
        queue.enqueue_webhook(delivery_id)  # Redis down: maintenance's requeue_webhooks sends it later


@event.listens_for(db.session, "after_rollback")
def _forget_rolled_back(session):
    session.info.pop(_QUEUED, None)


# --- Delivering -------------------------------------------------------------------------------------


def signature(secret, timestamp, body):
    """The Satchel-Signature header value for body (bytes) sent at timestamp."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def deliver(delivery_id, retries_left=0):
    """Make one attempt at a delivery; returns its status. An answer other than 2xx, a timeout or a
    failed connection raises RetryLater while RQ has retries left (it tries again with backoff); then
    the delivery is failed. An address that is not allowed refuses it at once, for good. The attempt
    is counted before it is made, so one that never ends (its worker killed) still counts towards
    MAX_ATTEMPTS."""
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.status in ("delivered", "refused"):
        return delivery.status if delivery else None
    if delivery.attempts >= MAX_ATTEMPTS:
        return _settle(delivery, "failed", error=delivery.error or "out of attempts")
    endpoint = delivery.endpoint
    body = delivery.payload.encode()
    headers = {
        "Content-Type": "application/json",
        "Satchel-Event": delivery.event,
        "Satchel-Delivery": delivery.uid,
        "Satchel-Signature": signature(endpoint.secret, int(time.time()), body),
    }
    config = current_app.config
    delivery.attempts += 1
    delivery.last_attempt_at = utcnow()
    db.session.commit()
    try:
        code, _ = outbound.post(
            endpoint.url,
            body,
            headers,
            timeout=(config["WEBHOOK_CONNECT_TIMEOUT"], config["WEBHOOK_TIMEOUT"]),
            allow_private=endpoint.allow_private,
            verify=config["WEBHOOK_CA_BUNDLE"] or True,
        )
    except outbound.AddressRefused as exc:
        return _settle(delivery, "refused", error=str(exc))
    except (outbound.DeliveryError, ValueError) as exc:
        return _settle(delivery, "retrying" if retries_left else "failed", error=str(exc), retry=bool(retries_left))
    if 200 <= code < 300:
        delivery.delivered_at = utcnow()
        return _settle(delivery, "delivered", code=code)
    return _settle(
        delivery, "retrying" if retries_left else "failed", code=code, error=f"HTTP {code}", retry=bool(retries_left)
    )


class RetryLater(Exception):
    """The receiver did not take the delivery; RQ tries again after its backoff."""


def _settle(delivery, status, code=None, error=None, retry=False):
    delivery.status = status
    delivery.response_code = code
    delivery.error = (error or None) and error[:255]
    db.session.commit()
    from webapp import metrics

    metrics.webhook_delivery(status)
    if retry:
        raise RetryLater(f"delivery {delivery.uid}: {error}")
    return status


def requeue_stale(now, older_than):
    """Queue again deliveries still waiting well after they were made or last tried (Redis lost their
    job, was down when they were made, or their worker died mid-attempt), while they have attempts
    left; returns how many."""
    before = now - older_than
    stale = list(
        db.session.scalars(
            select(WebhookDelivery.id).where(
                WebhookDelivery.status.in_(("pending", "retrying")),
                WebhookDelivery.attempts < MAX_ATTEMPTS,
                WebhookDelivery.created_at < before,
                or_(WebhookDelivery.last_attempt_at.is_(None), WebhookDelivery.last_attempt_at < before),
            )
        )
    )
    for delivery_id in stale:
        queue.enqueue_webhook(delivery_id)
    return len(stale)
