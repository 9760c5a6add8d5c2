"""The command centre's wall (/wall/): a dark, full-screen district map with counters and a ticker.

Nobody touches it. Every few seconds it asks the server one cheap question
(:func:`tasks.overview.version_stamp`); only when the answer changes does it
fetch the counters, the per-grid figures (sent as the grid layer's
``hideout``: colours change, geometry is not resent) and the ticker. A
browser-side check raises an alarm when refreshing stops, the server one when
no feed has arrived for a day. No personal data: counts and H3 density only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import dash
import dash_leaflet as dl
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate
from flask import Flask, has_request_context, request
from sqlalchemy import Engine

from gis.db import reading
from layers.basemap import basemap_layers
from layers.wall import MEASURES, density_url, district_bounds, map_view, wall_layers
from pages.shell import WALL, mount, nav_bar
from pages.strings import language, text
from tasks.overview import BEIJING, version_stamp, wall_summary
from web.session import page_actor

WALL_PATH = WALL.path
ROLES = WALL.roles
REFRESH_MS = 5000
STALE_AFTER_MS = 30000  # no successful check for this long: the browser shows the refresh alarm
CENTRE = [22.985, 113.06]
COUNTERS = ("red", "yellow", "blue", "green", "open", "overdue", "closed_today", "on_time")


def _counter(key: str, lang: str, value: str = "–") -> html.Div:
    return html.Div(className=f"nh-counter nh-counter-{key}", children=[
        html.Div(id=f"wall-{key}", className="nh-counter-value", children=value),
        html.Div(className="nh-counter-label", children=text(f"wall.{key}", lang)),
    ])


def _version(stamp: str, measure: str) -> str:
    """What the page keeps of the figures it shows: the data's version stamp and the measure they colour by."""
    return f"{stamp}|{measure}"


def _panel(summary: dict, lang: str, now: datetime, measure: str) -> tuple[list[str], list[html.Li], str, str, str]:
    """What the wall shows besides the map, from :func:`tasks.overview.wall_summary`: the counters' values,
    the ticker, the time of the figures, the measure's name and the feed alarm."""
    counters = summary["counters"]
    rate = counters["on_time_rate"]
    values = [f"{counters[k]:,}" for k in COUNTERS[:-1]] + [text("wall.none", lang) if rate is None
                                                             else f"{rate * 100:.1f}%"]
    ticker = [html.Li([html.Span(e["at"], className="nh-ticker-time"), f" {e['grid']} · {e['kind']} · ",
                       html.Strong(e["action"])]) for e in summary["ticker"]]
    as_of = f"{text('wall.as_of', lang)} {now.astimezone(BEIJING).strftime('%m-%d %H:%M:%S')}"
    alarm = text("wall.feed_stale", lang) if summary["feed_stale"] else ""
    return values, ticker, as_of, text(f"wall.measure.{measure}", lang), alarm


def _layout(engine: Engine, clock: Callable[[], datetime]) -> html.Div:
    if not has_request_context():  # Dash checks the layout once at start-up, outside any request
        return _wall("zh", None)
    lang = language(request.cookies.get("nanhai_lang"))
    actor = page_actor(engine, clock())
    if actor is None:
        return html.Div(className="nh-wall", children=[
            dcc.Location(id="wall-login", href=f"/login?next={WALL_PATH}", refresh=True),
            html.P(text("page.forbidden", lang))])
    if actor.role not in ROLES:  # logged in, but not for the wall: say so, with the way to his own pages
        return html.Div(className="nh-page", children=[
            nav_bar(actor, lang, WALL),
            html.P(text("page.not_for_role", lang), className="nh-refusal", id="page-refusal")])
    now = clock()
    scope = None if actor.sees_everything else sorted(actor.grid_ids)  # a town's commander: his town
    with reading(engine) as conn:
        bounds = district_bounds(conn, scope)
        # the stamp before the figures: a change in between makes the first refresh redraw, never hides one
        stamp = version_stamp(conn)
        summary = wall_summary(conn, now, scope)  # drawn from the start (see the note in grid_layer), and only once
    return _wall(lang, bounds, (stamp, summary, now))


