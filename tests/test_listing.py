"""The listing at /files: search, kind and status filters, sorts with exact keyset pages, the grid view,
bulk delete with one confirmation, rename, usage and the empty states; all without JavaScript."""

import base64
import re
from datetime import timedelta
from html import unescape

import pytest
import requests

from webapp.extensions import db
from webapp.models import Upload
from webapp.models.base import utcnow
from webapp.storage import incoming_key

NAMES = ["Holiday.JPG", "notes.txt", "Report 2026.pdf", "holiday-2.png", "data_100%.csv", "archive.zip", "song.mp3"]
TYPES = ["image/jpeg", "text/plain", "application/pdf", "image/png", "text/csv", "application/zip", "audio/mpeg"]


def add(user, name, mime="text/plain", size=10, status="available", age=0):
    upload = Upload(
        user_id=user.id,
        filename=name,
        size=size,
        declared_type=mime,
        detected_type=mime if status == "available" else None,
        status=status,
        incoming_key="pending",
        created_at=utcnow() - timedelta(hours=1) + timedelta(seconds=age),
        expires_at=utcnow() + timedelta(days=1),
    )
    db.session.add(upload)
    db.session.flush()
    upload.incoming_key = incoming_key(user.id, upload.id)
    db.session.commit()
    return upload


@pytest.fixture
def files(user):
    return [
        add(user, name, mime, size=100 * (i + 1), age=i)
        for i, (name, mime) in enumerate(zip(NAMES, TYPES, strict=True))
    ]


def names(html):
    return [unescape(n) for n in re.findall(r'<a href="/files/[^"/]+">([^<]+)</a>', html)]


def listed(api, query=""):
    response = api.get(f"/files?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return names(response.get_data(as_text=True))


def every_page(api, query):
    """The names on every page of a listing, following its "Next page" links."""
    html = api.get(f"/files?{query}").get_data(as_text=True)
    seen = names(html)
    while match := re.search(r'href="(/files\?[^"]+)" rel="next"', html):
        html = api.get(unescape(match.group(1))).get_data(as_text=True)
        seen += names(html)
    return seen


def test_search_is_a_case_insensitive_substring(app, api, files):
    assert listed(api, "q=HOLIDAY") == ["holiday-2.png", "Holiday.JPG"]
    assert listed(api, "q=100%25") == ["data_100%.csv"]  # LIKE's wildcards are literal
    assert listed(api, "q=_") == ["data_100%.csv"]
    assert listed(api, "q=nothing-like-this") == []
    assert "No files match" in api.get("/files?q=nothing-like-this").get_data(as_text=True)


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("image", ["holiday-2.png", "Holiday.JPG"]),
        ("document", ["Report 2026.pdf"]),
        ("archive", ["archive.zip"]),
        ("audio", ["song.mp3"]),
        ("text", ["data_100%.csv", "notes.txt"]),
        ("video", []),
    ],
)
def test_kind_filter(app, api, files, kind, expected):
    assert listed(api, f"kind={kind}") == expected


def test_status_filter(app, api, user, files):
    add(user, "refused.txt", status="rejected", age=100)
    add(user, "on its way.txt", status="scanning", age=101)
    assert listed(api, "status=rejected") == ["refused.txt"]
    assert listed(api, "status=scanning&q=way") == ["on its way.txt"]


