"""Files that are two things at once: only re-encoded pixels are ever shown, originals only downloaded."""
import io
import zipfile

import pytest
import requests
from PIL import Image

from tests.conftest import RESOURCES


def gif_bytes():
    buffer = io.BytesIO()
    Image.new("P", (40, 30), 3).save(buffer, format="GIF")
    return buffer.getvalue()


def zip_bytes():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("Main.class", b"\xca\xfe\xba\xbe payload")
    return buffer.getvalue()


POLYGLOTS = {
    "gifar": (gif_bytes() + zip_bytes(), "image/gif", b"PK\x03\x04"),
    "jpeg-trailing-html": ((RESOURCES / "tiny.jpg").read_bytes() + b"<html><script>alert(1)</script></html>",
                           "image/jpeg", b"<script>"),
    "png-trailing-html": ((RESOURCES / "tiny.png").read_bytes() + b"<html><script>alert(1)</script></html>",
                          "image/png", b"<script>"),
}


@pytest.mark.parametrize("name", POLYGLOTS)
def test_polyglot_images_are_served_only_as_attachments_and_re_encoded_previews(app, api, run_worker, name):
    data, mime, payload = POLYGLOTS[name]
    upload_id = api.upload(data, filename=f"{name}.img", content_type=mime)
    run_worker()
    info = api.status(upload_id)
    assert info["status"] == "available" and info["detected_type"] == mime
    preview = requests.get(api.get(f"/files/{upload_id}/preview").headers["Location"], timeout=10)
    assert preview.headers["Content-Type"] == "image/png" and payload not in preview.content
    original = requests.get(api.get(f"/files/{upload_id}/download").headers["Location"], timeout=10)
    assert original.content == data  # the bytes are the user's, but only ever as a download
    assert original.headers["Content-Disposition"].startswith("attachment;")
    assert original.headers["Content-Type"] == mime


@pytest.mark.parametrize("data, declared, reason", [
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
     "image/png", "type_not_allowed"),
    (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "image/png", "type_not_allowed"),
    (b"push graphic-context\nviewbox 0 0 640 480\n"
     b"fill 'url(https://example.com/x.jpg\"|ls \"-la)'\npop graphic-context\n",
     "image/png", "type_not_allowed"),  # libmagic knows MVG (image/x-mvg): not on the allowlist
    (b"<!DOCTYPE html><html><body onload=alert(1)></body></html>", "text/plain", "type_not_allowed"),
    (b"<?xml version='1.0'?><root><evil/></root>", "text/plain", "type_not_allowed"),
    ((RESOURCES / "tiny.png").read_bytes(), "application/pdf", "type_mismatch"),
    (b"#!/bin/sh\nrm -rf /\n", "text/plain", "type_not_allowed"),
    (b"MZ\x90\x00" + b"\x00" * 200, "application/pdf", "type_not_allowed"),
], ids=["svg-script", "svg-onload", "mvg", "html-as-text", "xml-as-text", "png-as-pdf", "script-as-text",
        "exe-as-pdf"])
def test_markup_and_programs_posing_as_allowed_types_are_rejected(app, api, run_worker, data, declared, reason):
    upload_id = api.upload(data, filename="innocent.png", content_type=declared)
    run_worker()
    info = api.status(upload_id)
    assert (info["status"], info["reason"]) == ("rejected", reason)
    assert api.get(f"/files/{upload_id}/download").status_code == 404
