"""The statistics page (/reports/): persons by colour, tasks by status, the indicators and the daily trend.

A reporter, supervisor, commander or administrator picks a level (district, town, community, grid), an area
in his scope (a town or community code: every grid under it) and a range of Beijing days (the last 7 by
default; presets for today, 7 and 30 days; a Mantine date picker in the page's language); the page names the
unit it covers (a supervisor's community, a town commander's town, else the district), and shows the daily
trend, then persons by colour (one small chart per colour, so red and yellow stay readable beside green),
tasks by status and the rates (horizontal bars, sorted, as tall as the rows need), each with a table whose
headers sort it (``assets/reports.js``), and the home-observation follow-ups per unit (persons followed, checks
done and missed, the completion rate, persons lost to follow-up) in a table of their own. A print button
prints tables and charts (``assets/reports.css``).

Downloads, with the page's query and language: the rows as CSV and Excel (``/reports/export.csv``,
``/reports/export.xlsx``: the same cells, :mod:`evaluation.export`), and the one-click daily report (日报) of the
range's last day as Excel and PDF (``/reports/daily.xlsx``, ``/reports/daily.pdf``). Every download checks the
session itself (:func:`web.session.page_actor`), applies the actor's scope and, for a reporter, suppresses
persons 1–4 ("<5" on the page and in the files), and is written to the audit log (``reports.export``).

The figures come from :func:`evaluation.indicators.report_rows` (with the row of the persons and tasks placed in
no grid for a district-wide reader, so the totals are the wall's) and :mod:`evaluation.daily`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import dash
import dash_mantine_components as dmc
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate
from flask import Flask, Response, redirect, request
from plotly.subplots import make_subplots
from sqlalchemy import Engine
from werkzeug.wrappers import Response as BaseResponse

from accounts.actor import REPORTER, Actor
from accounts.repository import record_read
from evaluation.daily import daily, trend
from evaluation.export import (
    CSV_MEDIA,
    PDF_MEDIA,
    PERCENTS,
    RATES,
    SUPPRESSED_TEXT,
    XLSX_MEDIA,
    Stamp,
    daily_pdf,
    daily_xlsx,
    percent,
    report_sheet,
    sheet_csv,
    sheet_xlsx,
    shown,
)
from evaluation.indicators import (
    BEIJING,
    COLOURS,
    FOLLOW_UP_COLUMNS,
    LEVELS,
    REPORT_COLUMNS,
    STATUS_COLUMNS,
    UNPLACED,
    Period,
    areas,
    report_rows,
    scope_unit,
)
from gis.db import changing, reading
from gis.errors import GridError, InvalidRequest
from pages import strings
from pages.shell import REPORTS, date_picker, guarded, mount, nav_bar, page_language, use_mantine
from pages.strings import text
from tasks.lifecycle import STATUSES
from web.context import client_tag
from web.errors import refusals_shown, status_of
from web.session import page_actor

ROLES = REPORTS.roles
DEFAULT_LEVEL = "district"
DEFAULT_DAYS = 7
PRESETS = {"today": 1, "7": 7, "30": 30}  # preset: days, today included
EXPORT_CSV = f"{REPORTS.path}export.csv"
EXPORT_XLSX = f"{REPORTS.path}export.xlsx"
DAILY_XLSX = f"{REPORTS.path}daily.xlsx"
DAILY_PDF = f"{REPORTS.path}daily.pdf"
COLOUR_HEX = {"red": "#e03131", "yellow": "#f0b429", "blue": "#1c7ed6", "green": "#2f9e44"}
STATUS_HEX = {"created": "#adb5bd", "dispatched": "#74c0fc", "accepted": "#4dabf7", "declined": "#ffa94d",
              "in_progress": "#1c7ed6", "handled": "#9775fa", "closed": "#2f9e44", "cancelled": "#868e96"}
RATE_HEX = dict(zip(RATES, ("#2f9e44", "#1c7ed6", "#f76707", "#9775fa"), strict=True))
INDICATOR_COLUMNS = ("tasks", "closed", "closure_rate", "closed_on_time", "open_overdue", "on_time_rate",
                     "reworked", "rework_rate", "extended", "extension_rate", "median_handling_hours",
                     "p90_handling_hours")
PERSON_COLUMNS = tuple(f"persons_{c}" for c in COLOURS)
TREND_SHOWN = ("new_red", "new_yellow", "opened", "closed", "closed_on_time", "on_time_rate")
BAR_HEIGHT = 22  # px per row of a horizontal bar chart
CHART_MIN = 260
FONT = "Noto Sans CJK SC, Noto Sans SC, Microsoft YaHei, sans-serif"


def say_for(lang: str) -> Callable[[str], str]:
    """``key`` → the reports domain's ``reports.<key>`` in ``lang``: what :mod:`evaluation.export` asks for."""
    return lambda key: text(f"reports.{key}", lang)


