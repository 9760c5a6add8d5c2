"""The command centre's wall (/wall/): a dark, full-screen district map with counters and a ticker.

Nobody touches it. Every few seconds it asks the server one cheap question
(:func:`tasks.overview.version_stamp`); only when the answer changes does it
fetch the counters, the per-grid figures (sent as the grid layer's
``hideout``: colours change, geometry is not resent) and the ticker. A
browser-side check raises an alarm when refreshing stops, the server one when
no feed has arrived for a day. No personal data: counts and H3 density only.

Home observation has four counters of its own under the others (persons in observation, checks due in the
next hour, checks missed today, fevers today: :func:`observation.overview.wall_counters`); the version the
page keeps carries :func:`observation.overview.wall_stamp` too, so a check-in or a miss redraws them. They are
live figures: the replay shows "–" for them (it rebuilds tasks and codes, not follow-ups).

The map explains itself: a legend strip under it (the measure's classes, the
density and the symbols, from :mod:`layers.palette`, as the browser colours
them), and town and community names by zoom. Every size is relative to the
screen, so a 3840 x 2160 wall shows the picture of a 1920 x 1080 one. Words come
from the ``wall`` catalogs; the ticker's codes are named here, in the page's
language. Commanders get the after-action replay (``pages/wall_replay.py``) in a
bar of its own; while it replays, the live refresh stands aside.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs

import dash
import dash_leaflet as dl
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate
from flask import Flask, has_request_context, request
from sqlalchemy import Engine

from accounts.actor import ADMIN, COMMANDER
from gis.db import reading
from layers.basemap import basemap_layers
from layers.palette import legend_rows
from layers.wall import MEASURES, density_url, district_bounds, map_view, wall_layers
from observation.overview import WALL_COUNTERS as FOLLOW_UPS
from observation.overview import wall_counters, wall_stamp
from pages.shell import WALL, mount, nav_bar
from pages.strings import has_text, language, text
from tasks.kinds import load_kinds
from tasks.overview import BEIJING, version_stamp, wall_summary
from web.session import page_actor

WALL_PATH = WALL.path
ROLES = WALL.roles
REFRESH_MS = 5000
STALE_AFTER_MS = 30000  # no successful check for this long: the browser shows the refresh alarm
CENTRE = [22.985, 113.06]
TASK_COUNTERS = ("red", "yellow", "blue", "green", "open", "overdue", "closed_today", "on_time")
COUNTERS = (*TASK_COUNTERS, *FOLLOW_UPS)  # every counter the refresh (and the replay) sets, in order
REPLAYING = (COMMANDER, ADMIN)  # who gets the replay bar
REPLAY_MODULE = "pages.wall_replay"
# What the refresh callback returns: the version, the hideout, the density URL, the counters, the ticker, the
# time, the measure's name, the feed alarm, the time of the last check.
Refreshed = tuple[str | float | dict[str, Any] | list[html.Li] | None | dash.NoUpdate, ...]
Panel = tuple[list[str], list[html.Li], str, str, str]


def _range(low: int, high: int | None) -> str:
    return f"≥ {low}" if high is None else str(low) if high == low else f"{low}–{high}"


def _swatch(style: dict) -> html.Span:
    """A legend's sample of a fill, a line or a point, drawn in CSS from the palette's style."""
    kind = style["kind"]
    if kind == "fill":
        css = {"backgroundColor": style["color"], "opacity": style.get("opacity", 1)}
    elif kind == "line":  # in em, as the map's lines grow with the wall's text (nanhai.wall.scale)
        css = {"borderTopColor": style["color"], "borderTopWidth": f"{max(style['weight'], 1) / 16:.3f}em",
               "borderTopStyle": "dashed" if style.get("dashArray") else "solid"}
    else:
        css = {"backgroundColor": style["fillColor"], "borderColor": style["color"],
               "borderWidth": f"{style['weight'] / 16:.3f}em", "width": f"{style['radius'] / 8:.3f}em",
               "height": f"{style['radius'] / 8:.3f}em"}
    return html.Span(className=f"nh-swatch nh-swatch-{kind}", style=css)


def legend(measure: str, lang: str, theme: str = "dark") -> html.Div:
    """The legend of ``measure`` (``risk``, ``work``, ``density``, or a symbol: ``checkpoint``, ``town``,
    ``community``) in ``lang``, from :mod:`layers.palette`, the map's own colours: a ``div`` of class
    ``nh-legend nh-legend-<measure>``. ``theme``: ``dark`` (the wall) or ``light`` (the dispatch console)."""
    rows = [html.Li(className="nh-legend-row", children=[
        _swatch(style), html.Span(text(key, lang).format(range=_range(args["low"], args["high"])) if args
                                  else text(key, lang))]) for style, key, args in legend_rows(measure, theme)]
    title = f"legend.title.{measure}"
    return html.Div(className=f"nh-legend nh-legend-{measure}", children=[
        *([html.Div(text(title, lang), className="nh-legend-title")] if has_text(title) else []),
        html.Ul(rows, className="nh-legend-rows")])


def _legends(lang: str) -> html.Div:
    """Every legend the wall may need; the browser shows the current measure's (``nh-measure-<m>`` on the box)."""
    return html.Div(id="wall-legend", className=f"nh-wall-legend nh-measure-{MEASURES[0]}", children=[
        *(legend(m, lang) for m in MEASURES), legend("density", lang),
        html.Div(className="nh-legend nh-legend-symbols", children=[
            html.Div(text("legend.title.symbols", lang), className="nh-legend-title"),
            *(legend(symbol, lang) for symbol in ("checkpoint", "town", "community"))])])


