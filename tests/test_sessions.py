"""Sessions end SESSION_MAX_AGE after login and SESSION_IDLE_TIMEOUT after their last request, on the server's
clock (moved here by patching it, not by sleeping), and the cookie is dated to match."""

import pytest

from tests.conftest import PASSWORD, page_token
from tests.test_auth import login
from webapp.auth import sessions

IDLE, MAX_AGE = 600, 3600


@pytest.fixture
def app_config():
    return {"SESSION_IDLE_TIMEOUT": IDLE, "SESSION_MAX_AGE": MAX_AGE}


class Clock:
    """The server's clock, moved by the test."""

    def __init__(self, at):
        self.at = at

    def __call__(self):
        return self.at

    def advance(self, seconds):
        self.at += seconds


@pytest.fixture
def clock(monkeypatch):
    clock = Clock(sessions.now())
    monkeypatch.setattr(sessions, "now", clock)
    return clock


@pytest.fixture
def client(app, user, clock):
    """A browser logged in through the real form at the clock's time."""
    client = app.test_client()
    assert login(client, user.email).status_code == 302
    return client


def assert_sent_to_login(response):
    assert response.status_code == 302, response.status_code
    assert response.headers["Location"].startswith("/auth/login?next=")


def test_an_idle_session_ends(client, clock):
    clock.advance(IDLE - 5)
    assert client.get("/files").status_code == 200
    clock.advance(IDLE - 5)  # counted from the last request, not from login
    assert client.get("/files").status_code == 200
    clock.advance(IDLE)
    expired = client.get("/files")
    assert_sent_to_login(expired)
    page = client.get(expired.headers["Location"])
    assert "Your session has ended; log in again." in page.get_data(as_text=True)
    clock.advance(-IDLE)  # the session is gone for good, not just for as long as the clock says so
    assert_sent_to_login(client.get("/files"))


def test_an_active_session_still_ends_at_its_maximum_age(client, clock):
    for _ in range(MAX_AGE // (IDLE // 2) - 1):
        clock.advance(IDLE // 2)
        assert client.get("/files").status_code == 200
    clock.advance(IDLE // 2)  # MAX_AGE after login, and never idle for long
    assert_sent_to_login(client.get("/files"))


def test_the_api_answers_401_json_when_the_session_has_ended(client, clock):
    csrf = page_token(client.get("/files").get_data(as_text=True))
    clock.advance(IDLE)
    response = client.post(
        "/api/uploads",
        headers={"X-CSRFToken": csrf},
        json={"filename": "a.txt", "size": 5, "content_type": "text/plain"},
    )
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert client.get("/api/uploads/abc").status_code == 401


def test_a_form_posted_after_the_end_leads_to_login(client, clock):
    csrf = page_token(client.get("/files").get_data(as_text=True))
    clock.advance(MAX_AGE)
    response = client.post("/auth/logout", data={"csrf_token": csrf})
    assert_sent_to_login(response)


def test_a_copied_cookie_carries_its_expiry(app, client, clock):
    stolen = client.get_cookie("session").value
    for _ in range(3):  # the owner keeps the session alive: the copy's stamps do not move
        clock.advance(IDLE - 5)
        assert client.get("/files").status_code == 200
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    assert_sent_to_login(replay.get("/files"))


def test_the_cookie_expires_with_the_session(app, client, clock):
    login_at = clock.at
    assert client.get_cookie("session").expires.timestamp() == login_at + IDLE
    clock.advance(IDLE - 5)
    client.get("/files")
    assert client.get_cookie("session").expires.timestamp() == clock.at + IDLE


def test_the_cookie_is_sent_again_only_when_the_last_request_time_moves(client, clock):
    """Requests within a tenth of the idle timeout (a minute at most) leave the session as it is, so
    the cookie is not signed and sent again; the next one after that moves its time and expiry."""
    client.get("/files")
    resolution = sessions.seen_resolution({"SESSION_IDLE_TIMEOUT": IDLE})
    assert resolution == IDLE // 10
    clock.advance(resolution - 1)
    assert "Set-Cookie" not in client.get("/files").headers
    clock.advance(1)
    sent = client.get("/files").headers.get("Set-Cookie", "")
    assert sent.startswith("session=")
    assert client.get_cookie("session").expires.timestamp() == clock.at + IDLE


def test_the_cookie_never_outlives_the_maximum_age(app, user, clock):
    app.config["SESSION_IDLE_TIMEOUT"] = 10 * MAX_AGE
    client = app.test_client()
    login_at = clock.at
    assert login(client, user.email).status_code == 302
    assert client.get_cookie("session").expires.timestamp() == login_at + MAX_AGE
    clock.advance(MAX_AGE // 2)
    assert client.get("/files").status_code == 200
    assert client.get_cookie("session").expires.timestamp() == login_at + MAX_AGE


def test_a_session_without_a_login_time_is_refused(app, user):
    # A session cookie of the kind issued before lifetimes existed: the user id alone.
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
    assert_sent_to_login(client.get("/files"))


def test_logging_in_again_starts_a_new_lifetime(app, client, user, clock):
    clock.advance(MAX_AGE)
    assert_sent_to_login(client.get("/files"))
    page = client.get("/auth/login")
    assert page.status_code == 200
    assert login(client, user.email, PASSWORD).status_code == 302
    assert client.get("/files").status_code == 200