def graph_config(lang: str) -> Any:
    """Plotly's config in the page's language (:func:`pages.strings.graph_config`), resizing with the page (a
    plain dict: Dash types it as its own TypedDict)."""
    return {**strings.graph_config(lang), "responsive": True}


# -- the query -------------------------------------------------------------------------------------------------
def today_of(now: datetime) -> date:
    """The Beijing day of ``now``."""
    return now.astimezone(BEIJING).date()


def preset_days(preset: str, now: datetime) -> tuple[date, date]:
    """The range of a preset (``today``, ``7``, ``30``): that many Beijing days, today included."""
    today = today_of(now)
    return today - timedelta(days=PRESETS[preset] - 1), today


def default_days(now: datetime) -> tuple[date, date]:
    """The default range: the last :data:`DEFAULT_DAYS` Beijing days, today included."""
    return preset_days(str(DEFAULT_DAYS), now)


def parse_query(args: Any, now: datetime) -> tuple[str, str | None, date, date]:
    """``level``, ``area``, ``from`` and ``to`` of a page or export query, checked; defaults where absent."""
    level = args.get("level") or DEFAULT_LEVEL
    if level not in LEVELS:
        raise InvalidRequest(f"level 须为 {'、'.join(LEVELS)} 之一 / level must be one of {', '.join(LEVELS)}",
                             "level")
    first, last = default_days(now)
    days = []
    for name, default in (("from", first), ("to", last)):
        raw = args.get(name)
        try:
            days.append(date.fromisoformat(raw[:10]) if raw else default)
        except ValueError:
            raise InvalidRequest(f"{name} 须为日期 YYYY-MM-DD / {name} must be a date YYYY-MM-DD", name) from None
    return level, args.get("area") or None, days[0], days[1]


def query_string(level: str, area: str | None, first: date, last: date) -> str:
    """The query of a page state, as the download links carry it and the files are stamped with."""
    return urlencode({"level": level, "area": area or "", "from": first.isoformat(), "to": last.isoformat()})


def file_language() -> str:
    """The language of a download: its ``lang`` parameter (the page's, carried by the links), else the cookie."""
    asked = request.args.get("lang")
    return asked if asked in strings.LANGUAGES else page_language()


