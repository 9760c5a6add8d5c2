"""The administrator's file uploads: a plain multipart endpoint that streams a file to disk.

Dash's upload component carries a file as base64 inside callback JSON, and every other request is
capped at a few MiB (:data:`web.context.MAX_REQUEST_BYTES`); a day's feed is far larger. ``POST
/admin/uploads`` takes one file (field ``file``) and its ``purpose`` (feed, roster or boundary), writes
it in chunks under ``<data dir>/uploads/<id>/`` while hashing it, and answers its id, name, size and
SHA-256. The admin pages then name the upload by id; :func:`uploaded_file` turns an id back into a path
(and refuses anything that is not an upload of that purpose).

The limit is ``NANHAI_UPLOAD_LIMIT_MB`` (200 by default). Only administrators may upload; the CSRF
header and same-origin check are the API's (:func:`web.session.request_actor`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from flask import Blueprint, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from accounts.actor import ADMIN, Actor
from gis.config import data_dir
from gis.db import reading
from gis.errors import InvalidRequest, NotFound, PermissionDenied
from web.context import engine
from web.errors import json_response, register
from web.session import request_actor

UPLOAD_URL = "/admin/uploads"
PURPOSES = {"feed": (".csv", ".xlsx", ".txt"), "roster": (".csv", ".xlsx"),
            "boundary": (".gpkg", ".geojson", ".json", ".zip", ".shp", ".kml")}
DEFAULT_LIMIT_MB = 200
CHUNK = 1024 * 1024
KEEP_SECONDS = 7 * 24 * 3600  # uploads older than a week are removed at the next upload
_ID = re.compile(r"^[0-9a-f]{32}$")

uploads = Blueprint("uploads", __name__)
register(uploads)


@dataclass(frozen=True)
class Upload:
    """A file an administrator sent: where it lies and what it is."""

    id: str
    purpose: str
    name: str
    bytes: int
    sha256: str
    uploaded_by: str
    path: str


def upload_limit() -> int:
    """The largest upload in bytes (``NANHAI_UPLOAD_LIMIT_MB``, 200 MB by default)."""
    raw = os.environ.get("NANHAI_UPLOAD_LIMIT_MB", "").strip()
    try:
        megabytes = float(raw) if raw else DEFAULT_LIMIT_MB
    except ValueError:
        megabytes = DEFAULT_LIMIT_MB
    return int(megabytes * 1024 * 1024)


def upload_root() -> Path:
    """The folder the uploads lie in (under the data folder, git-ignored)."""
    folder = data_dir() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def safe_name(name: str) -> str:
    """A file name with no folder part and nothing a shell or a path could misread (Chinese kept)."""
    base = Path(name.replace("\\", "/")).name.strip()
    base = re.sub(r"[^\w.\-\u4e00-\u9fff ]", "_", base)[:120].lstrip(".")
    return base or "upload"


def _prune(root: Path, moment: float) -> None:
    for folder in root.iterdir():
        try:
            if folder.is_dir() and moment - folder.stat().st_mtime > KEEP_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


def save_upload(stream: IO[bytes], name: str, purpose: str, actor: Actor, limit: int | None = None) -> Upload:
    """Write ``stream`` (a file-like object) to a new upload folder in chunks, hashing as it goes; refuses a
    file of the wrong kind for ``purpose``, an empty one, or one over ``limit`` bytes (nothing is kept)."""
    if purpose not in PURPOSES:
        raise InvalidRequest(f"未知的上传用途 {purpose!r} / unknown upload purpose", "purpose")
    clean = safe_name(name)
    if not clean.lower().endswith(PURPOSES[purpose]):
        raise InvalidRequest(f"文件 {clean} 类型不符，应为 {' '.join(PURPOSES[purpose])} / {clean}: wrong file type, "
                             f"expected one of {' '.join(PURPOSES[purpose])}", "file")
    limit = upload_limit() if limit is None else limit
    root = upload_root()
    _prune(root, time.time())
    upload_id = uuid.uuid4().hex
    folder = root / upload_id
    folder.mkdir()
    target = folder / clean
    digest, size = hashlib.sha256(), 0
    try:
        with target.open("wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise InvalidRequest(f"文件超过上限 {limit // (1024 * 1024)} MB / the file is over the "
                                         f"{limit // (1024 * 1024)} MB limit", "file")
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise InvalidRequest(f"文件 {clean} 为空 / {clean} is empty", "file")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    upload = Upload(upload_id, purpose, clean, size, digest.hexdigest(), actor.username, str(target))
    (folder / "upload.json").write_text(json.dumps(asdict(upload), ensure_ascii=False), encoding="utf-8")
    return upload


def uploaded_file(upload_id: str, purpose: str) -> Upload:
    """The upload ``upload_id`` of ``purpose`` (refused when it is not one, or is gone)."""
    if not isinstance(upload_id, str) or not _ID.match(upload_id):
        raise InvalidRequest("上传编号无效 / not an upload id", "upload")
    meta = upload_root() / upload_id / "upload.json"
    if not meta.is_file():
        raise NotFound("上传的文件已不存在，请重新上传 / the uploaded file is gone: upload it again")
    upload = Upload(**json.loads(meta.read_text(encoding="utf-8")))
    if upload.purpose != purpose:
        raise InvalidRequest(f"此文件是为 {upload.purpose} 上传的 / this file was uploaded for {upload.purpose}",
                             "upload")
    return upload


@uploads.post(UPLOAD_URL)
def receive_upload() -> Response:
    """Take one multipart file (field ``file``) with its ``purpose``; administrators only."""
    with reading(engine()) as conn:
        actor = request_actor(conn)
    assert actor is not None  # required=True raised otherwise
    if actor.role != ADMIN:
        raise PermissionDenied("仅管理员可上传文件 / only administrators upload files")
    limit = upload_limit()
    request.max_content_length = limit + 1024 * 1024  # the multipart envelope around the file
    try:
        sent = request.files.get("file")
        purpose = request.form.get("purpose", "")
    except RequestEntityTooLarge:
        raise InvalidRequest(f"文件超过上限 {limit // (1024 * 1024)} MB / the file is over the "
                             f"{limit // (1024 * 1024)} MB limit", "file") from None
    if sent is None or not sent.filename:
        raise InvalidRequest("请选择要上传的文件 / choose a file to upload", "file")
    upload = save_upload(sent.stream, sent.filename, purpose, actor, limit)
    return json_response({key: value for key, value in asdict(upload).items() if key != "path"}, 201)