def _wall(lang: str, bounds: list | None, drawn: tuple[str, dict, datetime] | None = None) -> html.Div:
    """The wall; ``drawn``: (version stamp, summary, time) of the figures it opens with, so that the first
    refresh finds them current (in the default measure) and resends nothing."""
    stamp, summary, now = drawn or (None, None, None)
    values, ticker, as_of, measure, alarm = (_panel(summary, lang, now, MEASURES[0]) if summary and now
                                             else (["–"] * len(COUNTERS), [], "", "", ""))
    return html.Div(className="nh-wall", lang=lang, children=[
        dcc.Location(id="wall-url"),
        dcc.Interval(id="wall-tick", interval=REFRESH_MS),
        dcc.Store(id="wall-version", data=_version(stamp, MEASURES[0]) if stamp else None),
        dcc.Store(id="wall-last-ok", data=now.timestamp() * 1000 if now else None),
        dcc.Store(id="wall-hideout-seen"),
        dcc.Store(id="wall-lang", data=lang),
        dcc.Store(id="wall-stale", data={"after_ms": STALE_AFTER_MS, "text": text("wall.refresh_stale", lang)}),
        html.Header(className="nh-wall-header", children=[
            html.H1(text("wall.title", lang)),
            html.Span(id="wall-measure", className="nh-wall-measure", children=measure),
            html.Span(id="wall-as-of", className="nh-wall-as-of", children=as_of),
            html.Span(id="wall-alarm", className="nh-wall-alarm", children=alarm),
            html.Span(id="wall-refresh-alarm", className="nh-wall-alarm"),
            html.A(text("page.other_language", lang), className="nh-wall-language",
                   href=f"/lang/{'zh' if lang == 'en' else 'en'}?next={WALL_PATH}"),
        ]),
        html.Div(className="nh-wall-body", children=[
            dl.Map(id="wall-map", className="nh-wall-map", zoomControl=False, attributionControl=False, zoomSnap=0.25,
                   children=[*basemap_layers(), *wall_layers(MEASURES[0], summary and summary["grids"], stamp)],
                   **map_view(bounds, CENTRE)),
            html.Aside(className="nh-wall-side", children=[
                html.Div(className="nh-counters",
                         children=[_counter(k, lang, v) for k, v in zip(COUNTERS, values, strict=True)]),
                html.H2(text("wall.ticker", lang)),
                html.Ol(id="wall-ticker", className="nh-ticker", children=ticker),
            ]),
        ]),
    ])


def _measure(search: str | None) -> str:
    wanted = parse_qs((search or "").lstrip("?")).get("measure", [MEASURES[0]])[0]
    return wanted if wanted in MEASURES else MEASURES[0]


def create_wall(server: Flask, engine: Engine, clock: Callable[[], datetime]) -> dash.Dash:
    """Mount the wall on ``server`` at /wall/."""
    wall = mount(server, WALL, text("wall.title"))
    wall.layout = lambda: _layout(engine, clock)

    @wall.callback(
        Output("wall-version", "data"), Output("wall-grids", "hideout"), Output("wall-density", "url"),
        *(Output(f"wall-{key}", "children") for key in COUNTERS),
        Output("wall-ticker", "children"), Output("wall-as-of", "children"), Output("wall-measure", "children"),
        Output("wall-alarm", "children"), Output("wall-last-ok", "data"),
        Input("wall-tick", "n_intervals"), Input("wall-url", "search"),
        State("wall-version", "data"), State("wall-lang", "data"))
    def refresh(_tick: int | None, search: str | None, known: str | None,
                lang: str) -> tuple[str | float | dict[str, Any] | list[html.Li] | dash.NoUpdate, ...]:
        now = clock()
        actor = page_actor(engine, now, ROLES)
        if actor is None:
            raise PreventUpdate  # logged out or expired: the page keeps its last picture, the alarm will show
        measure = _measure(search)
        checked = now.timestamp() * 1000
        with reading(engine) as conn:
            stamp = version_stamp(conn)
            if known == _version(stamp, measure):  # the idle refresh: one cheap query, nothing resent
                return (*[dash.no_update] * (len(COUNTERS) + 7), checked)
            summary = wall_summary(conn, now, None if actor.sees_everything else sorted(actor.grid_ids))
        values, ticker, as_of, named, alarm = _panel(summary, lang, now, measure)
        return (_version(stamp, measure), {"measure": measure, "values": summary["grids"], "seq": checked},
                density_url(stamp), *values, ticker, as_of, named, alarm, checked)

    wall.clientside_callback(
        dash.ClientsideFunction(namespace="nanhai_wall", function_name="remember"),
        Output("wall-hideout-seen", "data"), Input("wall-grids", "hideout"))
    wall.clientside_callback(
        dash.ClientsideFunction(namespace="nanhai_wall", function_name="staleAlarm"),
        Output("wall-refresh-alarm", "children"), Input("wall-tick", "n_intervals"),
        State("wall-last-ok", "data"), State("wall-stale", "data"))
    return wall

