"""The people page (PEOPLE): placeholder mounted by app.create_app, replaced by its real page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import dash
from dash import html
from flask import Flask
from sqlalchemy import Engine

from pages.shell import PEOPLE, guarded, mount, nav_bar
from pages.strings import text


def create_people(server: Flask, engine: Engine, clock: Callable[[], datetime]) -> dash.Dash:
    """Mount the page on ``server``."""
    app = mount(server, PEOPLE, text("nav.people"))
    app.layout = lambda: guarded(engine, clock, PEOPLE, lambda actor, lang: html.Div(
        className="nh-page", lang=lang, children=[nav_bar(actor, lang, PEOPLE)]))
    return app
