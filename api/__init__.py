"""The JSON API (/api/v1), the login page and the public lead form, served by the app's own Flask server."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache

from flask import Flask
from sqlalchemy import Engine

from matching.privacy import load_vault

MAX_UPLOAD = 6 * 1024 * 1024


def register_api(server: Flask, engine: Engine, clock: Callable[[], datetime] | None = None) -> None:
    """Mount the API and the plain pages on ``server`` over ``engine`` (``clock``: for tests of SLA time)."""
    from api.openapi import openapi
    from api.pages import pages
    from api.routes import api

    server.config["NANHAI_ENGINE"] = engine
    server.config["NANHAI_VAULT"] = lru_cache(maxsize=1)(load_vault)
    server.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD
    if clock is not None:
        server.config["NANHAI_CLOCK"] = clock
    server.register_blueprint(api)
    server.register_blueprint(openapi)
    server.register_blueprint(pages)
