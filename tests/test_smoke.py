"""The core loop in one test: presign, PUT, complete, scan, download."""

import requests

from tests.conftest import bucket_keys


def test_full_flow_text_file(app, api, run_worker):
    data = b"hello world"
    upload_id = api.upload(data)
    assert api.status(upload_id)["status"] == "uploaded"
    run_worker()
    info = api.status(upload_id)
    assert info["status"] == "available", info
    response = api.get(f"/files/{upload_id}/download")
    assert response.status_code == 302
    body = requests.get(response.headers["Location"], timeout=10)
    assert body.content == data
    assert bucket_keys(app, "incoming/") == []
