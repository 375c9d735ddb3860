"""/api/openapi.json: a valid OpenAPI 3 document that describes exactly the API's real routes."""

import re

from openapi_spec_validator import validate

from webapp.api.views import OPENAPI


def api_routes(app):
    """{(path in OpenAPI's spelling, method)} of every route under /api."""
    return {
        (re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def test_the_document_is_served_to_anyone_and_is_valid_openapi_3(app):
    response = app.test_client().get("/api/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    validate(spec)


def test_it_describes_exactly_the_real_routes(app):
    spec = app.test_client().get("/api/openapi.json").get_json()
    described = {
        (path, method) for path, item in spec["paths"].items() for method in item if method not in ("parameters",)
    }
    assert described == api_routes(app)


def test_each_token_call_names_the_scopes_the_route_enforces(app):
    """x-satchel-scopes in the document is what each view's @scoped enforces, and every call a token
    may make has them."""
    spec = app.test_client().get("/api/openapi.json").get_json()
    adapter = app.url_map.bind("localhost")
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            url = path.replace("{upload_id}", "abc").replace("{token}", "t")
            endpoint, _ = adapter.match(url, method=method.upper())
            enforced = getattr(app.view_functions[endpoint], "scopes", None)
            assert sorted(enforced or []) == sorted(operation.get("x-satchel-scopes", [])), endpoint
            if endpoint.startswith("api.") and endpoint != "api.openapi":
                assert enforced, endpoint


def test_the_file_on_disk_is_what_is_served(app):
    assert app.test_client().get("/api/openapi.json").data == OPENAPI.read_bytes()
