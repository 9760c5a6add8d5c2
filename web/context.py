"""What every request of the app needs from its server: the engine, the clock, the vault, a client tag.

:func:`configure` puts them in the Flask server's config once; the accessors read them inside a
request, so the API, the Dash pages and the plain pages share one engine and one clock (tests set
the clock to control SLA time).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache

from flask import Flask, current_app, request
from sqlalchemy import Engine

from matching.privacy import Vault, load_vault

# A photo (5 MB) in a multipart body with its fields; Dash callbacks are far smaller.
MAX_REQUEST_BYTES = 6 * 1024 * 1024
# A phone's own token (the lead form's long-lived cookie, or the API's header): the public lead form is limited per
# device, so that a village behind one shared address is not limited as one sender.
DEVICE_COOKIE = "nanhai_device"
DEVICE_HEADER = "X-Device-Token"
_DEVICE_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")


def configure(server: Flask, engine: Engine, clock: Callable[[], datetime] | None = None) -> None:
    """Give ``server`` its engine, vault and (for tests of SLA time) clock; cap request bodies."""
    server.config["NANHAI_ENGINE"] = engine
    server.config["NANHAI_VAULT"] = lru_cache(maxsize=1)(load_vault)
    server.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    if clock is not None:
        server.config["NANHAI_CLOCK"] = clock


def now() -> datetime:
    """The app's clock (tests set ``NANHAI_CLOCK`` to control SLA time)."""
    clock: Callable[[], datetime] = current_app.config.get("NANHAI_CLOCK", lambda: datetime.now(UTC))
    return clock()


def engine() -> Engine:
    """The database engine of this server."""
    found: Engine = current_app.config["NANHAI_ENGINE"]
    return found


def vault() -> Vault:
    """The keys that seal personal data and make person keys (loaded once per process)."""
    loaded: Vault = current_app.config["NANHAI_VAULT"]()
    return loaded


def client_tag() -> str:
    """A keyed hash of the client's address: enough to count and throttle, nothing to trace back."""
    return vault().tag("client", request.remote_addr or "unknown")


def device_token() -> str | None:
    """The sender's device token as sent (the form's cookie, or the API's header or cookie), if well-formed."""
    token = request.headers.get(DEVICE_HEADER) or request.cookies.get(DEVICE_COOKIE)
    return token if token and _DEVICE_TOKEN.fullmatch(token) else None


def device_tag() -> str | None:
    """A keyed hash of the sender's device token (what is stored and counted), or None without one."""
    token = device_token()
    return vault().tag("device", token) if token else None
