"""Presigned URLs grant exactly one thing: refused once expired, for another key, or with other headers.

moto accepts any signature, so these tests run against endpoints that check them:
- s3rver (npm, started here) refuses expired SigV4 URLs; it does not check SigV4 signatures;
- tests/sigv4_gateway.py in front of moto checks expiry and the signature itself, as S3 does.
"""

import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import boto3
import pytest
import requests

from devtools.localservices import free_port, stop, wait_for_port
from tests.conftest import PASSWORD, Api, bucket_keys, build_app, make_config
from webapp.extensions import db
from webapp.services.accounts import create_user
from webapp.storage import get_storage

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
S3RVER = ROOT / "node_modules" / "s3rver" / "bin" / "s3rver.js"
MiB = 1024 * 1024


def with_query(url, **changes):
    """url with some query parameters replaced (the signature left as it was)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def with_path(url, path):
    return urlunsplit(urlsplit(url)._replace(path=path))


def error_code(response):
    return response.text.split("<Code>")[1].split("</Code>")[0]


# --- s3rver: a separate S3 implementation that enforces expiry ---


@pytest.fixture(scope="module")
def s3rver(tmp_path_factory):
    node = shutil.which("node")
    assert node and S3RVER.exists(), "s3rver is missing: `make test` installs it with `npm ci`"
    port = free_port()
    process = subprocess.Popen(
        [
            node,
            str(S3RVER),
            "--directory",
            str(tmp_path_factory.mktemp("s3rver")),
            "--address",
            "127.0.0.1",
            "--port",
            str(port),
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process, name="s3rver")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


@pytest.fixture
def s3rver_app(services, s3rver):
    """An app whose storage is s3rver (its built-in S3RVER key), with 2-second URLs."""
    config = make_config(
        services,
        S3_ENDPOINT_URL=s3rver,
        S3_ACCESS_KEY_ID="S3RVER",
        S3_SECRET_ACCESS_KEY="S3RVER",
        UPLOAD_URL_TTL=2,
        DOWNLOAD_URL_TTL=2,
    )
    app = build_app(config)
    client = boto3.client(
        "s3", endpoint_url=s3rver, region_name="us-east-1", aws_access_key_id="S3RVER", aws_secret_access_key="S3RVER"
    )
    client.create_bucket(Bucket=config["S3_BUCKET"])
    with app.app_context():
        db.drop_all()
        db.create_all()
        yield app, client
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


def test_s3rver_refuses_an_expired_upload_url(s3rver_app):
    app, client = s3rver_app
    with app.app_context():
        api = Api(app.test_client(user=create_user("s3rver@example.com", PASSWORD)))
    fresh = api.begin("fresh.txt", 5)
    stale = api.begin("stale.txt", 5)
    assert dict(parse_qsl(urlsplit(stale["url"]).query))["X-Amz-Expires"] == "2"
    assert requests.put(fresh["url"], data=b"hello", headers=fresh["headers"], timeout=10).status_code == 200
    time.sleep(3.1)
    late = requests.put(stale["url"], data=b"hello", headers=stale["headers"], timeout=10)
    assert late.status_code == 403, late.text
    assert error_code(late) == "AccessDenied" and "expired" in late.text
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=app.config["S3_BUCKET"]).get("Contents", [])]
    assert keys == [urlsplit(fresh["url"]).path.split("/", 2)[2]]


def test_s3rver_refuses_an_expired_download_url(s3rver_app):
    app, client = s3rver_app
    client.put_object(Bucket=app.config["S3_BUCKET"], Key="files/x/y.txt", Body=b"promoted bytes")
    with app.app_context():
        url = get_storage().presign_get("files/x/y.txt", 2, 'attachment; filename="y.txt"', "text/plain")
    assert requests.get(url, timeout=10).content == b"promoted bytes"
    time.sleep(3.1)
    late = requests.get(url, timeout=10)
    assert late.status_code == 403 and error_code(late) == "AccessDenied"


# --- The signature-checking gateway in front of moto ---


@pytest.fixture
def app_config(gateway):
    return {
        "S3_ENDPOINT_URL": gateway.url,
        "UPLOAD_URL_TTL": 60,
        "MULTIPART_THRESHOLD": 6 * MiB,
        "MULTIPART_PART_SIZE": 5 * MiB,
    }


def test_the_untouched_url_works_through_the_gateway(app, api, run_worker):
    upload_id = api.upload(b"through the gateway", filename="ok.txt")
    run_worker()
    assert api.status(upload_id)["status"] == "available"
    location = api.get(f"/files/{upload_id}/download").headers["Location"]
    assert location.startswith(app.config["S3_ENDPOINT_URL"])
    assert requests.get(location, timeout=10).content == b"through the gateway"


def test_a_url_for_one_key_cannot_write_another(app, api, user):
    mine = api.begin("mine.txt", 5)
    target = api.begin("target.txt", 5)
    victim_path = urlsplit(target["url"]).path
    response = requests.put(with_path(mine["url"], victim_path), data=b"evil!", headers=mine["headers"], timeout=10)
    assert response.status_code == 403 and error_code(response) == "SignatureDoesNotMatch"
    for path in ("/satchel-test/incoming/other/key", urlsplit(mine["url"]).path + "-2"):
        response = requests.put(with_path(mine["url"], path), data=b"evil!", headers=mine["headers"], timeout=10)
        assert response.status_code == 403
    assert bucket_keys(app) == []


@pytest.mark.parametrize(
    "headers, data",
    [
        ({"Content-Type": "text/html"}, b"hello"),  # another type than the one signed
        ({"Content-Type": "text/plain; charset=utf-8"}, b"hello"),
        ({}, b"hello"),  # the signed Content-Type left out
        ({"Content-Type": "text/plain"}, b"hello, and more"),  # another length than the one signed
    ],
    ids=["html", "parameterised", "missing", "longer"],
)
def test_a_changed_content_type_or_length_is_refused(app, api, headers, data):
    grant = api.begin("notes.txt", 5, "text/plain")
    response = requests.put(grant["url"], data=data, headers=headers, timeout=10)
    assert response.status_code == 403 and error_code(response) == "SignatureDoesNotMatch"
    assert bucket_keys(app) == []
    assert requests.put(grant["url"], data=b"hello", headers=grant["headers"], timeout=10).status_code == 200


def test_an_expired_upload_url_is_refused_by_the_gateway(app, api):
    grant = api.begin("late.txt", 5)
    signed = dict(parse_qsl(urlsplit(grant["url"]).query))
    assert signed["X-Amz-Expires"] == "60"
    # Tampering with the lifetime breaks the signature; waiting it out expires the URL.
    stretched = with_query(grant["url"], **{"X-Amz-Expires": "604800"})
    response = requests.put(stretched, data=b"hello", headers=grant["headers"], timeout=10)
    assert response.status_code == 403 and error_code(response) == "SignatureDoesNotMatch"
    backdated = with_query(grant["url"], **{"X-Amz-Date": "20200101T000000Z"})
    response = requests.put(backdated, data=b"hello", headers=grant["headers"], timeout=10)
    assert response.status_code == 403 and error_code(response) == "AccessDenied"
    assert bucket_keys(app) == []


def test_a_download_url_cannot_be_retyped_or_pointed_elsewhere(app, api, run_worker):
    first = api.upload(b"<b>first</b>", filename="first.txt")
    second = api.upload(b"second file", filename="second.txt")
    run_worker()
    url = api.get(f"/files/{first}/download").headers["Location"]
    other = api.get(f"/files/{second}/download").headers["Location"]
    retyped = with_query(url, **{"response-content-type": "text/html", "response-content-disposition": "inline"})
    response = requests.get(retyped, timeout=10)
    assert response.status_code == 403 and error_code(response) == "SignatureDoesNotMatch"
    response = requests.get(with_path(url, urlsplit(other).path), timeout=10)
    assert response.status_code == 403
    # The same URL re-encoded but unchanged still works: the refusals above are for the changes.
    assert requests.get(with_query(url), timeout=10).content == b"<b>first</b>"


def test_a_part_url_is_bound_to_its_part_number_and_length(app, api):
    grant = api.begin("big.txt", 11 * MiB, "text/plain")
    upload_id = grant["upload"]["id"]
    urls = api.post(f"/api/uploads/{upload_id}/parts", json={"part_numbers": [1]}).get_json()["parts"]
    chunk = b"p" * (5 * MiB)
    response = requests.put(with_query(urls["1"], partNumber="2"), data=chunk, timeout=30)
    assert response.status_code == 403 and error_code(response) == "SignatureDoesNotMatch"
    response = requests.put(urls["1"], data=chunk[:-1], timeout=30)
    assert response.status_code == 403
    assert requests.put(with_query(urls["1"], partNumber="1"), data=chunk, timeout=30).status_code == 200


def test_the_gateway_itself_refuses_what_it_should(gateway):
    """The checker is only as good as its refusals: a forged signature on a well-formed URL fails."""
    before = len(gateway.refusals)
    forged = f"{gateway.url}/b/k?" + urlencode(
        {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"testing/{time.strftime('%Y%m%d', time.gmtime())}/us-east-1/s3/aws4_request",
            "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
            "X-Amz-Expires": "60",
            "X-Amz-SignedHeaders": "host",
            "X-Amz-Signature": "0" * 64,
        }
    )
    response = requests.get(forged, timeout=10)
    assert response.status_code == 403 and error_code(response) == "SignatureDoesNotMatch"
    assert len(gateway.refusals) == before + 1
