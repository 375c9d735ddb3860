"""Behind TRUSTED_PROXY_HOPS reverse proxies the client's address, scheme and host come from X-Forwarded-*;
with none (the default) those headers are anyone's to send, and are ignored."""

import re

import pytest
from sqlalchemy import select

from tests.conftest import share_token
from tests.test_auth import from_address, login
from webapp.extensions import db
from webapp.models import AuditEvent

PROXY = "10.0.0.2"  # the reverse proxy's own address, as the app sees the connection
FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "files.example.org", "X-Forwarded-Port": "443"}


def failed_login_addresses():
    db.session.expire_all()
    return [
        event.ip
        for event in db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "login_failed").order_by(AuditEvent.id)
        )
    ]


def through_proxy(app, client_address):
    """A client behind the proxy: the proxy connects, and appends the address it saw to X-Forwarded-For."""
    client = from_address(app, PROXY)
    client.environ_base["HTTP_X_FORWARDED_FOR"] = client_address
    return client


def share_link(api, upload_id, **kwargs):
    share_token(api, upload_id)
    html = api.get(f"/files/{upload_id}", **kwargs).get_data(as_text=True)
    return re.search(r'value="([^"]+/s/[A-Za-z0-9_-]+)"', html).group(1)


class TestWithoutProxy:
    """TRUSTED_PROXY_HOPS=0: a client forging X-Forwarded-* changes nothing."""

    @pytest.fixture
    def app_config(self):
        return {"RATELIMIT_ENABLED": True, "LOGIN_LIMIT_PER_IP": "3 per minute"}

    def test_forged_for_header_neither_renames_the_client_nor_escapes_its_limit(self, app, user):
        codes = []
        for n in range(4):
            client = from_address(app, "198.51.100.7")
            client.environ_base["HTTP_X_FORWARDED_FOR"] = f"192.0.2.{n}"  # a new address every time
            codes.append(login(client, f"guess{n}@example.com", "wrong").status_code)
        assert codes == [401, 401, 401, 429]
        assert failed_login_addresses() == ["198.51.100.7"] * 3

    def test_forged_proto_and_host_are_ignored(self, app, api, available):
        headers = {**FORWARDED, "X-Forwarded-For": "192.0.2.1"}
        assert "Strict-Transport-Security" not in api.get("/files", headers=headers).headers
        assert share_link(api, available, headers=headers).startswith("http://localhost/s/")


class TestBehindOneProxy:
    @pytest.fixture
    def app_config(self):
        return {
            "TRUSTED_PROXY_HOPS": 1,
            "RATELIMIT_ENABLED": True,
            "LOGIN_LIMIT_PER_IP": "3 per minute",
            "LOGIN_LIMIT_PER_ACCOUNT": "2 per 15 minutes",
        }

    def test_the_audit_log_records_the_client_not_the_proxy(self, app, user):
        login(through_proxy(app, "198.51.100.7"), "owner@example.com", "wrong")
        # What the client put in front of the proxy's own entry is not believed.
        login(through_proxy(app, "192.0.2.66, 203.0.113.5"), "owner@example.com", "wrong")
        assert failed_login_addresses() == ["198.51.100.7", "203.0.113.5"]

    def test_clients_behind_the_proxy_have_limits_of_their_own(self, app, user):
        attacker = [
            login(through_proxy(app, "198.51.100.7"), f"guess{n}@example.com", "wrong").status_code for n in range(4)
        ]
        assert attacker == [401, 401, 401, 429]
        # Without ProxyFix everyone shares the proxy's address, and so the attacker's exhausted budget.
        assert login(through_proxy(app, "203.0.113.5"), "owner@example.com").status_code == 302

    def test_the_account_limit_is_per_client_too(self, app, user):
        codes = [login(through_proxy(app, "198.51.100.7"), "owner@example.com", "wrong").status_code for _ in range(3)]
        assert codes == [401, 401, 429]
        assert login(through_proxy(app, "203.0.113.5"), "owner@example.com").status_code == 302

    def test_a_forged_first_entry_does_not_escape_the_limit(self, app, user):
        codes = [
            login(through_proxy(app, f"192.0.2.{n}, 198.51.100.7"), f"guess{n}@example.com", "wrong").status_code
            for n in range(4)
        ]
        assert codes == [401, 401, 401, 429]

    def test_hsts_and_external_links_follow_the_proxy(self, app, api, available):
        api.client.environ_base.update({"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "198.51.100.7"})
        secure = api.get("/files", headers=FORWARDED)
        assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")
        assert share_link(api, available, headers=FORWARDED).startswith("https://files.example.org/s/")
        plain = api.get("/files", headers={"X-Forwarded-Proto": "http"})
        assert "Strict-Transport-Security" not in plain.headers

    def test_a_forwarded_value_that_is_no_address_is_not_recorded(self, app, user):
        response = login(through_proxy(app, "x" * 80), "owner@example.com", "wrong")
        assert response.status_code == 401
        assert failed_login_addresses() == [None]
