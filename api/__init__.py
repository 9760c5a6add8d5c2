"""The JSON API (/api/v1) and its OpenAPI document, served by the app's own Flask server.

It stands on :mod:`web` (session, CSRF, refusals as JSON) and the domain packages; it does not
import :mod:`pages`.
"""

from __future__ import annotations

from flask import Flask


def register_api(server: Flask) -> None:
    """Mount /api/v1 and its OpenAPI document on ``server`` (configured by :func:`web.context.configure`)."""
    from api import field_routes, gate_routes, observation_routes  # noqa: F401  (they register on api)
    from api.openapi import openapi
    from api.routes import api
    from web.language import install

    install(server)  # refusals answered in the language of Accept-Language (Flask-Babel's locale selector)
    server.register_blueprint(api)
    server.register_blueprint(openapi)
