"""The headers every answer carries, whoever made it (the API, a Dash page, a plain page, a layer).

- API answers hold personal data and session state: ``Cache-Control: no-store``, so neither a shared phone's
  browser cache nor a proxy keeps them (a photo included).
- No page may be framed by another site (clickjacking a dispatch button): ``X-Frame-Options: DENY`` for old
  browsers, and ``frame-ancestors 'none'`` added to whatever Content-Security-Policy the answer already has.
- ``X-Content-Type-Options: nosniff``: an uploaded file is never run as something else.
"""

from __future__ import annotations

from flask import Flask, Response, request

API_PREFIX = "/api/"


def _secured(response: Response) -> Response:
    if request.path.startswith(API_PREFIX):
        response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    policy = response.headers.get("Content-Security-Policy", "")
    if "frame-ancestors" not in policy:
        response.headers["Content-Security-Policy"] = f"{policy}; frame-ancestors 'none'" if policy \
            else "frame-ancestors 'none'"
    return response


def install(server: Flask) -> None:
    """Give every answer of ``server`` these headers (call once per app)."""
    server.after_request(_secured)
