"""The administrators' upload endpoint: streamed to disk with its SHA-256, refused for anyone else, for a file of
the wrong kind, an empty one or one over the limit — and nothing kept of a refused one."""

from __future__ import annotations

import hashlib
import io

import pytest
from flask import Flask

from api import register_api
from gis.errors import InvalidRequest, NotFound
from tests.conftest import signed_in
from web.context import configure
from web.uploads import UPLOAD_URL, uploaded_file, uploads


@pytest.fixture()
def server(work_engine, tmp_path, monkeypatch) -> Flask:
    monkeypatch.setenv("NANHAI_DATA_DIR", str(tmp_path))
    server = Flask(__name__)
    configure(server, work_engine)
    register_api(server)
    server.register_blueprint(uploads)
    return server


@pytest.fixture()
def client(server):
    return server.test_client()


def _send(client, body: bytes, name: str, purpose: str = "feed"):
    csrf = client.get("/api/v1/session").get_json().get("csrf_token", "")
    return client.post(UPLOAD_URL, data={"purpose": purpose, "file": (io.BytesIO(body), name)},
                       headers={"X-CSRF-Token": csrf}, content_type="multipart/form-data")


def test_an_administrator_uploads_a_file_that_is_kept_with_its_hash(client, tmp_path):
    body = "身份证号,姓名\n".encode() + b"x" * (7 * 1024 * 1024)  # over the 6 MiB cap of every other request
    answer = _send(signed_in(client, "demo_admin"), body, "卫健局 12月2日.csv")
    assert answer.status_code == 201, answer.get_data(as_text=True)
    sent = answer.get_json()
    assert sent["bytes"] == len(body) and sent["sha256"] == hashlib.sha256(body).hexdigest()
    assert "path" not in sent and sent["name"] == "卫健局 12月2日.csv"
    kept = uploaded_file(sent["id"], "feed")
    assert open(kept.path, "rb").read() == body and kept.uploaded_by == "demo_admin"
    with pytest.raises(InvalidRequest, match="uploaded for feed"):
        uploaded_file(sent["id"], "roster")
    with pytest.raises(NotFound):
        uploaded_file("0" * 32, "feed")
    with pytest.raises(InvalidRequest):
        uploaded_file("../../etc/passwd", "feed")


def test_only_administrators_upload(server):
    assert _send(server.test_client(), b"a,b\n", "x.csv").status_code == 401
    for username in ("demo_supervisor", "demo_commander", "demo_worker", "demo_reporter"):
        answer = _send(signed_in(server.test_client(), username), b"a,b\n", "x.csv")
        assert answer.status_code == 403, username
    forged = signed_in(server.test_client(), "demo_admin").post(
        UPLOAD_URL, data={"purpose": "feed", "file": (io.BytesIO(b"a,b\n"), "x.csv")},
        content_type="multipart/form-data")
    assert forged.status_code == 403, "no CSRF token, no upload"


def test_wrong_kind_empty_and_oversized_files_are_refused_and_not_kept(client, tmp_path, monkeypatch):
    signed_in(client, "demo_admin")
    wrong = _send(client, b"MZ\x90\x00", "list.exe")
    refusal = wrong.get_json()
    assert wrong.status_code == 422 and refusal["field"] == "file" and "list.exe" in refusal["message"]
    assert _send(client, b"", "empty.csv").status_code == 422
    assert _send(client, b"a,b\n", "x.csv", purpose="anything").status_code == 422
    monkeypatch.setenv("NANHAI_UPLOAD_LIMIT_MB", "1")
    big = _send(client, b"y" * (3 * 1024 * 1024), "big.csv")
    assert big.status_code == 422 and "1 MB" in big.get_json()["message"]
    just_over = _send(client, b"y" * (1024 * 1024 + 10), "over.csv")
    assert just_over.status_code == 422
    assert not [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()], "a refused upload leaves nothing"
