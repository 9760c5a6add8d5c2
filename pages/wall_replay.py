"""The wall's after-action replay: a day picker, a time slider over the day's minutes, play and "back to live".

A commander (or an administrator) picks a past day and a minute; the wall then shows its grid colours,
counters, open and overdue work and ticker as they stood at that minute (:func:`tasks.replay.wall_summary_at`),
stamped "回放 <day> <time>", and ``wall-replay-at`` holds that moment (None: live), so that the live refresh
leaves the picture alone. Play runs in the browser (``assets/replay.js``): an interval moves the slider by 1, 10
or 60 minutes a second, and each move is one request, answered from the day loaded in memory. "Back to live"
draws the live figures at once.

The wall (``pages/wall.py``) hosts :func:`replay_controls` and calls :func:`register` with its ``panel``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from urllib.parse import parse_qs

import dash
from dash import Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate
from sqlalchemy import Engine

from gis.db import reading
from layers.wall import MEASURES
from pages.strings import text
from pages.wall import COUNTERS, ROLES
from tasks.overview import BEIJING, wall_summary
from tasks.replay import wall_summary_at
from web.session import page_actor

MINUTES = 24 * 60
SPEEDS = (1, 10, 60)  # minutes of the day per second of play
DEFAULT_SPEED = 10
STEP_MS = 1000  # one step of play a second
DAYS_BACK = 366  # the days offered: yesterday and the year before it
Panel = Callable[[dict, str, datetime, str], tuple]


def replay_controls(lang: str, today: date | None = None) -> html.Div:
    """The replay bar in ``lang``: the moment replayed (``wall-replay-at``, None: live), the day (yesterday
    first), the minute, play/pause, the speed and "back to live". ``today``: the district's date (now's)."""
    today = today or datetime.now(BEIJING).date()
    days = [(today - timedelta(days=i)).isoformat() for i in range(1, DAYS_BACK + 1)]
    return html.Div(id="wall-replay", className="nh-replay", children=[
        dcc.Store(id="wall-replay-at", data=None),
        dcc.Store(id="wall-replay-labels", data={"play": text("replay.play", lang),
                                                 "pause": text("replay.pause", lang), "last": MINUTES - 1}),
        dcc.Interval(id="wall-replay-tick", interval=STEP_MS, disabled=True),
        html.Span(text("replay.title", lang), className="nh-replay-title"),
        html.Label(className="nh-replay-day", children=[
            html.Span(text("replay.day", lang), className="nh-replay-label"),
            dcc.Dropdown(id="wall-replay-day", options=[{"label": d, "value": d} for d in days], value=days[0],
                         clearable=False, searchable=True, placeholder=text("replay.day", lang),
                         className="nh-replay-day-picker")]),
        html.Div(className="nh-replay-time", title=text("replay.time", lang), children=[
            dcc.Slider(id="wall-replay-minute", min=0, max=MINUTES - 1, step=1, value=0, updatemode="mouseup",
                       allow_direct_input=False, tooltip=None,
                       marks={h * 60: f"{h:02d}:00" for h in range(0, 24, 3)})]),
        html.Button(text("replay.play", lang), id="wall-replay-play", className="nh-replay-play", n_clicks=0),
        html.Div(className="nh-replay-speed", children=[
            html.Span(text("replay.speed", lang), className="nh-replay-label"),
            dcc.RadioItems(id="wall-replay-speed", value=DEFAULT_SPEED, inline=True,
                           options=[{"label": text("replay.speed_unit", lang).format(n=s), "value": s}
                                    for s in SPEEDS])]),
        html.Button(text("replay.live", lang), id="wall-replay-live", className="nh-replay-live", n_clicks=0),
    ])


def replay_moment(day: str | None, minute: int | None, now: datetime) -> datetime | None:
    """The moment of ``minute`` on ``day`` (ISO date, the district's), no later than ``now``; None when the
    day is not a date or lies in the future.

    >>> from datetime import UTC
    >>> replay_moment("2026-12-02", 845, datetime(2026, 12, 3, tzinfo=UTC)).isoformat()
    '2026-12-02T14:05:00+08:00'
    """
    try:
        start = datetime.combine(date.fromisoformat(day or ""), time(), BEIJING)
    except ValueError:
        return None
    if start > now:
        return None
    moment = start + timedelta(minutes=min(max(int(minute or 0), 0), MINUTES - 1))
    return min(moment, now.astimezone(BEIJING))


def replay_stamp(moment: datetime, lang: str) -> str:
    """What the wall's time reads while replaying: it is a replay, and of which moment."""
    return f"{text('replay.as_of', lang)} {moment.astimezone(BEIJING).strftime('%Y-%m-%d %H:%M')}"


def _measure(search: str | None) -> str:
    wanted = parse_qs((search or "").lstrip("?")).get("measure", [MEASURES[0]])[0]
    return wanted if wanted in MEASURES else MEASURES[0]


def register(app: dash.Dash, engine: Engine, clock: Callable[[], datetime], panel: Panel) -> None:
    """Register the replay's callbacks on the wall ``app``; ``panel`` is the wall's (summary, lang, moment,
    measure) → (counter values, ticker, time, measure name, alarm)."""

    @app.callback(
        Output("wall-replay-at", "data", allow_duplicate=True),
        Output("wall-grids", "hideout", allow_duplicate=True),
        *(Output(f"wall-{key}", "children", allow_duplicate=True) for key in COUNTERS),
        Output("wall-ticker", "children", allow_duplicate=True),
        Output("wall-as-of", "children", allow_duplicate=True),
        Input("wall-replay-minute", "value"), Input("wall-replay-day", "value"), Input("wall-replay-live", "n_clicks"),
        State("wall-url", "search"), State("wall-lang", "data"),
        prevent_initial_call=True)
    def show(minute: int | None, day: str | None, _live: int | None, search: str | None, lang: str | None) -> tuple:
        now = clock()
        actor = page_actor(engine, now, ROLES)  # checked on every step: a callback is a request like any other
        if actor is None:
            raise PreventUpdate
        lang = lang or "zh"
        scope = None if actor.sees_everything else sorted(actor.grid_ids)  # a town's commander: his town
        measure = _measure(search)
        live = ctx.triggered_id == "wall-replay-live"
        moment = now if live else replay_moment(day, minute, now)
        if moment is None:
            raise PreventUpdate
        with reading(engine) as conn:
            summary = wall_summary(conn, now, scope) if live else wall_summary_at(conn, moment, scope)
        values, ticker, as_of, _named, _alarm = panel(summary, lang, moment, measure)
        return (None if live else moment.isoformat(),
                {"measure": measure, "values": summary["grids"], "seq": now.timestamp() * 1000},
                *values, ticker, as_of if live else replay_stamp(moment, lang))

    app.clientside_callback(
        dash.ClientsideFunction(namespace="nanhai_replay", function_name="play"),
        Output("wall-replay-tick", "disabled"), Output("wall-replay-minute", "value"),
        Output("wall-replay-play", "children"),
        Input("wall-replay-play", "n_clicks"), Input("wall-replay-tick", "n_intervals"),
        Input("wall-replay-live", "n_clicks"),
        State("wall-replay-tick", "disabled"), State("wall-replay-minute", "value"),
        State("wall-replay-speed", "value"), State("wall-replay-labels", "data"),
        prevent_initial_call=True)
