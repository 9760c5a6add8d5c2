"""The feeds page (FEEDS): placeholder mounted by app.create_app, replaced by its real page.

It shows how an upload box is used: :func:`pages.admin_parts.upload_box` in the layout, :func:`bind_upload`
once, and a callback on the box's store (``<prefix>-upload``.data: the upload's id, name, bytes, sha256 — or
``error`` and ``message``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import dash
from dash import Input, Output, html
from flask import Flask
from sqlalchemy import Engine

from pages.admin_parts import bind_upload, upload_box
from pages.shell import FEEDS, guarded, mount, nav_bar
from pages.strings import text


def create_feeds(server: Flask, engine: Engine, clock: Callable[[], datetime]) -> dash.Dash:
    """Mount the page on ``server``."""
    app = mount(server, FEEDS, text("nav.feeds"))
    app.layout = lambda: guarded(engine, clock, FEEDS, lambda actor, lang: html.Div(
        className="nh-page", lang=lang, children=[nav_bar(actor, lang, FEEDS),
                                                  upload_box("feeds", "feed", lang, ".csv,.xlsx"),
                                                  html.Div(id="feeds-sent")]))
    bind_upload(app, "feeds")

    @app.callback(Output("feeds-sent", "children"), Input("feeds-upload", "data"), prevent_initial_call=True)
    def sent(upload: dict[str, Any] | None) -> str:
        return repr(upload)

    return app
