"""HTML pages: listing, details, downloads, deletes, and who may see what."""

import re
from datetime import timedelta

import pytest
import requests
from sqlalchemy import event

from tests.conftest import Api
from webapp.extensions import db
from webapp.models import Upload
from webapp.models.base import utcnow
from webapp.storage import incoming_key


def add_uploads(user, count, status="available", start=None):
    """Rows straight in the database, one second apart (newest last)."""
    start = start or utcnow() - timedelta(hours=1)
    rows = []
    for i in range(count):
        upload = Upload(
            user_id=user.id,
            filename=f"file-{i:03d}.txt",
            size=10 + i,
            declared_type="text/plain",
            detected_type="text/plain",
            status=status,
            incoming_key="pending",
            created_at=start + timedelta(seconds=i),
            expires_at=start + timedelta(days=1),
        )
        upload.incoming_key = incoming_key(user.id, upload.id or "x")
        rows.append(upload)
    db.session.add_all(rows)
    db.session.commit()
    return rows


def listed_names(html):
    return re.findall(r'href="/files/[^"/]+">(file-\d+\.txt)</a>', html)


def test_listing_is_newest_first_with_keyset_pages(app, api, user):
    app.config["FILES_PER_PAGE"] = 10
    add_uploads(user, 25)
    page = api.get("/files").get_data(as_text=True)
    names = listed_names(page)
    assert names == [f"file-{i:03d}.txt" for i in range(24, 14, -1)]
    seen = list(names)
    while match := re.search(r'href="(/files\?after=[^"]+)" rel="next"', page):
        page = api.get(match.group(1).replace("&amp;", "&")).get_data(as_text=True)
        seen += listed_names(page)
    assert seen == [f"file-{i:03d}.txt" for i in range(24, -1, -1)]


