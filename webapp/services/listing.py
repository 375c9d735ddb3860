"""A user's files as a listing: search by name, filter by kind and status, sort, and keyset pages.

Every option is a query parameter of `/files` (`q`, `kind`, `status`, `request`, `sort`, `order`,
`view`, `after`), so pages and tests can link to any listing. A page's cursor names the sort it was made
for and the last row's sort key and id; the next page starts after that pair, compared as one row
value, so pages stay exact under every sort while files come and go, and a deep page costs what
the first one does (each sort has its (user_id, key, id) index).
"""

import base64
import binascii
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import func, or_, select, tuple_
from sqlalchemy.orm import selectinload

from webapp.extensions import db
from webapp.models import Upload
from webapp.models.upload import LISTED, UPLOAD_ID
from webapp.services.refusals import InvalidInput

#: What each kind means, as types (exact) or type prefixes (ending in "/").
KINDS = {
    "image": ("image/",),
    "video": ("video/",),
    "audio": ("audio/",),
    "document": ("application/pdf",),
    "archive": ("application/zip",),
    "text": ("text/",),
}
#: The sort keys: name (case-insensitive), size, date (uploaded).
SORTS = {
    "name": func.lower(Upload.filename),
    "size": Upload.size,
    "date": Upload.created_at,
}
STATUSES = tuple(status.value for status in LISTED)
VIEWS = ("list", "grid")
MAX_QUERY = 200


@dataclass(frozen=True)
class Listing:
    """What the listing shows; the defaults are the plain listing, newest first."""

    q: str = ""
    kind: str = ""
    status: str = ""
    sort: str = "date"
    order: str = "desc"
    view: str = "list"
    after: str = ""
    #: the id of a file request of the user's: only what arrived through it
    request: str = ""

    @classmethod
    def from_args(cls, args):
        """The listing the query parameters ask for, or InvalidInput naming the parameter that is wrong."""
        q = " ".join((args.get("q") or "").split())
        if len(q) > MAX_QUERY:
            raise InvalidInput(f"Search for at most {MAX_QUERY} characters.", "invalid_query")
        sort = _choice(args, "sort", tuple(SORTS), "date")
        return cls(
            q=q,
            kind=_choice(args, "kind", ("", *KINDS)),
            status=_choice(args, "status", ("", *STATUSES)),
            sort=sort,
            order=_choice(args, "order", ("asc", "desc"), _default_order(sort)),
            view=_choice(args, "view", VIEWS, "list"),
            after=args.get("after") or "",
            request=_request_id(args.get("request") or ""),
        )

    def args(self, **changes):
        """The query parameters of this listing (with changes), defaults left out: for links."""
        listing = replace(self, **changes)
        default = Listing(order=_default_order(listing.sort))
        return {
            name: getattr(listing, name)
            for name in ("q", "kind", "status", "request", "sort", "order", "view", "after")
            if getattr(listing, name) != getattr(default, name)
        }

    @property
    def filtered(self):
        return bool(self.q or self.kind or self.status or self.request)


def _default_order(sort):
    return "asc" if sort == "name" else "desc"


def _choice(args, name, allowed, default=""):
    value = args.get(name, default) or default
    if value not in allowed:
        choices = ", ".join(repr(choice) for choice in allowed if choice)
        raise InvalidInput(f"{name} must be one of {choices}.", f"invalid_{name}")
    return value


def _request_id(value):
    if value and not (len(value) <= 10 and value.isascii() and value.isdigit() and 0 < int(value) < 2**31):
        raise InvalidInput("request must be the id of one of your file requests.", "invalid_request")
    return value


def _kind_filter(kind):
    shown = func.coalesce(Upload.detected_type, Upload.declared_type)
    return or_(*(shown.startswith(t) if t.endswith("/") else shown == t for t in KINDS[kind]))


def page(user, listing, limit=25):
    """One page of the user's files as listing asks, and the cursor of the next page (None at the end)."""
    key = SORTS[listing.sort]
    descending = listing.order == "desc"
    query = select(Upload).where(Upload.user_id == user.id, Upload.status.in_(STATUSES))
    if listing.status:
        query = query.where(Upload.status == listing.status)
    if listing.kind:
        query = query.where(_kind_filter(listing.kind))
    if listing.request:
        query = query.where(Upload.file_request_id == int(listing.request))
    if listing.q:
        query = query.where(func.lower(Upload.filename).contains(listing.q.lower(), autoescape=True))
    if listing.after:
        value, upload_id = decode_cursor(listing.after, listing.sort)
        position = tuple_(key, Upload.id)
        query = query.where(position < tuple_(value, upload_id) if descending else position > tuple_(value, upload_id))
    order = (key.desc(), Upload.id.desc()) if descending else (key.asc(), Upload.id.asc())
    query = query.options(selectinload(Upload.file_request))  # the "via <request>" marks, in one query
    rows = list(db.session.scalars(query.order_by(*order).limit(limit + 1)))
    next_cursor = encode_cursor(rows[limit - 1], listing.sort) if len(rows) > limit else None
    return rows[:limit], next_cursor


def _sort_value(upload, sort):
    if sort == "name":
        return upload.filename.lower()
    if sort == "size":
        return upload.size
    return upload.created_at.isoformat()


def encode_cursor(upload, sort="date"):
    """An opaque keyset cursor pointing after upload in a listing sorted by sort."""
    raw = json.dumps([sort, _sort_value(upload, sort), upload.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor, sort):
    """(sort key value, upload id) from a cursor made for sort, or InvalidInput."""
    try:
        made_for, value, upload_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if made_for != sort or not isinstance(upload_id, str) or not UPLOAD_ID.fullmatch(upload_id):
            raise ValueError(cursor)
        return _parse_value(sort, value), upload_id
    except (ValueError, TypeError, UnicodeDecodeError, OverflowError, RecursionError, binascii.Error):
        raise InvalidInput("That page link is not valid.", "invalid_cursor") from None


def _parse_value(sort, value):
    if sort == "name":
        if not isinstance(value, str) or len(value) > 1024 or "\x00" in value:
            raise ValueError(value)
        value.encode("utf-8")  # a lone surrogate is no name (UnicodeEncodeError is a ValueError)
        return value
    if sort == "size":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
            raise ValueError(value)
        return value
    stamp = datetime.fromisoformat(value)
    if stamp.tzinfo is None:
        raise ValueError(value)
    stamp.astimezone(UTC)  # an instant that UTC cannot hold is not a cursor we made
    return stamp


def empty_state(user):
    """True when the user has no listed file at all (not merely none matching a search)."""
    return (
        db.session.scalar(select(Upload.id).where(Upload.user_id == user.id, Upload.status.in_(STATUSES)).limit(1))
        is None
    )