# -- the download routes ---------------------------------------------------------------------------------------
def _download(engine: Engine, clock: Callable[[], datetime], kind: str) -> BaseResponse:
    now = clock()
    lang = file_language()
    actor = page_actor(engine, now)
    if actor is None:
        return redirect(f"/login?next={REPORTS.path}")
    if actor.role not in ROLES:
        return Response(text("page.not_for_role", lang), status=403, mimetype="text/plain")
    say = say_for(lang)
    try:
        args = dict(request.args)
        if kind.startswith("daily") and not args.get("from"):  # a 日报 is of one day: ``to``, today by default
            args["from"] = args.get("to") or today_of(now).isoformat()
        level, area, first, last = parse_query(args, now)
        period = Period.of_days(first, last)
        query = f"{REPORTS.path}?{query_string(level, area, first, last)}"
        stamp = Stamp(min(period.until, now), query, now)
        with reading(engine) as conn:
            if kind in ("csv", "xlsx"):
                rows = named(report_rows(conn, actor, level, period, now, area), lang)
                scope = scope_unit(conn, actor, area)["name"]
            else:
                report = daily(conn, actor, last, now)
    except GridError as exc:
        return Response(str(exc), status=status_of(exc), mimetype="text/plain")
    if kind == "csv":
        body: str | bytes = sheet_csv(report_sheet(rows, REPORT_COLUMNS, stamp, scope, say))
        media, name = CSV_MEDIA, f"stats-{level}-{first.isoformat()}-{last.isoformat()}.csv"
    elif kind == "xlsx":
        body = sheet_xlsx(report_sheet(rows, REPORT_COLUMNS, stamp, scope, say), say("sheet"))
        media, name = XLSX_MEDIA, f"stats-{level}-{first.isoformat()}-{last.isoformat()}.xlsx"
    elif kind == "daily.xlsx":
        body, media, name = daily_xlsx(report, stamp, say), XLSX_MEDIA, f"daily-{last.isoformat()}.xlsx"
    else:
        body, media, name = daily_pdf(report, stamp, say), PDF_MEDIA, f"daily-{last.isoformat()}.pdf"
    with changing(engine) as conn:  # who took which figures out, as for every other export
        record_read(conn, actor, "reports.export", query, kind, client_tag())
    response = Response(body, mimetype=media)
    response.headers["Content-Disposition"] = f"attachment; filename={name}"
    response.headers["Cache-Control"] = "no-store"
    return response


def named(rows: list[dict], lang: str) -> list[dict]:
    """The rows with the unplaced row named in ``lang`` (its name is no place's)."""
    return [{**r, "name": text("reports.unplaced", lang)} if r["level"] == UNPLACED else r for r in rows]


# -- the page --------------------------------------------------------------------------------------------------
def _area_options(choices: list[dict], lang: str) -> list[dict]:
    indent = {"town": "", "community": "　"}
    return [{"label": text("reports.area_all", lang), "value": ""}] + [
        {"label": html.Span(f"{indent[a['level']]}{a['name']} ({a['code']})", className="nh-name"),
         "value": a["code"], "search": f"{a['name']} {a['code']}"} for a in choices]


def _dates(lang: str, first: date, last: date) -> dmc.MantineProvider:
    return date_picker("reports-dates", lang, span=True, value=[first.isoformat(), last.isoformat()],
                       maxDate=last.isoformat(), w=250)