def test_keyset_cursor_is_not_an_offset(app, api, user):
    app.config["FILES_PER_PAGE"] = 5
    rows = add_uploads(user, 8)
    first = api.get("/files").get_data(as_text=True)
    cursor = re.search(r'after=([^"]+)" rel="next"', first).group(1)
    # A file added after the first page was read does not shift the second page.
    add_uploads(user, 1, start=utcnow())
    statements = []

    def record(conn, cursor_, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        second = listed_names(api.get(f"/files?after={cursor}").get_data(as_text=True))
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert second == [r.filename for r in reversed(rows[:3])]
    listing = [s for s in statements if "FROM uploads" in s and "ORDER BY" in s]
    # The second page is found by a WHERE on (created_at, id), not by skipping rows.
    assert len(listing) == 1
    assert "(uploads.created_at, uploads.id) <" in listing[0]


def test_bad_cursor_is_a_readable_422(api):
    response = api.get("/files?after=%%%not-a-cursor")
    assert response.status_code == 422
    assert "page link is not valid" in response.get_data(as_text=True)


def test_listing_shows_badges_and_polls_in_flight(app, api, user):
    add_uploads(user, 1, status="scanning")
    add_uploads(user, 1, status="available")
    html = api.get("/files").get_data(as_text=True)
    assert 'class="badge status-scanning"' in html
    assert 'class="badge status-available"' in html
    assert html.count("data-poll-url=") == 1


def test_widget_row_is_the_listing_row(app, api, user):
    """The upload widget's new row (files.row) is the very markup the listing renders for that file."""
    (upload,) = add_uploads(user, 1, status="scanning")
    upload.filename, in_flight = "<b>late</b>.txt", upload.id
    db.session.commit()
    page = api.get("/files").get_data(as_text=True)
    fragment = api.get(f"/files/{in_flight}/row")
    assert fragment.status_code == 200
    row = fragment.get_data(as_text=True).strip()
    assert row.startswith(f'<tr data-upload-id="{in_flight}"') and row.endswith("</tr>")
    assert row in page
    assert "&lt;b&gt;late&lt;/b&gt;.txt" in row and "data-poll-url=" in row


def test_filenames_are_escaped(app, api, user, run_worker):
    upload_id = api.upload(b"hi", filename="<img src=x onerror=alert(1)>.txt")
    for url in ("/files", f"/files/{upload_id}"):
        html = api.get(url).get_data(as_text=True)
        assert "<img src=x" not in html
        assert "&lt;img src=x onerror=alert(1)&gt;.txt" in html


def test_detail_shows_scan_result(app, api, run_worker):
    upload_id = api.upload(b"just text", filename="a.txt")
    run_worker()
    html = api.get(f"/files/{upload_id}").get_data(as_text=True)
    assert "available" in html and "text/plain" in html
    assert f"/files/{upload_id}/download" in html


def test_download_redirect_is_short_lived_and_not_cached(app, api, run_worker):
    upload_id = api.upload(b"secret stuff", filename="a.txt")
    run_worker()
    response = api.get(f"/files/{upload_id}/download")
    assert response.status_code == 302
    assert response.headers["Cache-Control"] == "no-store"
    location = response.headers["Location"]
    assert "X-Amz-Expires=120" in location
    assert "/files/" in location and "/incoming/" not in location
    got = requests.get(location, timeout=10)
    assert got.content == b"secret stuff"


def test_download_name_uses_detected_extension_and_no_injection(app, api, run_worker):
    upload_id = api.upload(b"plain words", filename="invoice.pdf.txt")
    db.session.get(Upload, upload_id).filename = 'CON";\r\nX-Evil: 1.exe'  # a legacy hostile row
    db.session.commit()
    run_worker()
    got = requests.get(api.get(f"/files/{upload_id}/download").headers["Location"], timeout=10)
    disposition = got.headers["Content-Disposition"]
    assert disposition.startswith("attachment; ")
    assert "\r" not in disposition and "\n" not in disposition
    assert "X-Evil" not in got.headers
    assert disposition.endswith(".txt")
    assert "filename*=UTF-8''CON%3BX-Evil%3A%201.txt" in disposition


def test_pending_file_is_not_downloadable(app, api):
    grant = api.begin()
    assert api.get(f"/files/{grant['upload']['id']}/download").status_code == 404


def test_security_headers_on_pages(app, api):
    response = api.get("/files")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert app.config["S3_ENDPOINT_URL"] in csp  # the widget PUTs there
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "<script>" not in response.get_data(as_text=True)  # no inline script
    assert "Access-Control-Allow-Origin" not in response.headers


def test_delete_needs_csrf(app, api, run_worker):
    upload_id = api.upload(b"keep me")
    response = api.client.post(f"/files/{upload_id}/delete")
    assert response.status_code == 400
    assert "did not come from this site" in response.get_data(as_text=True)
    assert db.session.get(Upload, upload_id) is not None


# --- Access control: another user's ids do not exist; anonymous visitors are sent to log in ---

OWNER_ROUTES = [
    ("GET", "/files/{id}"),
    ("GET", "/files/{id}/download"),
    ("GET", "/files/{id}/preview"),
    ("GET", "/files/{id}/row"),
    ("GET", "/files/{id}/delete"),
    ("POST", "/files/{id}/delete"),
    ("GET", "/api/uploads/{id}"),
    ("DELETE", "/api/uploads/{id}"),
    ("POST", "/api/uploads/{id}/complete"),
    ("POST", "/api/uploads/{id}/parts"),
]


@pytest.fixture
def owned_file(app, api, run_worker):
    upload_id = api.upload(b"mine alone", filename="mine.txt")
    run_worker()
    return upload_id


def _call(client_api, method, url):
    if method == "GET":
        return client_api.get(url)
    if method == "DELETE":
        return client_api.delete(url)
    if url.startswith("/api/"):
        return client_api.post(url, json={"part_numbers": [1]})
    return client_api.form_post(url)


@pytest.mark.parametrize("method, route", OWNER_ROUTES)
def test_another_users_id_is_404(app, owned_file, other_api, method, route):
    response = _call(other_api, method, route.format(id=owned_file))
    assert response.status_code == 404
    assert "X-Amz" not in response.get_data(as_text=True)
    assert "Location" not in response.headers
    if route.startswith("/api/"):
        assert response.get_json()["error"]["code"] == "not_found"
    assert db.session.get(Upload, owned_file).status == "available"


@pytest.mark.parametrize("method, route", OWNER_ROUTES)
@pytest.mark.parametrize("bad_id, status", [("A" * 22, 404), ("A" * 400, 404), ("..%2F..%2Fetc", 404), ("%00", 400)])
def test_unknown_id_is_404(app, api, method, route, bad_id, status):
    """Unknown and malformed ids are not found; a NUL anywhere in a URL is refused as a bad request."""
    assert _call(api, method, route.format(id=bad_id)).status_code == status


@pytest.mark.parametrize("method, route", [r for r in OWNER_ROUTES if r[0] == "GET"] + [("GET", "/files")])
def test_anonymous_is_sent_to_login(app, owned_file, method, route):
    client = app.test_client()
    response = client.get(route.format(id=owned_file))
    if route.startswith("/api/"):
        assert response.status_code == 401
    else:
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/auth/login?next=")


def test_banned_user_session_stops_working(app, make_user):
    banned = make_user("banned@example.com")
    client_api = Api(app.test_client(user=banned))
    banned.is_banned = True
    db.session.commit()
    assert client_api.get("/files").status_code == 302
    assert client_api.get("/api/uploads/xyz").status_code == 401


def test_admin_can_view_and_download_any_file(app, owned_file, make_user):
    admin_api = Api(app.test_client(user=make_user("admin@example.com", admin=True)))
    assert admin_api.get(f"/files/{owned_file}").status_code == 200
    response = admin_api.get(f"/files/{owned_file}/download")
    assert response.status_code == 302
    assert requests.get(response.headers["Location"], timeout=10).content == b"mine alone"


def test_delete_asks_for_confirmation_first(app, api, run_worker):
    upload_id = api.upload(b"think twice", filename="keep?.txt")
    run_worker()
    page = api.get(f"/files/{upload_id}/delete")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Delete this file?" in html and "keep?.txt" in html and 'name="csrf_token"' in html
    assert db.session.get(Upload, upload_id).status == "available"  # a GET deletes nothing
    response = api.form_post(f"/files/{upload_id}/delete")
    assert response.status_code == 302 and response.headers["Location"] == "/files"
    db.session.expire_all()
    assert db.session.get(Upload, upload_id) is None
    assert "Deleted keep?.txt." in api.get("/files").get_data(as_text=True)


@pytest.mark.parametrize(
    "raw",
    [
        "0001-01-01T00:00:00+05:00|abc",
        "9999-12-31T23:59:59-05:00|abc",
        "2026-01-01T00:00:00|abc",
        "2026-01-01T00:00:00+00:00|abc\x00",
        "2026-01-01T00:00:00+00:00|" + "a" * 100,
        "no separator",
    ],
)
def test_hostile_cursors_are_422_not_500(api, raw):
    import base64

    cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    response = api.get(f"/files?after={cursor}")
    assert response.status_code == 422


@pytest.mark.parametrize(
    "path", ["/files/%00", "/files/abc%00def/download", "/api/uploads/%00", "/files?after=%00", "/files/%E2%80%AE"]
)
def test_nul_and_odd_ids_never_500(api, path):
    response = api.get(path)
    assert response.status_code in (400, 404)
