"""Share links grown up: an optional password, an optional download limit, counted downloads, one
answer for every link that does not work, throttled password attempts, and pages kept private."""

import re
from datetime import timedelta

import pytest
import requests

from tests.conftest import page_token
from webapp.extensions import db
from webapp.models import Share
from webapp.models.base import utcnow


def make_link(api, upload_id, **fields):
    """Create a link with the detail page's form fields; returns its token."""
    before = set(re.findall(r"/s/([A-Za-z0-9_-]{40,})", api.get(f"/files/{upload_id}").get_data(as_text=True)))
    response = api.form_post(f"/files/{upload_id}/shares", {"days": "7", **fields})
    assert response.status_code == 302
    after = set(re.findall(r"/s/([A-Za-z0-9_-]{40,})", api.get(f"/files/{upload_id}").get_data(as_text=True)))
    [token] = after - before
    return token


def unlock(client, token, password):
    page = client.get(f"/s/{token}")  # the session's CSRF token, from the page (or the 404 page's meta)
    return client.post(f"/s/{token}/unlock", data={"password": password, "csrf_token": page_token(page.text)})


def comparable(response):
    """A refusal as a visitor sees it, less what differs per session (the CSRF token)."""
    return response.status_code, re.sub(r'content="[^"]*"', "", response.get_data(as_text=True))


def share(token):
    db.session.expire_all()
    return db.session.query(Share).filter_by(token=token).one()


def test_a_password_keeps_the_file_hidden_until_it_is_given(app, api, available):
    token = make_link(api, available, password="open sesame")
    visitor = app.test_client()
    locked = visitor.get(f"/s/{token}")
    assert locked.status_code == 200 and "This link needs a password" in locked.text
    assert "normal.txt" not in locked.text and "SHA-256" not in locked.text
    assert visitor.get(f"/s/{token}/download").status_code == 404
    assert visitor.get(f"/s/{token}/preview").status_code == 404

    assert unlock(visitor, token, "open sesame").status_code == 302
    page = visitor.get(f"/s/{token}")
    assert "normal.txt" in page.text
    location = visitor.get(f"/s/{token}/download").headers["Location"]
    assert requests.get(location, timeout=10).content == b"a perfectly normal text file"
    assert app.test_client().get(f"/s/{token}/download").status_code == 404  # another browser is still locked
    assert share(token).downloads == 1


def test_a_download_limit_ends_the_link(app, api, available):
    token = make_link(api, available, max_downloads="2")
    visitor = app.test_client()
    assert [visitor.get(f"/s/{token}/download").status_code for _ in range(3)] == [302, 302, 404]
    assert visitor.get(f"/s/{token}").status_code == 404
    assert share(token).downloads == 2
    detail = api.get(f"/files/{available}").get_data(as_text=True)
    assert "used up" in detail and "2 of 2 downloads" in detail


def test_downloads_are_counted_and_shown_to_the_owner(app, api, available):
    token = make_link(api, available)
    for _ in range(3):
        assert app.test_client().get(f"/s/{token}/download").status_code == 302
    assert share(token).downloads == 3
    assert "3 downloads" in api.get(f"/files/{available}").get_data(as_text=True)


def test_every_dead_link_answers_the_same(app, api, available):
    expired, revoked, used_up, guarded = (
        make_link(api, available),
        make_link(api, available),
        make_link(api, available, max_downloads="1"),
        make_link(api, available, password="right one"),
    )
    share(expired).expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    share(revoked).revoked_at = utcnow()
    db.session.commit()
    assert app.test_client().get(f"/s/{used_up}/download").status_code == 302
    visitor = app.test_client()
    unknown = comparable(visitor.get("/s/" + "x" * 43))
    assert unknown[0] == 404
    for token in (expired, revoked, used_up):
        assert comparable(visitor.get(f"/s/{token}")) == unknown
        assert comparable(visitor.get(f"/s/{token}/download"))[0] == 404
    assert comparable(unlock(visitor, guarded, "wrong one")) == unknown
    assert comparable(unlock(visitor, "y" * 43, "wrong one")) == unknown


class TestThrottlePerLink:
    @pytest.fixture
    def app_config(self):
        return {"RATELIMIT_ENABLED": True, "SHARE_UNLOCK_LIMIT_PER_LINK": "3 per minute"}

    def test_password_attempts_are_throttled_per_link(self, app, api, available):
        first, second = make_link(api, available, password="secret 1"), make_link(api, available, password="secret 2")
        visitor = app.test_client()
        assert [unlock(visitor, first, "guess").status_code for _ in range(4)] == [404, 404, 404, 429]
        assert unlock(visitor, first, "secret 1").status_code == 429  # even the right one, until the window passes
        elsewhere = app.test_client()
        elsewhere.environ_base = {"REMOTE_ADDR": "198.51.100.7"}
        assert unlock(elsewhere, first, "secret 1").status_code == 429  # the link's own budget, from anywhere
        assert unlock(visitor, second, "secret 2").status_code == 302


class TestThrottlePerAddress:
    @pytest.fixture
    def app_config(self):
        return {"RATELIMIT_ENABLED": True, "SHARE_UNLOCK_LIMIT_PER_IP": "3 per minute"}

    def test_password_attempts_are_throttled_per_address(self, app, api, available):
        links = [make_link(api, available, password=f"secret {n}") for n in range(4)]
        visitor = app.test_client()
        assert [unlock(visitor, token, "guess").status_code for token in links] == [404, 404, 404, 429]
        elsewhere = app.test_client()
        elsewhere.environ_base = {"REMOTE_ADDR": "198.51.100.7"}
        assert unlock(elsewhere, links[3], "secret 3").status_code == 302


def test_share_pages_are_private(app, api, available):
    token = make_link(api, available, password="pw for headers")
    visitor = app.test_client()
    for response in (visitor.get(f"/s/{token}"), unlock(visitor, token, "nope"), visitor.get("/s/" + "z" * 43)):
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "noindex" in response.headers["X-Robots-Tag"]
    assert 'name="robots" content="noindex"' in visitor.get(f"/s/{token}").text


def test_a_head_request_uses_up_no_download(app, api, available):
    token = make_link(api, available, max_downloads="1")
    visitor = app.test_client()
    assert visitor.head(f"/s/{token}/download").status_code == 405
    assert visitor.get(f"/s/{token}/download").status_code == 302
    assert share(token).downloads == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"password": "   "},
        {"password": "abc"},
        {"password": "x" * 201},
        {"max_downloads": "0"},
        {"max_downloads": "lots"},
    ],
)
def test_bad_link_settings_are_refused(app, api, available, fields):
    response = api.form_post(f"/files/{available}/shares", {"days": "7", **fields}, follow_redirects=True)
    assert "a password of 4 to 200 characters" in response.get_data(as_text=True)
    assert db.session.query(Share).count() == 0
