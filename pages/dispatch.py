"""Placeholder for the /dispatch/ page (being built)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import dash
from dash import html
from flask import Flask
from sqlalchemy import Engine

from pages.shell import DISPATCH, guarded, mount, nav_bar
from pages.strings import text


def create_dispatch(server: Flask, engine: Engine, clock: Callable[[], datetime]) -> dash.Dash:
    """Mount the page on ``server``."""
    app = mount(server, DISPATCH, text("nav.dispatch"))
    app.layout = lambda: guarded(engine, clock, DISPATCH, lambda actor, lang: html.Div(
        className="nh-page", children=[nav_bar(actor, lang, DISPATCH)]))
    return app