def _replay() -> ModuleType | None:
    """The replay (``pages/wall_replay.py``) when it is installed. Imported when used, as it may import this page."""
    try:
        return importlib.import_module(REPLAY_MODULE)
    except ModuleNotFoundError as missing:
        if missing.name != REPLAY_MODULE:
            raise
        return None


def _counter(key: str, lang: str, value: str = "–") -> html.Div:
    return html.Div(className=f"nh-counter nh-counter-{key}", children=[
        html.Div(id=f"wall-{key}", className="nh-counter-value", children=value),
        html.Div(className="nh-counter-label", children=text(f"wall.{key}", lang)),
    ])


def _follow_ups(lang: str, values: list[str]) -> html.Section:
    """The home-observation counters, under a heading of their own."""
    return html.Section(className="nh-follow-counters-box", children=[
        html.H2(text("wall.follow_ups", lang)),
        html.Div(className="nh-counters nh-follow-counters",
                 children=[_counter(k, lang, v) for k, v in zip(FOLLOW_UPS, values, strict=True)])])


def _version(stamp: str, measure: str) -> str:
    """What the page keeps of the figures it shows: the data's version stamp and the measure they colour by."""
    return f"{stamp}|{measure}"


def _event(action: str, lang: str) -> str:
    key = f"wall.event.{action}"
    return text(key if has_text(key) else "wall.event.other", lang)


def _kind(code: str, lang: str) -> str:
    kind = load_kinds().get(code)
    return text("wall.event.other", lang) if kind is None else kind.name_en if lang == "en" else kind.name


def ticker_items(events: list[dict], lang: str) -> list[html.Li]:
    """The ticker's lines from :func:`tasks.overview.ticker`'s events, in ``lang``: time, what happened, the
    task's kind, and the grid (a name, kept as written; last, as a long one is cut short on a narrow wall)."""
    return [html.Li(className="nh-ticker-item", children=[
        html.Span(e["at"], className="nh-ticker-time"), html.Strong(_event(e["action"], lang)), " · ",
        html.Span(_kind(e["kind"], lang), className="nh-ticker-kind"), " · ",
        html.Span(e["grid"], className="nh-name nh-ticker-grid")]) for e in events]


