"""Photos of a visit: checked to be real images of a sane size, stored with the task (then with its event).

A phone uploads the photo first (and can retry that alone on a bad network),
then names it in the ``handle`` action, which attaches it to that event.
"""

from __future__ import annotations

import hashlib
import io
from datetime import datetime

from PIL import Image, UnidentifiedImageError
from sqlalchemy import Connection, text

from accounts.actor import Actor
from gis.errors import InvalidRequest, NotFound
from tasks.repository import task_row

MAX_BYTES = 5 * 1024 * 1024
MAX_SIDE = 10_000
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def inspect_image(content: bytes) -> tuple[str, int, int]:
    """(content type, width, height) of an uploaded photo, or InvalidRequest saying why it is refused."""
    if not content:
        raise InvalidRequest("照片为空 / the photo is empty", "photo")
    if len(content) > MAX_BYTES:
        raise InvalidRequest(f"照片超过 {MAX_BYTES // 1024 // 1024} MB / the photo is larger than "
                             f"{MAX_BYTES // 1024 // 1024} MB", "photo")
    try:
        with Image.open(io.BytesIO(content)) as image:
            kind, (width, height) = image.format, image.size
            image.verify()
    except Image.DecompressionBombError:
        raise InvalidRequest("照片像素过多 / the photo claims too many pixels", "photo") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidRequest(f"文件不是有效图片 / the file is not a readable image ({type(exc).__name__})",
                             "photo") from None
    if kind not in FORMATS:
        raise InvalidRequest(f"仅接受 JPEG、PNG、WebP 照片，收到 {kind} / only JPEG, PNG or WebP photos", "photo")
    if max(width, height) > MAX_SIDE:
        raise InvalidRequest(f"照片尺寸过大（{width}×{height}）/ the photo is too large", "photo")
    return FORMATS[kind], width, height


def store_photo(conn: Connection, actor: Actor, task_id: int, content: bytes, now: datetime) -> dict:
    """Store a photo for a task the actor works on; returns its id and facts."""
    row = task_row(conn, actor, task_id, now)
    if actor.role == "worker" and row.assignee_id != actor.user_id:
        raise NotFound(f"任务 {task_id} 不存在或不在您的范围内 / no task {task_id} in your scope")
    content_type, width, height = inspect_image(content)
    digest = hashlib.sha256(content).hexdigest()
    photo_id = conn.execute(text(
        "INSERT INTO task_photos (task_id, uploaded_by, uploaded_at, content_type, size, width, height, sha256, "
        "content) VALUES (:task, :by, :now, :type, :size, :w, :h, :sha, :content) RETURNING id"),
        {"task": task_id, "by": actor.user_id or 0, "now": now, "type": content_type, "size": len(content),
         "w": width, "h": height, "sha": digest, "content": content}).scalar_one()
    return {"id": photo_id, "task_id": task_id, "content_type": content_type, "size": len(content),
            "width": width, "height": height, "sha256": digest}


def load_photo(conn: Connection, actor: Actor, photo_id: int, now: datetime) -> tuple[str, bytes]:
    """(content type, bytes) of a photo whose task is in the actor's scope."""
    row = conn.execute(text("SELECT task_id, content_type, content FROM task_photos WHERE id = :id"),
                       {"id": photo_id}).one_or_none()
    if row is None:
        raise NotFound(f"照片 {photo_id} 不存在 / no photo {photo_id}")
    try:
        task_row(conn, actor, row.task_id, now)
    except NotFound:
        raise NotFound(f"照片 {photo_id} 不存在 / no photo {photo_id}") from None
    return row.content_type, bytes(row.content)