def _page(engine: Engine, actor: Actor, lang: str, now: datetime) -> html.Div:
    with reading(engine) as conn:
        choices = areas(conn, actor)
        scope = scope_unit(conn, actor)
    first, last = default_days(now)
    levels = list(LEVELS)[list(LEVELS).index(scope["level"]):]  # none above his own unit
    return html.Div(className="nh-page nh-reports", lang=lang, children=[
        nav_bar(actor, lang, REPORTS),
        dcc.Store(id="reports-lang", data=lang),
        html.Main(className="nh-reports-main", children=[
            html.H1(children=[text("reports.title", lang), html.Span(" · ", className="nh-reports-dot"),
                              html.Span(scope["name"], id="reports-scope", className="nh-name nh-reports-scope")]),
            html.Div(className="nh-reports-controls", children=[
                html.Div(className="nh-reports-field", children=[
                    html.Span(text("reports.level", lang), className="nh-reports-label"),
                    dcc.RadioItems(id="reports-level", inline=True, value=levels[0], className="nh-reports-levels",
                                   options=[{"label": text(f"reports.level.{k}", lang), "value": k} for k in levels])]),
                html.Div(className="nh-reports-field nh-reports-area", children=[
                    html.Span(text("reports.area", lang), className="nh-reports-label"),
                    dcc.Dropdown(id="reports-area", options=_area_options(choices, lang), value="", clearable=False,
                                 placeholder=text("reports.area_all", lang),
                                 searchable=True)]),
                html.Div(className="nh-reports-field", children=[
                    html.Span(text("reports.dates", lang), className="nh-reports-label"),
                    html.Div(className="nh-reports-dates-row", children=[
                        _dates(lang, first, last),
                        *[html.Button(text(f"reports.preset.{p}", lang), id=f"reports-preset-{p}", n_clicks=0,
                                      className="nh-reports-preset", type="button") for p in PRESETS]])]),
            ]),
            html.Div(className="nh-reports-bar", children=[
                html.Span(id="reports-stamp", className="nh-reports-stamp"),
                html.A(text("reports.export_csv", lang), id="reports-csv", className="nh-reports-export",
                       href=EXPORT_CSV),
                html.A(text("reports.export_xlsx", lang), id="reports-xlsx", className="nh-reports-export",
                       href=EXPORT_XLSX),
                html.A(text("reports.daily_xlsx", lang), id="reports-daily-xlsx",
                       className="nh-reports-export nh-reports-daily", href=DAILY_XLSX),
                html.A(text("reports.daily_pdf", lang), id="reports-daily-pdf",
                       className="nh-reports-export nh-reports-daily", href=DAILY_PDF),
                html.Button(text("reports.print", lang), id="reports-print", className="nh-reports-print",
                            type="button", n_clicks=0),
            ]),
            html.P(id="reports-error", className="nh-reports-error"),
            *[_section(key, lang) for key in ("trend", "persons", "statuses", "indicators")],
            html.Section(className="nh-reports-section", id="reports-follow_ups", children=[
                html.H2(text("reports.follow_ups", lang)),
                html.Div(id="reports-follow_ups-table", className="nh-reports-table-wrap")]),
            html.P(text("reports.notes", lang), className="nh-reports-notes"),
            html.P(text("reports.notes_follow_ups", lang), className="nh-reports-notes"),
        ]),
    ])


def _section(key: str, lang: str) -> html.Section:
    return html.Section(className="nh-reports-section", id=f"reports-{key}", children=[
        html.H2(text(f"reports.{key}", lang)),
        dcc.Graph(id=f"reports-{key}-chart", config=graph_config(lang),
                  className="nh-reports-chart" + ("" if key == "trend" else " nh-reports-names")),
        html.Div(id=f"reports-{key}-table", className="nh-reports-table-wrap"),
    ])


# -- what the callback shows -----------------------------------------------------------------------------------
def cell(column: str, value: Any) -> str:
    """One figure as the page's tables show it: as the files do (:func:`evaluation.export.shown`), thousands
    separated; an absent rate "–"."""
    figure = shown(column, value, lambda key: key)
    if figure is None:
        return "–"
    if isinstance(figure, float):
        return f"{figure:,.2f}"
    if isinstance(figure, int):
        return f"{figure:,}"
    return str(figure)


def data(**values: str) -> dict[str, Any]:
    """``data-*`` attributes of an html element (what assets/reports.js reads)."""
    return {f"data-{key}": value for key, value in values.items()}


def _sort_key(value: Any) -> str:
    """What assets/reports.js sorts a cell by: the number, or -1 for a suppressed or absent one."""
    if isinstance(value, int | float):
        return repr(value)
    return "-1"


