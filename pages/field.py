"""Placeholder for the /field/ page (being built)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import dash
from dash import html
from flask import Flask
from sqlalchemy import Engine

from pages.shell import FIELD, guarded, mount, nav_bar
from pages.strings import text


def create_field(server: Flask, engine: Engine, clock: Callable[[], datetime]) -> dash.Dash:
    """Mount the page on ``server``."""
    app = mount(server, FIELD, text("nav.field"))
    app.layout = lambda: guarded(engine, clock, FIELD, lambda actor, lang: html.Div(
        className="nh-page", children=[nav_bar(actor, lang, FIELD)]))
    return app
