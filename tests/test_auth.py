"""Accounts through the real forms: sign up, log in, log out, and the CLI."""

import re

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD, form_token
from webapp.extensions import db
from webapp.models import User


def csrf_of(response):
    return form_token(response.get_data(as_text=True))


def login(client, email, password=PASSWORD, next_url=None):
    page = client.get("/auth/login")
    url = "/auth/login" + (f"?next={next_url}" if next_url else "")
    return client.post(url, data={"email": email, "password": password, "csrf_token": csrf_of(page)})


def test_register_logs_in_and_hashes_password(app):
    client = app.test_client()
    page = client.get("/auth/register")
    response = client.post(
        "/auth/register",
        data={
            "email": "New.Person@Example.com",
            "password": PASSWORD,
            "confirm": PASSWORD,
            "csrf_token": csrf_of(page),
        },
    )
    assert response.status_code == 302 and response.headers["Location"] == "/files"
    assert client.get("/files").status_code == 200
    user = db.session.scalar(select(User).where(User.email == "new.person@example.com"))
    assert user is not None
    assert user.password_hash.startswith("scrypt:")
    assert PASSWORD not in user.password_hash


@pytest.mark.parametrize(
    "data, message",
    [
        ({"email": "not-an-email", "password": PASSWORD, "confirm": PASSWORD}, "Invalid email"),
        ({"email": "a@example.com", "password": "short", "confirm": "short"}, "at least 10"),
        ({"email": "a@example.com", "password": PASSWORD, "confirm": PASSWORD + "x"}, "Passwords differ"),
    ],
)
def test_register_refusals_are_readable(app, data, message):
    client = app.test_client()
    page = client.get("/auth/register")
    response = client.post("/auth/register", data={**data, "csrf_token": csrf_of(page)})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(User)) is None


def test_register_with_taken_email(app, user):
    client = app.test_client()
    page = client.get("/auth/register")
    response = client.post(
        "/auth/register",
        data={"email": "OWNER@example.com", "password": PASSWORD, "confirm": PASSWORD, "csrf_token": csrf_of(page)},
    )
    assert response.status_code == 422
    assert "already exists" in response.get_data(as_text=True)


def test_register_without_csrf_is_refused(app):
    response = app.test_client().post(
        "/auth/register", data={"email": "x@example.com", "password": PASSWORD, "confirm": PASSWORD}
    )
    assert response.status_code == 400
    assert db.session.scalar(select(User)) is None


