"""Shared images lose their location and camera metadata: the worker writes a copy re-encoded from
the pixels (turned as its EXIF orientation says) that share links serve; the owner keeps the original."""

import io

import pytest
import requests
from PIL import ExifTags, Image

from tests.conftest import bucket_keys, share_token
from webapp.extensions import db
from webapp.models import Upload
from webapp.scanning.images import strip_metadata


def tagged_jpeg():
    """A 64x48 JPEG with a GPS position, a camera maker, a comment and orientation 6 (turn 90 degrees)."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Satchel Test Camera"
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.IFD.GPSInfo] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, format="JPEG", exif=exif, comment=b"at home")
    return out.getvalue()


def fetch(client, url):
    response = client.get(url)
    assert response.status_code == 302, response.status_code
    return requests.get(response.headers["Location"], timeout=10).content


def gps_of(data):
    with Image.open(io.BytesIO(data)) as image:
        return dict(image.getexif().get_ifd(ExifTags.IFD.GPSInfo)), image.getexif().get(ExifTags.Base.Make), image.size


def test_a_shared_photo_carries_no_location_while_the_owner_keeps_it(app, api, run_worker):
    original = tagged_jpeg()
    upload_id = api.upload(original, filename="beach.jpg", content_type="image/jpeg")
    run_worker()
    upload = db.session.get(Upload, upload_id)
    assert upload.status == "available" and upload.shared_key in bucket_keys(app, "derivatives/")

    owners = fetch(api, f"/files/{upload_id}/download")
    assert owners == original
    gps, make, _ = gps_of(owners)
    assert gps[2] == (48.0, 51.0, 24.0) and make == "Satchel Test Camera"

    token = share_token(api, upload_id)
    visitor = app.test_client()
    page = visitor.get(f"/s/{token}").get_data(as_text=True)
    assert 'id="metadata-removed"' in page
    shared = fetch(visitor, f"/s/{token}/download")
    gps, make, size = gps_of(shared)
    assert gps == {} and make is None
    assert size == (48, 64)  # turned upright, as the orientation tag said
    with Image.open(io.BytesIO(shared)) as image:
        assert image.format == "JPEG" and "exif" not in image.info and "comment" not in image.info
        assert "xmp" not in image.info


class TestSwitchedOff:
    @pytest.fixture
    def app_config(self):
        return {"STRIP_SHARED_IMAGE_METADATA": False}

    def test_share_links_serve_the_original_when_stripping_is_off(self, app, api, run_worker):
        original = tagged_jpeg()
        upload_id = api.upload(original, filename="beach.jpg", content_type="image/jpeg")
        run_worker()
        assert db.session.get(Upload, upload_id).shared_key is None
        token = share_token(api, upload_id)
        visitor = app.test_client()
        assert fetch(visitor, f"/s/{token}/download") == original
        assert 'id="metadata-removed"' not in visitor.get(f"/s/{token}").get_data(as_text=True)


def test_deleting_a_file_deletes_its_shared_copy(app, api, run_worker):
    upload_id = api.upload(tagged_jpeg(), filename="beach.jpg", content_type="image/jpeg")
    run_worker()
    assert api.delete(f"/api/uploads/{upload_id}").status_code == 204
    assert bucket_keys(app) == []


def test_16_bit_and_transparent_pngs_keep_their_picture():

    deep = io.BytesIO()
    Image.new("I;16", (4, 4), 40000).save(deep, format="PNG")
    with Image.open(io.BytesIO(strip_metadata(deep.getvalue(), "image/png"))) as image:
        assert image.mode == "L" and image.getpixel((0, 0)) == 40000 // 257  # scaled, not clipped to white
    clear = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(clear, format="PNG", transparency=(1, 2, 3))
    with Image.open(io.BytesIO(strip_metadata(clear.getvalue(), "image/png"))) as image:
        assert image.mode == "RGBA" and image.getpixel((0, 0))[3] == 0  # still see-through


def test_an_image_shared_before_copies_were_made_is_not_served_with_its_metadata(app, api, run_worker):
    upload_id = api.upload(tagged_jpeg(), filename="old.jpg", content_type="image/jpeg")
    run_worker()
    upload = db.session.get(Upload, upload_id)
    upload.shared_key = None  # as files scanned before this feature are
    db.session.commit()
    token = share_token(api, upload_id)
    assert app.test_client().get(f"/s/{token}/download").status_code == 404
    assert api.get(f"/files/{upload_id}/download").status_code == 302  # the owner still has it
