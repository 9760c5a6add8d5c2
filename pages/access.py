"""Who is looking at a page or firing a Dash callback: the same server-side session as the API.

A Dash callback is a POST with a JSON body from the page itself; a forged
cross-site one cannot carry the SameSite=Lax session cookie, and when the
browser names its ``Origin`` it must be this site.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import request
from sqlalchemy import Engine

from accounts.actor import Actor
from accounts.repository import session_actor
from api.http import SESSION_COOKIE
from gis.db import reading


def page_actor(engine: Engine, now: datetime | None = None, roles: tuple[str, ...] = ()) -> Actor | None:
    """The logged-in actor of this request if his role is one of ``roles`` (any role when empty), else None."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    origin = request.headers.get("Origin")
    if request.method == "POST" and origin and urlsplit(origin).netloc != request.host:
        return None
    with reading(engine) as conn:
        found = session_actor(conn, token, now or datetime.now(UTC))
    if found is None or (roles and found[0].role not in roles):
        return None
    return found[0]