def test_login_and_logout_through_the_forms(app, user):
    client = app.test_client()
    response = login(client, "owner@example.com")
    assert response.status_code == 302 and response.headers["Location"] == "/files"
    files = client.get("/files")
    assert "owner@example.com" in files.get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', files.get_data(as_text=True)).group(1)
    assert client.get("/auth/logout").status_code == 405  # logging out is a POST
    response = client.post("/auth/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert client.get("/files").status_code == 302


def test_logout_without_csrf_is_refused(app, user):
    client = app.test_client()
    login(client, "owner@example.com")
    assert client.post("/auth/logout").status_code == 400
    assert client.get("/files").status_code == 200


def test_wrong_password_and_unknown_user_answer_the_same(app, user):
    wrong = login(app.test_client(), "owner@example.com", "wrong password!")
    unknown = login(app.test_client(), "nobody@example.com", "wrong password!")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong email or password." in wrong.get_data(as_text=True)
    assert "Wrong email or password." in unknown.get_data(as_text=True)


def test_banned_user_cannot_log_in(app, user):
    user.is_banned = True
    db.session.commit()
    assert login(app.test_client(), "owner@example.com").status_code == 401


def test_session_is_fresh_after_login(app, user):
    client = app.test_client()
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    login(client, "owner@example.com")
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["_user_id"] == f"{user.id}.{user.session_version}"


def test_login_cookie_flags(app, user):
    client = app.test_client()
    response = login(client, "owner@example.com")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


class TestCli:
    """`flask users create` and `flask users promote`."""

    def test_create_user_and_admin(self, app):
        runner = app.test_cli_runner()
        result = runner.invoke(args=["users", "create", "cli@example.com", "--password", PASSWORD])
        assert result.exit_code == 0, result.output
        result = runner.invoke(args=["users", "create", "boss@example.com", "--password", PASSWORD, "--admin"])
        assert result.exit_code == 0, result.output
        users = {u.email: u.is_admin for u in db.session.scalars(select(User))}
        assert users == {"cli@example.com": False, "boss@example.com": True}
        assert login(app.test_client(), "cli@example.com").status_code == 302

    def test_duplicate_and_weak_password_fail_clearly(self, app, user):
        runner = app.test_cli_runner()
        result = runner.invoke(args=["users", "create", "owner@example.com", "--password", PASSWORD])
        assert result.exit_code != 0 and "already exists" in result.output
        result = runner.invoke(args=["users", "create", "new@example.com", "--password", "123"])
        assert result.exit_code != 0 and "at least" in result.output

    def test_promote(self, app, user):
        runner = app.test_cli_runner()
        result = runner.invoke(args=["users", "promote", "owner@example.com"])
        assert result.exit_code == 0, result.output
        db.session.expire_all()
        assert db.session.get(User, user.id).is_admin
        result = runner.invoke(args=["users", "promote", "ghost@example.com"])
        assert result.exit_code != 0


# Open redirects through `next` (absolute, protocol-relative, backslash, javascript:, CR/LF, tab) are in
# the corpus (tests/hostile_corpus.py).
@pytest.mark.parametrize("target, status, location", [("/files\x00", 400, None), ("/files\x7f", 302, "/files")])
def test_next_with_nul_or_del_falls_back(app, user, target, status, location):
    response = login(app.test_client(), "owner@example.com", next_url=target)
    assert response.status_code == status
    assert response.headers.get("Location") == location


def test_nul_in_login_email_is_a_clean_refusal(app, user):
    response = login(app.test_client(), "owner@example.com\x00")
    assert response.status_code == 400


def test_logout_invalidates_the_session_server_side(app, user):
    client = app.test_client()
    login(client, "owner@example.com")
    files = client.get("/files")
    stolen = client.get_cookie("session").value  # a copy of the cookie, as an attacker would keep
    token = re.search(r'name="csrf_token" value="([^"]+)"', files.get_data(as_text=True)).group(1)
    client.post("/auth/logout", data={"csrf_token": token})
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    response = replay.get("/files")
    assert response.status_code == 302 and response.headers["Location"].startswith("/auth/login")
    assert replay.get("/api/uploads/abc").status_code == 401
    # Logging in again works, with a new session.
    assert login(app.test_client(), "owner@example.com").status_code == 302


def test_forged_session_ids_are_refused(app, user):
    for forged in (str(user.id), f"{user.id}.99", f"{user.id}.x", "1.0.0", "", "9" * 40 + ".0"):
        client = app.test_client()
        with client.session_transaction() as session:
            session["_user_id"] = forged
            session["_fresh"] = True
        assert client.get("/files").status_code == 302, forged


class TestLoginThrottling:
    """Failed logins are limited per account and attempts per address, on Redis, with 429 and Retry-After."""

    @pytest.fixture
    def app_config(self):
        return {
            "RATELIMIT_ENABLED": True,
            "LOGIN_LIMIT_PER_ACCOUNT": "3 per 15 minutes",
            "LOGIN_LIMIT_PER_IP": "8 per minute",
            "LOGIN_LIMIT_ACROSS_ADDRESSES": "10 per hour",
        }

    def test_per_account(self, app, user):
        codes = [login(app.test_client(), "owner@example.com", "wrong password").status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        blocked = login(app.test_client(), "OWNER@example.com", PASSWORD)  # the right password waits too
        assert blocked.status_code == 429
        assert int(blocked.headers["Retry-After"]) > 0
        assert "429" in blocked.get_data(as_text=True)
        # Another account from the same address is not affected.
        other = app.test_cli_runner().invoke(args=["users", "create", "b@example.com", "--password", PASSWORD])
        assert other.exit_code == 0
        assert login(app.test_client(), "b@example.com").status_code == 302

    def test_successful_logins_do_not_count_against_the_account(self, app, user):
        codes = [login(app.test_client(), "owner@example.com").status_code for _ in range(5)]
        assert codes == [302] * 5

    def test_per_address(self, app, user):
        codes = [login(app.test_client(), f"nobody{n}@example.com", "wrong").status_code for n in range(9)]
        assert codes[:8] == [401] * 8 and codes[8] == 429

    def test_failures_from_one_address_do_not_lock_the_owner_out_from_another(self, app, user):
        attacker, owner = from_address(app, "198.51.100.7"), from_address(app, "203.0.113.5")
        codes = [login(attacker, "owner@example.com", "wrong password").status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        assert login(attacker, "owner@example.com").status_code == 429  # that address stays blocked
        assert login(owner, "owner@example.com").status_code == 302
        assert owner.get("/files").status_code == 200

    def test_the_per_address_limit_still_covers_every_account(self, app, user):
        attacker = from_address(app, "198.51.100.7")
        codes = [login(attacker, f"guess{n}@example.com", "wrong").status_code for n in range(9)]
        assert codes == [401] * 8 + [429]
        assert login(from_address(app, "203.0.113.5"), "owner@example.com").status_code == 302

    def test_one_ipv6_subscriber_counts_as_one_address(self, app, user):
        # The attack: a fresh address from the same /64 for every guess, each with limits of its own.
        codes = [
            login(from_address(app, f"2001:db8:1:2::{n:x}"), "owner@example.com", "wrong").status_code
            for n in range(1, 5)
        ]
        assert codes == [401, 401, 401, 429]
        assert login(from_address(app, "2001:db8:1:3::1"), "owner@example.com").status_code == 302

    def test_guesses_from_many_addresses_meet_a_wide_ceiling_per_account(self, app, user):
        codes = [
            login(from_address(app, f"198.51.100.{n}"), "owner@example.com", "wrong").status_code for n in range(1, 12)
        ]
        assert codes == [401] * 10 + [429]
        assert login(from_address(app, "203.0.113.5"), "b@example.com", "wrong").status_code == 401


def from_address(app, address):
    """A test client whose requests come from address."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def register(client, email, password=PASSWORD):
    page = client.get("/auth/register")
    token = csrf_of(page) if page.status_code == 200 else csrf_of(client.get("/auth/login"))
    return client.post(
        "/auth/register", data={"email": email, "password": password, "confirm": password, "csrf_token": token}
    )


def user_emails():
    db.session.expire_all()
    return sorted(db.session.scalars(select(User.email)))


class TestRegistrationThrottling:
    @pytest.fixture
    def app_config(self):
        return {"RATELIMIT_ENABLED": True, "REGISTER_LIMIT_PER_IP": "3 per hour"}

    def test_sign_ups_per_address(self, app):
        def bot(email):  # a new cookie jar for each sign-up, the same address
            return register(from_address(app, "198.51.100.7"), email)

        codes = [bot(f"bot{n}@example.com").status_code for n in range(4)]
        assert codes == [302, 302, 302, 429]
        refused = bot("bot9@example.com")
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
        assert "429" in refused.get_data(as_text=True) and refused.mimetype == "text/html"
        assert user_emails() == ["bot0@example.com", "bot1@example.com", "bot2@example.com"]
        # Someone else signs up as usual.
        assert register(from_address(app, "203.0.113.5"), "person@example.com").status_code == 302

    def test_failed_sign_ups_count_too(self, app, user):
        # Probing which emails have accounts costs the same budget.
        bot = from_address(app, "198.51.100.7")
        codes = [register(bot, "owner@example.com").status_code for _ in range(4)]
        assert codes == [422, 422, 422, 429]


class TestClosedRegistration:
    @pytest.fixture
    def app_config(self):
        return {"REGISTRATION": "closed"}

    def test_the_register_page_says_so_and_makes_nothing(self, app):
        client = app.test_client()
        page = client.get("/auth/register")
        assert page.status_code == 403
        text = page.get_data(as_text=True)
        assert "Sign-up is closed" in text and '<form method="post" novalidate' not in text
        assert 'name="confirm"' not in text
        posted = register(client, "sneaky@example.com")
        assert posted.status_code == 403 and "Sign-up is closed" in posted.get_data(as_text=True)
        assert user_emails() == []
        assert client.get("/files").status_code == 302  # and no session was started

    def test_links_to_it_are_gone(self, app):
        client = app.test_client()
        for url in ("/", "/auth/login"):
            page = client.get(url)
            assert page.status_code == 200
            assert "/auth/register" not in page.get_data(as_text=True), url

    def test_existing_accounts_still_log_in(self, app, user):
        assert login(app.test_client(), "owner@example.com").status_code == 302


def test_open_registration_links_to_sign_up(app):
    for url in ("/", "/auth/login"):
        assert "/auth/register" in app.test_client().get(url).get_data(as_text=True), url