def table(rows: list[dict], columns: tuple[str, ...], lang: str, key: str, total: bool = False,
          first: str = "name") -> html.Table:
    """One table of the page: a row per unit (name and code first, numbers right-aligned), headers that sort it
    (assets/reports.js), and a total row for a reader whose figures are not suppressed."""
    if first == "day":
        head = [html.Th(text("reports.col.day", lang), **data(sort="text"))]
    else:
        head = [html.Th(text("reports.col.name", lang), **data(sort="text")),
                html.Th(text("reports.col.code", lang), **data(sort="text"))]
    names = {"on_time_rate": "day_on_time_rate"} if first == "day" else {}
    head += [html.Th(text(f"reports.col.{names.get(c, c)}", lang)
                     + (text("reports.col.percent", lang) if c in PERCENTS else ""),
                     className="nh-reports-number", **data(sort="number")) for c in columns]

    def lead(r: dict) -> list[html.Td]:
        if first == "day":
            return [html.Td(r["day"], className="nh-reports-code")]
        name = text("reports.unplaced", lang) if r.get("level") == UNPLACED else r["name"]
        return [html.Td(html.Span(name, className="" if r.get("level") == UNPLACED else "nh-name")),
                html.Td(r["code"], className="nh-reports-code")]

    body = [html.Tr([*lead(r), *[html.Td(cell(c, r[c]), className="nh-reports-number",
                                         **data(value=_sort_key(shown(c, r[c], lambda k: k))))
                                 for c in columns]]) for r in rows]
    parts: list[Any] = [html.Thead(html.Tr(head)), html.Tbody(body)]
    if total and len(rows) > 1:
        sums = {c: sum(r[c] or 0 for r in rows) for c in columns if c not in PERCENTS and "hours" not in c}
        parts.append(html.Tfoot(html.Tr([html.Td(text("reports.total", lang), colSpan=1 if first == "day" else 2),
                                         *[html.Td(f"{sums[c]:,}" if c in sums else "", className="nh-reports-number")
                                           for c in columns]])))
    return html.Table(className="nh-reports-table", id=f"reports-{key}-rows", children=parts,
                      **data(sortable="1"))


def _layout(figure: go.Figure, height: int, lang: str) -> go.Figure:
    figure.update_layout(height=height, margin={"l": 10, "r": 20, "t": 80, "b": 40},
                         font={"family": FONT, "size": 12}, plot_bgcolor="#ffffff", paper_bgcolor="#ffffff",
                         legend={"orientation": "h", "y": 0.995, "yanchor": "top", "x": 0, "yref": "container",
                                 "traceorder": "normal"})
    figure.update_yaxes(automargin=True)
    return figure


def _label(r: dict, lang: str) -> str:
    return text("reports.unplaced", lang) if r.get("level") == UNPLACED else f"{r['name']}"


def _height(rows: list) -> int:
    return max(CHART_MIN, BAR_HEIGHT * len(rows) + 110)


def persons_chart(rows: list[dict], lang: str) -> go.Figure:
    """Persons by colour as small multiples, one horizontal bar chart per colour side by side, each on its own
    scale (so red and yellow stay readable beside a green count a hundred times larger); units sorted by red,
    then yellow, the largest on top. A reporter's suppressed counts are left out (their bar is absent)."""
    order = sorted(rows, key=lambda r: (r["persons_red"] or 0, r["persons_yellow"] or 0))
    names = [_label(r, lang) for r in order]
    figure = make_subplots(rows=1, cols=len(COLOURS), shared_yaxes=True, horizontal_spacing=0.03,
                           subplot_titles=[text(f"reports.col.persons_{c}", lang) for c in COLOURS])
    for index, colour in enumerate(COLOURS, start=1):
        values = [r[f"persons_{colour}"] for r in order]
        figure.add_trace(go.Bar(name=text(f"reports.col.persons_{colour}", lang), y=names, x=values,
                                orientation="h", marker_color=COLOUR_HEX[colour], showlegend=False,
                                text=[SUPPRESSED_TEXT if v is None else f"{v:,}" for v in values],
                                textposition="auto", cliponaxis=False), row=1, col=index)
    figure.update_xaxes(title_text=text("reports.axis.persons", lang), rangemode="tozero")
    return _layout(figure, _height(rows), lang)


