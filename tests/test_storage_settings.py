"""`flask storage apply` and `flask storage check` against a real S3 endpoint (moto's server)."""

import requests

from webapp.storage import get_storage

ORIGIN = "https://files.example.com"


def test_apply_then_check_passes(app):
    runner = app.test_cli_runner()
    applied = runner.invoke(args=["storage", "apply", "--origin", ORIGIN])
    assert applied.exit_code == 0, applied.output
    checked = runner.invoke(args=["storage", "check", "--origin", ORIGIN])
    assert checked.exit_code == 0, checked.output
    assert checked.output.startswith("OK")
    settings = get_storage().read_settings()
    assert all(settings["public_access_block"].values())
    assert settings["cors"][0]["AllowedOrigins"] == [ORIGIN]
    assert settings["cors"][0]["AllowedMethods"] == ["PUT"]


def test_check_reports_each_problem(app):
    storage = get_storage()
    storage.client.delete_public_access_block(Bucket=storage.bucket)
    storage.client.put_bucket_cors(
        Bucket=storage.bucket,
        CORSConfiguration={
            "CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["PUT", "DELETE"], "AllowedHeaders": ["*"]}]
        },
    )
    storage.client.delete_bucket_lifecycle(Bucket=storage.bucket)
    result = app.test_cli_runner().invoke(args=["storage", "check", "--origin", ORIGIN])
    assert result.exit_code == 1
    for expected in (
        "BlockPublicAcls is off",
        "allows origins beyond the app's",
        "allows more than PUT",
        "ETag is not exposed",
        "multipart uploads are never aborted",
        "incoming/ never expire",
    ):
        assert expected in result.output


def test_cors_preflight_allows_only_the_app_origin(app):
    app.test_cli_runner().invoke(args=["storage", "apply", "--origin", ORIGIN])
    url = f"{app.config['S3_ENDPOINT_URL']}/{app.config['S3_BUCKET']}/incoming/1/x"

    def preflight(origin):
        return requests.options(
            url,
            timeout=10,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "content-type",
            },
        )

    allowed = preflight(ORIGIN)
    assert allowed.status_code == 200
    assert allowed.headers.get("Access-Control-Allow-Origin") == ORIGIN
    assert preflight("https://evil.example").status_code == 403  # no rule matches: refused
