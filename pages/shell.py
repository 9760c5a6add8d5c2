"""What every page shares: which roles may open which page, the navigation bar, and the page guard.

A page's layout calls :func:`guarded` first: somebody not logged in is sent to
the login page (and back afterwards), somebody whose role may not open the
page gets a plain refusal with the links he may follow. Callbacks check again
with :func:`web.session.page_actor`; the layout is not the only gate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import dash
from dash import dcc, html
from flask import Flask, Response, has_request_context, request
from sqlalchemy import Engine

from accounts.actor import ADMIN, COMMANDER, REPORTER, ROLE_NAMES, SUPERVISOR, WORKER, Actor
from gis.errors import GridError, InvalidRequest
from pages.strings import language, text
from web.errors import error_response
from web.session import page_actor


@dataclass(frozen=True)
class Page:
    """One page of the app: its path, the roles that may open it, the key of its name in the strings."""

    key: str
    path: str
    roles: tuple[str, ...]


WALL = Page("wall", "/wall/", (COMMANDER, ADMIN))
DISPATCH = Page("dispatch", "/dispatch/", (SUPERVISOR, COMMANDER, ADMIN))
FIELD = Page("field", "/field/", (WORKER,))
REPORTS = Page("reports", "/reports/", (REPORTER, SUPERVISOR, COMMANDER, ADMIN))
PEOPLE = Page("people", "/people/", (SUPERVISOR, COMMANDER, ADMIN))
REVIEW = Page("review", "/review/", (SUPERVISOR, COMMANDER, ADMIN))
AUDIT = Page("audit", "/admin/audit/", (COMMANDER, ADMIN))
USERS = Page("users", "/admin/users/", (ADMIN,))
FEEDS = Page("feeds", "/admin/feeds/", (ADMIN,))
BOUNDARIES = Page("boundaries", "/admin/boundaries/", (ADMIN,))
RULES = Page("rules", "/admin/rules/", (ADMIN,))
PAGES = (WALL, DISPATCH, FIELD, REPORTS, PEOPLE, REVIEW, USERS, FEEDS, BOUNDARIES, RULES, AUDIT)
HOME = {COMMANDER: WALL, ADMIN: DISPATCH, SUPERVISOR: DISPATCH, WORKER: FIELD, REPORTER: REPORTS}


def refusal(exc: GridError) -> html.P:
    """A refusal as every page shows it: one line in the error style with its Chinese / English message."""
    return html.P(str(exc), className="nh-error")


def data(**attributes: str) -> dict[str, Any]:
    """HTML ``data-*`` attributes for a Dash component, to be splatted: ``**data(due=x)`` is ``data-due=x``
    (a hyphen cannot be in a keyword argument; the dict's values go to the component's untyped ``**kwargs``)."""
    return {f"data-{name}": value for name, value in attributes.items()}


def home_for(role: str) -> str:
    """Where a user of ``role`` lands after logging in."""
    return HOME.get(role, REPORTS).path


def pages_for(role: str) -> list[Page]:
    """The pages ``role`` may open, in menu order."""
    return [page for page in PAGES if role in page.roles]


def page_language() -> str:
    """The language of this request (the ``nanhai_lang`` cookie), Chinese outside a request."""
    return language(request.cookies.get("nanhai_lang")) if has_request_context() else "zh"


def nav_bar(actor: Actor, lang: str, current: Page) -> html.Nav:
    """The top bar: the platform's name, the pages this role may open, who is logged in, language, log out."""
    other = "en" if lang == "zh" else "zh"
    return html.Nav(className="nh-nav", children=[
        html.Span(text("app.title", lang), className="nh-nav-title"),
        *[html.A(text(f"nav.{page.key}", lang), href=page.path,
                 className="nh-nav-link nh-nav-current" if page == current else "nh-nav-link")
          for page in pages_for(actor.role)],
        html.Span(f"{actor.display_name or actor.username} · {ROLE_NAMES.get(actor.role, actor.role)}",
                  className="nh-nav-user", id="nav-user"),
        html.A(text("page.other_language", lang), href=f"/lang/{other}?next={current.path}",
               className="nh-nav-link"),
        html.Form(method="post", action="/logout", className="nh-nav-logout",
                  children=html.Button(text("nav.logout", lang), type="submit", id="nav-logout")),
    ])


def guarded(engine: Engine, clock: Callable[[], datetime], page: Page,
            build: Callable[[Actor, str], html.Div]) -> html.Div:
    """The page built for the logged-in actor, or a redirect to the login page, or a refusal."""
    lang = page_language()
    if not has_request_context():  # Dash validates the layout once at start-up, outside any request
        return html.Div()
    actor = page_actor(engine, clock())
    if actor is None:
        return html.Div(children=[dcc.Location(id="login-redirect", href=f"/login?next={page.path}", refresh=True),
                                  html.P(text("page.login_needed", lang))])
    if actor.role not in page.roles:
        return html.Div(className="nh-page", children=[
            nav_bar(actor, lang, page),
            html.P(text("page.not_for_role", lang), className="nh-refusal", id="page-refusal")])
    return build(actor, lang)


ASSETS = str(Path(__file__).resolve().parent.parent / "assets")


def mount(server: Flask, page: Page, title: str) -> dash.Dash:
    """A Dash app for ``page`` on ``server`` at its path, with the app's own assets and nothing from a CDN.

    A callback request naming an output the page does not have is refused (400 JSON) before Dash looks it up:
    Dash itself would fail it with a 500."""
    app = _dash_app(server, page, title)
    update_path = f"{page.path}_dash-update-component"

    def known_callback() -> Response | None:
        if request.path != update_path or request.method != "POST":
            return None
        body = request.get_json(silent=True)
        output = body.get("output") if isinstance(body, dict) else None
        if isinstance(output, str) and output in app.callback_map:
            return None
        return error_response(InvalidRequest("未知的回调 / no such callback on this page", "output"))

    server.before_request(known_callback)
    return app


def _dash_app(server: Flask, page: Page, title: str) -> dash.Dash:
    return dash.Dash(f"nanhai_{page.key}",
                     server=server,  # type: ignore[arg-type]  # stub says bool|callable; documented: a Flask server
                     url_base_pathname=page.path, title=title, serve_locally=True,
                     update_title=None,  # type: ignore[arg-type]  # stub says str; documented: None disables it
                     assets_folder=ASSETS, suppress_callback_exceptions=True)