def statuses_chart(rows: list[dict], lang: str) -> go.Figure:
    """Tasks by status, stacked horizontal bars sorted by their total, the largest on top."""
    order = sorted(rows, key=lambda r: sum(r[c] for c in STATUS_COLUMNS))
    names = [_label(r, lang) for r in order]
    figure = go.Figure([go.Bar(name=text(f"reports.col.status_{s}", lang), y=names,
                               x=[r[f"status_{s}"] for r in order], orientation="h", marker_color=STATUS_HEX[s])
                        for s in STATUSES])
    figure.update_layout(barmode="stack")
    figure.update_xaxes(title_text=text("reports.axis.tasks", lang))
    return _layout(figure, _height(rows) + 30, lang)


def rates_chart(rows: list[dict], lang: str) -> go.Figure:
    """The four rates as small multiples of horizontal bars (percent), units sorted by the on-time rate."""
    order = sorted(rows, key=lambda r: (r["on_time_rate"] is not None, r["on_time_rate"] or 0))
    names = [_label(r, lang) for r in order]
    figure = make_subplots(rows=1, cols=len(RATES), shared_yaxes=True, horizontal_spacing=0.03,
                           subplot_titles=[text(f"reports.col.{r}", lang) + text("reports.col.percent", lang)
                                           for r in RATES])
    for index, rate in enumerate(RATES, start=1):
        figure.add_trace(go.Bar(name=text(f"reports.col.{rate}", lang), y=names,
                                x=[percent(r[rate]) for r in order], orientation="h", marker_color=RATE_HEX[rate],
                                showlegend=False), row=1, col=index)
    figure.update_xaxes(range=[0, 105], ticksuffix="%")
    return _layout(figure, _height(rows), lang)


def trend_chart(days: list[dict], lang: str) -> go.Figure:
    """Per day: persons turned red and yellow (top), tasks opened and closed with the on-time share of the
    day's closures on a percent axis of its own (bottom)."""
    x = [d["day"] for d in days]
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12,
                           subplot_titles=[text("reports.trend.persons", lang), text("reports.trend.tasks", lang)],
                           specs=[[{}], [{"secondary_y": True}]])
    for colour in ("red", "yellow"):
        figure.add_trace(go.Bar(name=text(f"reports.col.new_{colour}", lang), x=x,
                                y=[d[f"new_{colour}"] for d in days], marker_color=COLOUR_HEX[colour]), row=1, col=1)
    figure.add_trace(go.Bar(name=text("reports.col.opened", lang), x=x, y=[d["opened"] for d in days],
                            marker_color="#74c0fc"), row=2, col=1)
    figure.add_trace(go.Bar(name=text("reports.col.closed", lang), x=x, y=[d["closed"] for d in days],
                            marker_color="#2f9e44"), row=2, col=1)
    figure.add_trace(go.Scatter(name=text("reports.col.day_on_time_rate", lang), x=x,
                                y=[percent(d["on_time_rate"]) for d in days], mode="lines+markers",
                                line={"color": "#f76707"}, connectgaps=False), row=2, col=1, secondary_y=True)
    figure.update_layout(barmode="group")
    figure.update_xaxes(type="category")
    figure.update_yaxes(title_text=text("reports.axis.persons", lang), row=1, col=1, rangemode="tozero")
    figure.update_yaxes(title_text=text("reports.axis.tasks", lang), row=2, col=1, rangemode="tozero")
    figure.update_yaxes(title_text="%", row=2, col=1, secondary_y=True, range=[0, 105], showgrid=False)
    return _layout(figure, 460, lang)