@pytest.mark.parametrize(
    "query, key",
    [
        ("sort=name", lambda u: (u.filename.lower(), u.id)),
        ("sort=name&order=desc", lambda u: (u.filename.lower(), u.id)),
        ("sort=size", lambda u: (u.size, u.id)),
        ("sort=size&order=asc", lambda u: (u.size, u.id)),
        ("sort=date&order=asc", lambda u: (u.created_at, u.id)),
        ("", lambda u: (u.created_at, u.id)),
    ],
)
def test_every_sort_pages_exactly(app, api, user, query, key):
    app.config["FILES_PER_PAGE"] = 4
    rows = [add(user, f"{'AbC'[i % 3]}-{i % 5}.txt", size=10 * (i % 4), age=i // 2) for i in range(23)]  # ties
    descending = "order=desc" in query or query in ("sort=size", "")
    expected = [u.filename for u in sorted(rows, key=key, reverse=descending)]
    assert every_page(api, query) == expected


def test_pages_stay_exact_when_a_file_arrives_meanwhile(app, api, user):
    app.config["FILES_PER_PAGE"] = 3
    for i in range(6):
        add(user, f"n{i}.txt", age=i)
    first = api.get("/files?sort=name").get_data(as_text=True)
    following = unescape(re.search(r'href="(/files\?[^"]+)" rel="next"', first).group(1))
    add(user, "a-new-first.txt", age=10)
    assert names(api.get(following).get_data(as_text=True)) == ["n3.txt", "n4.txt", "n5.txt"]


@pytest.mark.parametrize(
    "query",
    ["sort=owner", "order=sideways", "kind=spreadsheet", "status=deleted", "view=table", "q=" + "x" * 201,
     "sort=name&after=not-a-cursor"],
)  # fmt: skip
def test_bad_parameters_are_a_readable_422(api, files, query):
    response = api.get(f"/files?{query}")
    assert response.status_code == 422
    assert "<html" in response.get_data(as_text=True).lower()


def test_a_cursor_of_one_sort_is_refused_by_another(app, api, user):
    app.config["FILES_PER_PAGE"] = 2
    for i in range(3):
        add(user, f"f{i}.txt", age=i)
    html = api.get("/files?sort=size").get_data(as_text=True)
    cursor = re.search(r"after=([^&\"]+)", html).group(1)
    assert api.get(f"/files?sort=name&after={cursor}").status_code == 422


def test_grid_view_shows_tiles_with_previews(app, api, user, files):
    files[0].thumbnail_key = "derivatives/x.png"
    db.session.commit()
    html = api.get("/files?view=grid&kind=image").get_data(as_text=True)
    assert 'id="files-grid"' in html and 'id="files"' not in html
    assert html.count('class="tile"') == 2
    assert f'src="/files/{files[0].id}/preview"' in html
    assert "view=grid" in re.search(r'href="([^"]*)"[^>]*>Clear', html).group(1)  # filters keep the view


def test_bulk_delete_asks_once_then_deletes_them_all(app, api, other_api, user, other_user, files):
    ids = [f.id for f in files]
    theirs = add(other_user, "not yours.txt").id
    chosen = [ids[1], ids[2], theirs, "../../etc"]
    page = api.form_post("/files/delete", data={"ids": chosen})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Delete 2 files?" in html and "notes.txt" in html and "not yours.txt" not in html
    assert {f.id for f in db.session.query(Upload).filter_by(user_id=user.id)} >= {ids[1], ids[2]}

    done = api.client.post(
        "/files/delete", data={"ids": chosen, "confirm": "yes", "csrf_token": api.csrf}, follow_redirects=True
    )
    assert "Deleted 2 files." in done.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Upload, ids[1]) is None and db.session.get(Upload, ids[2]) is None
    assert db.session.get(Upload, theirs).status == "available"
    assert api.client.post("/files/delete", data={"ids": [ids[3]], "confirm": "yes"}).status_code == 400  # CSRF
    nothing = api.form_post("/files/delete", data={"ids": []}, follow_redirects=True)
    assert "Tick the files to delete first." in nothing.get_data(as_text=True)


def test_rename_changes_the_shown_and_downloaded_name(app, api, other_api, user, run_worker):
    upload_id = api.upload(b"rename me", filename="draft.txt")
    run_worker()
    renamed = api.form_post(f"/files/{upload_id}/rename", data={"filename": "Final – v2.txt"}, follow_redirects=True)
    assert "Renamed to Final – v2.txt." in renamed.get_data(as_text=True)
    assert db.session.get(Upload, upload_id).filename == "Final – v2.txt"
    location = api.get(f"/files/{upload_id}/download").headers["Location"]
    disposition = requests.get(location, timeout=10).headers["Content-Disposition"]
    assert "Final" in disposition and "v2.txt" in disposition
    for bad in ["", "../evil", "a/b", "x" * 300]:
        assert api.form_post(f"/files/{upload_id}/rename", data={"filename": bad}).status_code == 422
    assert other_api.form_post(f"/files/{upload_id}/rename", data={"filename": "mine.txt"}).status_code == 404
    assert db.session.get(Upload, upload_id).filename == "Final – v2.txt"


def test_usage_and_the_empty_states(app, api, user):
    html = api.get("/files").get_data(as_text=True)
    assert "No files yet." in html and "Drop files on the box above" in html
    assert 'class="listing-controls"' not in html  # nothing to search yet
    add(user, "one.txt", size=1024 * 1024)
    html = api.get("/files").get_data(as_text=True)
    assert "No files yet." not in html
    assert re.search(r"You use 1\.0 MB of 2\.0 GB", html), re.search(r'id="usage">([^<]+)', html)


@pytest.mark.parametrize(
    "raw",
    ['["name","\\ud800","abc"]', '["name","a\\u0000b","abc"]', "[" * 3000 + "]" * 3000],
)
def test_crafted_cursors_are_a_422_not_a_500(api, raw):

    cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    assert api.get(f"/files?sort=name&after={cursor}").status_code == 422


def test_a_removed_file_cannot_be_renamed(app, api, user):
    upload = add(user, "taken down.txt", status="removed")
    assert api.form_post(f"/files/{upload.id}/rename", data={"filename": "new.txt"}).status_code == 404
