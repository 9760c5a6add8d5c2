"""What every page shares: which roles may open which page, the navigation bar, and the page guard.

A page's layout calls :func:`guarded` first: somebody not logged in is sent to
the login page (and back afterwards), somebody whose role may not open the
page gets a plain refusal with the links he may follow. Callbacks check again
with :func:`web.session.page_actor`; the layout is not the only gate.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import dash
import dash_mantine_components as dmc
from dash import dcc, html
from dash.development.base_component import ComponentRegistry
from flask import Flask, Response, has_request_context, request
from sqlalchemy import Engine

from accounts.actor import ADMIN, COMMANDER, REPORTER, SUPERVISOR, WORKER, Actor
from gis.errors import GridError, InvalidRequest
from pages.strings import has_text, language, one_language, text
from tasks.kinds import load_kinds
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
    """A refusal as every page shows it: one line in the error style, its "中文 / English" message in the page's
    language."""
    return html.P(one_language(str(exc), page_language()), className="nh-error")


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


def role_name(role: str | None, lang: str) -> str:
    """A role's name in ``lang`` (the role's code when the catalogs do not name it)."""
    return text(f"role.{role}", lang) if role and has_text(f"role.{role}") else role or ""


NAMED = re.compile(r"\[\[(.+?)\]\]")


def marked(value: str) -> list[Any]:
    """A catalog string whose ``[[…]]`` parts are names kept as they are (a file's Chinese column headers on
    an English page) as text and ``nh-name`` spans.

    >>> marked("headers such as [[姓名]] (name)")
    ['headers such as ', Span(children='姓名', className='nh-name'), ' (name)']
    """
    parts = NAMED.split(value)
    return [name(part) if index % 2 else part for index, part in enumerate(parts) if part]


def label(prefix: str, key: str | None, lang: str) -> str:
    """The shown name of a code (a status, an action, a problem: the string ``<prefix>.<key>``), the code itself
    when the catalogs do not name it."""
    return text(f"{prefix}.{key}", lang) if key and has_text(f"{prefix}.{key}") else key or ""


def kind_name(code: str | None, lang: str) -> str:
    """A task kind's name in ``lang`` (tasks/kinds.toml's name or name_en), the code when it is not a kind."""
    kind = load_kinds().get(code or "")
    return code or "" if kind is None else (kind.name_en if lang == "en" else kind.name)


def name(value: str | None, **attributes: Any) -> html.Span:
    """A person's, place's or user's name as the pages show it: as it is, in either language (the language
    check leaves ``nh-name`` alone)."""
    return html.Span(value or "", className="nh-name", **attributes)


def use_mantine(app: dash.Dash) -> None:
    """Serve dash-mantine-components' scripts (about 1 MB) with ``app``, a page that draws one of its components
    (a :func:`date_picker`). Dash serves every component library imported in the process with every Dash app,
    the wall and the phone page too: the library leaves Dash's registry (once, whoever asks first) and joins the
    scripts of the pages that use it. Safe to call for several pages and several apps in one process."""
    if dmc.__name__ in ComponentRegistry.registry:
        ComponentRegistry.registry.discard(dmc.__name__)
    for resource in dmc._js_dist:
        script = {**resource, "namespace": dmc.__name__}
        if script not in app.scripts._resources._resources:
            app.scripts.append_script(script)


DAYJS_LOCALE = {"zh": "zh-cn", "en": "en"}  # zh-cn: assets/dayjs-locale-zh-cn.js; en is dayjs's own


def date_picker(component_id: str, lang: str, span: bool = False, value: str | list[str] | None = None,
                **props: Any) -> dmc.MantineProvider:
    """A date picker (a day, or a span of days when ``span``) whose calendar, placeholder and controls are in the
    page's language: Mantine's, with dayjs's Chinese locale vendored under assets/ (no CDN). Its ``value`` is
    "YYYY-MM-DD" (a list of two for a span). The page's app must serve Mantine's scripts: :func:`use_mantine`."""
    labels = {"nextMonth": "next_month", "previousMonth": "previous_month", "nextYear": "next_year",
              "previousYear": "previous_year", "nextDecade": "next_decade", "previousDecade": "previous_decade",
              "monthLevelControl": "month_level", "yearLevelControl": "year_level"}
    picker = dmc.DatePickerInput(
        id=component_id, type="range" if span else "default", value=value, valueFormat="YYYY-MM-DD",
        placeholder=text("date.pick_range" if span else "date.pick", lang), allowSingleDateInRange=span,
        ariaLabels={key: text(f"date.{word}", lang) for key, word in labels.items()},
        nextLabel=text("date.next_month", lang), previousLabel=text("date.previous_month", lang),
        clearButtonProps={"aria-label": text("date.clear", lang)}, className="nh-date", size="sm", **props)
    return dmc.MantineProvider(dmc.DatesProvider(picker, settings={"locale": DAYJS_LOCALE.get(lang, "zh-cn"),
                                                                   "firstDayOfWeek": 1}))


def nav_bar(actor: Actor, lang: str, current: Page) -> html.Nav:
    """The top bar: the platform's name, the pages this role may open, who is logged in, language, log out."""
    other = "en" if lang == "zh" else "zh"
    return html.Nav(className="nh-nav", children=[
        html.Span(text("app.title", lang), className="nh-nav-title"),
        *[html.A(text(f"nav.{page.key}", lang), href=page.path,
                 className="nh-nav-link nh-nav-current" if page == current else "nh-nav-link")
          for page in pages_for(actor.role)],
        html.Span([name(actor.display_name or actor.username), f" · {role_name(actor.role, lang)}"],
                  className="nh-nav-user", id="nav-user"),
        html.A(text("page.other_language", lang), href=f"/lang/{other}?next={current.path}",
               className="nh-nav-link", lang=other),
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


def mount(server: Flask, page: Page, title_key: str) -> dash.Dash:
    """A Dash app for ``page`` on ``server`` at its path, titled by the catalog string ``title_key`` in the reader's
    language, with the app's own assets and nothing from a CDN.

    A callback request naming an output the page does not have is refused (400 JSON) before Dash looks it up:
    Dash itself would fail it with a 500."""
    app = _dash_app(server, page, title_key)
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


class _Page(dash.Dash):
    """A Dash app whose HTML page says its language and has its title in it (Dash's are fixed at start-up)."""

    title_key = "app.title"  # the catalog key of the page's title, set by :func:`mount`

    def interpolate_index(self, metas: Any = "", title: Any = "", css: Any = "", config: Any = "",
                          scripts: Any = "", app_entry: Any = "", favicon: Any = "", renderer: Any = "") -> Any:
        lang = page_language()
        # what assets/lang.js puts into Leaflet's controls, which draw their titles in English
        strings = json.dumps({word: text(f"map.{word}", lang) for word in ("zoom_in", "zoom_out", "leaflet")},
                             ensure_ascii=False).replace("</", "<\\/")
        page: str = super().interpolate_index(
            metas=f'{metas}\n<script type="application/json" id="nh-page-strings">{strings}</script>',
            title=text(self.title_key, lang), css=css, config=config, scripts=scripts,
            app_entry=app_entry, favicon=favicon, renderer=renderer)
        return page.replace("<html>", f'<html lang="{"en" if lang == "en" else "zh-CN"}">', 1)


def _dash_app(server: Flask, page: Page, title_key: str) -> dash.Dash:
    app = _Page(f"nanhai_{page.key}",
                server=server,  # type: ignore[arg-type]  # stub says bool|callable; documented: a Flask server
                url_base_pathname=page.path, title=text(title_key, "zh"), serve_locally=True,
                update_title=None,  # type: ignore[arg-type]  # stub says str; documented: None disables it
                # the field app, the gate, the lead form and their vendored scripts are served by their own plain pages
                assets_folder=ASSETS, assets_path_ignore=["^(field|gate|lead|observation|vendor)$"],
                suppress_callback_exceptions=True)
    app.title_key = title_key
    return app
