"""Placeholder for the /reports/ page (being built)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import dash
from dash import html
from flask import Flask
from sqlalchemy import Engine

from pages.shell import REPORTS, guarded, mount, nav_bar
from pages.strings import text


def create_reports(server: Flask, engine: Engine, clock: Callable[[], datetime]) -> dash.Dash:
    """Mount the page on ``server``."""
    app = mount(server, REPORTS, text("nav.reports"))
    app.layout = lambda: guarded(engine, clock, REPORTS, lambda actor, lang: html.Div(
        className="nh-page", children=[nav_bar(actor, lang, REPORTS)]))
    return app