def panel(summary: dict, lang: str, now: datetime, measure: str) -> Panel:
    """What the wall shows besides the map, from a summary shaped as :func:`tasks.overview.wall_summary`'s (live,
    or replayed as it stood at ``now``): the counters' values, the ticker's lines, the time of the figures, the
    measure's name and the feed alarm, in ``lang``. The replay (``pages/wall_replay.py``) draws through it too."""
    counters = summary["counters"]
    rate = counters["on_time_rate"]
    # the follow-up counters come with a live summary only (``follow_ups``): a replayed one shows "–"
    follow_ups = summary.get("follow_ups")
    values = [f"{counters[k]:,}" for k in TASK_COUNTERS[:-1]] + \
        [text("wall.none", lang) if rate is None else f"{rate * 100:.1f}%"] + \
        [f"{follow_ups[k]:,}" if follow_ups else "–" for k in FOLLOW_UPS]
    ticker = ticker_items(summary["ticker"], lang) or \
        [html.Li(text("wall.ticker_empty", lang), className="nh-ticker-empty")]
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
        follow = wall_stamp(conn, now)
        summary = wall_summary(conn, now, scope)  # drawn from the start (see the note in grid_layer), and only once
        summary["follow_ups"] = wall_counters(conn, now, scope)
    return _wall(lang, bounds, (f"{stamp}|{follow}", summary, now), replaying=actor.role in REPLAYING)


def _replay_bar(lang: str, replaying: bool) -> list:
    """The replay's controls in their own bar under the header (never over the map), for the commanders; for
    everybody else, and while the replay is not installed, only the store the live refresh reads (None: live)."""
    replay = _replay() if replaying else None
    if replay is None:
        return [dcc.Store(id="wall-replay-at", data=None)]
    return [html.Div(id="wall-replay-bar", className="nh-wall-replay-bar", children=replay.replay_controls(lang))]


def _wall(lang: str, bounds: list | None, drawn: tuple[str, dict, datetime] | None = None,
          replaying: bool = False) -> html.Div:
    """The wall; ``drawn``: (version stamp, summary, time) of the figures it opens with, so that the first
    refresh finds them current (in the default measure) and resends nothing. The stamp is the tasks' and the
    follow-ups' (``<version_stamp>|<wall_stamp>``)."""
    stamp, summary, now = drawn or (None, None, None)
    tasks = stamp.split("|")[0] if stamp else None  # the density layer's version: the tasks' stamp
    values, ticker, as_of, measure, alarm = (panel(summary, lang, now, MEASURES[0]) if summary and now
                                             else (["–"] * len(COUNTERS), [], "", "", ""))
    other = "zh" if lang == "en" else "en"
    return html.Div(className="nh-wall", lang=lang, children=[
        dcc.Location(id="wall-url"),
        dcc.Interval(id="wall-tick", interval=REFRESH_MS),
        dcc.Store(id="wall-version", data=_version(stamp, MEASURES[0]) if stamp else None),
        dcc.Store(id="wall-last-ok", data=now.timestamp() * 1000 if now else None),
        dcc.Store(id="wall-hideout-seen"),
        dcc.Store(id="wall-lang", data=lang),
        dcc.Store(id="wall-stale", data={"after_ms": STALE_AFTER_MS, "text": text("wall.refresh_stale", lang)}),
        # the tab's title and language, and the bounds the map keeps fitted when its box changes size
        dcc.Store(id="wall-page", data={"title": text("wall.title", lang), "lang": lang, "bounds": bounds}),
        dcc.Store(id="wall-page-set"),
        html.Header(className="nh-wall-header", children=[
            html.H1(text("wall.title", lang)),
            html.Span(id="wall-measure", className="nh-wall-measure", children=measure),
            html.Span(id="wall-as-of", className="nh-wall-as-of", children=as_of),
            html.Span(id="wall-alarm", className="nh-wall-alarm", children=alarm),
            html.Span(id="wall-refresh-alarm", className="nh-wall-alarm"),
            html.A(text("page.other_language", lang), className="nh-wall-language", lang=other,
                   href=f"/lang/{other}?next={WALL_PATH}"),
        ]),
        *_replay_bar(lang, replaying),
        html.Div(className="nh-wall-body", children=[
            html.Div(className="nh-wall-mapbox", children=[
                # zoomSnap 0.1: the district fills the map at any wall size (at 0.25 up to a sixth was left empty)
                dl.Map(id="wall-map", className="nh-wall-map", zoomControl=False, attributionControl=False,
                       zoomSnap=0.1,
                       children=[*basemap_layers(), *wall_layers(MEASURES[0], summary and summary["grids"], tasks)],
                       **map_view(bounds, CENTRE)),
                _legends(lang)]),
            html.Aside(className="nh-wall-side", children=[
                html.Div(className="nh-counters",
                         children=[_counter(k, lang, v) for k, v in zip(TASK_COUNTERS, values, strict=False)]),
                _follow_ups(lang, values[len(TASK_COUNTERS):]),
                html.H2(text("wall.ticker", lang)),
                html.Ol(id="wall-ticker", className="nh-ticker", children=ticker),
            ]),
        ]),
    ])