def create_reports(server: Flask, engine: Engine, clock: Callable[[], datetime]) -> dash.Dash:
    """Mount the page on ``server`` at /reports/, with its download routes."""
    app = mount(server, REPORTS, "nav.reports")
    use_mantine(app)
    app.layout = lambda: guarded(engine, clock, REPORTS, lambda actor, lang: _page(engine, actor, lang, clock()))
    for path, kind in ((EXPORT_CSV, "csv"), (EXPORT_XLSX, "xlsx"), (DAILY_XLSX, "daily.xlsx"),
                       (DAILY_PDF, "daily.pdf")):
        server.add_url_rule(path, f"reports_{kind.replace('.', '_')}",
                            lambda kind=kind: _download(engine, clock, kind))
    empty = go.Figure()
    links = (EXPORT_CSV, EXPORT_XLSX, DAILY_XLSX, DAILY_PDF)
    nothing = (empty, empty, empty, empty, None, None, None, None, None, "", "", *links)

    @app.callback(Output("reports-dates", "value"), Output("reports-dates", "maxDate"),
                  *[Input(f"reports-preset-{p}", "n_clicks") for p in PRESETS], prevent_initial_call=True)
    def preset(*_: int) -> tuple[list[str], str]:
        chosen = dash.ctx.triggered_id
        if not isinstance(chosen, str) or not chosen.startswith("reports-preset-"):
            raise PreventUpdate
        first, last = preset_days(chosen.removeprefix("reports-preset-"), clock())
        return [first.isoformat(), last.isoformat()], last.isoformat()

    @app.callback(
        Output("reports-trend-chart", "figure"), Output("reports-persons-chart", "figure"),
        Output("reports-statuses-chart", "figure"), Output("reports-indicators-chart", "figure"),
        Output("reports-trend-table", "children"), Output("reports-persons-table", "children"),
        Output("reports-statuses-table", "children"), Output("reports-indicators-table", "children"),
        Output("reports-follow_ups-table", "children"), Output("reports-stamp", "children"),
        Output("reports-scope", "children"),
        Output("reports-csv", "href"), Output("reports-xlsx", "href"), Output("reports-daily-xlsx", "href"),
        Output("reports-daily-pdf", "href"), Output("reports-error", "children"),
        Input("reports-level", "value"), Input("reports-area", "value"), Input("reports-dates", "value"),
        State("reports-lang", "data"))
    @refusals_shown(lambda exc: (*nothing, str(exc)))
    def show(level: str | None, area: str | None, dates: list[str | None] | None, lang: str) -> tuple:
        if dates and (len(dates) != 2 or not dates[0] or not dates[1]):
            raise PreventUpdate  # the second day of a range is still to be picked
        start, end = (dates or [None, None])[:2]
        now = clock()
        actor = page_actor(engine, now, ROLES)
        if actor is None:
            return (*nothing, text("reports.login_again", lang))
        level, area, first, last = parse_query({"level": level, "area": area, "from": start, "to": end}, now)
        period = Period.of_days(first, last)
        with reading(engine) as conn:
            rows = report_rows(conn, actor, level, period, now, area)
            days = trend(conn, actor, period, area)
            scope = scope_unit(conn, actor, area)
        query = query_string(level, area, first, last)
        as_of = min(period.until, now).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
        stamp = f"{text('reports.as_of', lang)} {as_of} · {text('reports.query', lang)} {REPORTS.path}?{query}"
        total = actor.role != REPORTER
        tables = (table(days, TREND_SHOWN, lang, "trend", total, first="day"),
                  table(rows, PERSON_COLUMNS, lang, "persons", total),
                  table(rows, (*STATUS_COLUMNS, "tasks"), lang, "statuses", total),
                  table(rows, INDICATOR_COLUMNS, lang, "indicators", total),
                  table(rows, FOLLOW_UP_COLUMNS, lang, "follow_ups", total))
        files = f"{query}&lang={lang}"
        return (trend_chart(days, lang), persons_chart(rows, lang), statuses_chart(rows, lang),
                rates_chart(rows, lang), *tables, stamp, scope["name"],
                f"{EXPORT_CSV}?{files}", f"{EXPORT_XLSX}?{files}", f"{DAILY_XLSX}?{files}",
                f"{DAILY_PDF}?{files}", "")
    return app