def _measure(search: str | None) -> str:
    wanted = parse_qs((search or "").lstrip("?")).get("measure", [MEASURES[0]])[0]
    return wanted if wanted in MEASURES else MEASURES[0]


def create_wall(server: Flask, engine: Engine, clock: Callable[[], datetime]) -> dash.Dash:
    """Mount the wall on ``server`` at /wall/ (with the replay, when installed)."""
    wall = mount(server, WALL, "wall.title")
    wall.layout = lambda: _layout(engine, clock)
    outputs = 3 + len(COUNTERS) + 5

    @wall.callback(
        Output("wall-version", "data"), Output("wall-grids", "hideout"), Output("wall-density", "url"),
        *(Output(f"wall-{key}", "children") for key in COUNTERS),
        Output("wall-ticker", "children"), Output("wall-as-of", "children"), Output("wall-measure", "children"),
        Output("wall-alarm", "children"), Output("wall-last-ok", "data"),
        Input("wall-tick", "n_intervals"), Input("wall-url", "search"),
        State("wall-version", "data"), State("wall-lang", "data"), State("wall-replay-at", "data"))
    def refresh(_tick: int | None, search: str | None, known: str | None, lang: str,
                replay_at: str | None) -> Refreshed:
        now = clock()
        actor = page_actor(engine, now, ROLES)
        if actor is None:
            raise PreventUpdate  # logged out or expired: the page keeps its last picture, the alarm will show
        measure = _measure(search)
        checked = now.timestamp() * 1000
        if replay_at is not None:
            # Replaying: the replay draws the figures. The check still counts (no refresh alarm), and the version
            # is forgotten, so that going live again redraws everything on the next tick.
            return (None if known is not None else dash.no_update, *[dash.no_update] * (outputs - 2), checked)
        with reading(engine) as conn:
            stamp = version_stamp(conn)
            version = _version(f"{stamp}|{wall_stamp(conn, now)}", measure)
            if known == version:  # the idle refresh: a few cheap queries, nothing resent
                return (*[dash.no_update] * (outputs - 1), checked)
            scope = None if actor.sees_everything else sorted(actor.grid_ids)
            summary = {**wall_summary(conn, now, scope), "follow_ups": wall_counters(conn, now, scope)}
        values, ticker, as_of, named, alarm = panel(summary, lang, now, measure)
        return (version, {"measure": measure, "values": summary["grids"], "seq": checked},
                density_url(stamp), *values, ticker, as_of, named, alarm, checked)

    replay = _replay()
    if replay is not None:
        replay.register(wall, engine, clock, panel)
    wall.clientside_callback(
        dash.ClientsideFunction(namespace="nanhai_wall", function_name="remember"),
        Output("wall-hideout-seen", "data"), Input("wall-grids", "hideout"))
    wall.clientside_callback(
        dash.ClientsideFunction(namespace="nanhai_wall", function_name="staleAlarm"),
        Output("wall-refresh-alarm", "children"), Input("wall-tick", "n_intervals"),
        State("wall-last-ok", "data"), State("wall-stale", "data"))
    wall.clientside_callback(
        dash.ClientsideFunction(namespace="nanhai_wall", function_name="legend"),
        Output("wall-legend", "className"), Input("wall-url", "search"))
    wall.clientside_callback(
        dash.ClientsideFunction(namespace="nanhai_wall", function_name="page"),
        Output("wall-page-set", "data"), Input("wall-page", "data"))
    return wall
