"""The statistics page (/reports/): persons by colour, tasks by status and the evaluation indicators.

A reporter, supervisor, commander or administrator picks a level (district, town, community, grid), an area
in his scope (a town or community code: every grid under it) and a range of Beijing days (the last 7 by
default); the page shows three charts (plotly, served by Dash from this server) and three tables, the data
time and the query, and links to the same figures as CSV and Excel (``/reports/export.csv`` and
``/reports/export.xlsx`` with the page's query: ``level``, ``area``, ``from``, ``to``).

The figures come from :func:`evaluation.indicators.report`, which applies the actor's scope and, for a reporter,
suppresses persons 1–4; the files from :mod:`evaluation.export`, so page, API and files agree to the last
digit. The callback and the export routes check the session themselves (:func:`web.session.page_actor`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from urllib.parse import urlencode

import dash
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html
from flask import Flask, Response, redirect, request
from sqlalchemy import Engine
from werkzeug.wrappers import Response as BaseResponse

from accounts.actor import Actor
from evaluation.export import CSV_MEDIA, SUPPRESSED_TEXT, XLSX_MEDIA, Stamp, stats_csv, stats_xlsx
from evaluation.indicators import BEIJING, COLOURS, LEVELS, REPORT_COLUMNS, STATUS_COLUMNS, Period, areas, report
from gis.db import reading
from gis.errors import GridError, InvalidRequest
from pages.shell import REPORTS, guarded, mount, nav_bar, page_language
from pages.strings import text
from tasks.lifecycle import STATUSES
from web.errors import refusals_shown, status_of
from web.session import page_actor

ROLES = REPORTS.roles
DEFAULT_LEVEL = "district"
DEFAULT_DAYS = 7
EXPORT_CSV = f"{REPORTS.path}export.csv"
EXPORT_XLSX = f"{REPORTS.path}export.xlsx"
COLOUR_HEX = {"red": "#e03131", "yellow": "#f0b429", "blue": "#1c7ed6", "green": "#2f9e44"}
STATUS_HEX = {"created": "#adb5bd", "dispatched": "#74c0fc", "accepted": "#4dabf7", "declined": "#ffa94d",
              "in_progress": "#1c7ed6", "handled": "#9775fa", "closed": "#2f9e44", "cancelled": "#868e96"}
RATES = ("closure_rate", "on_time_rate", "rework_rate", "extension_rate")
INDICATOR_COLUMNS = ("tasks", "closed", "closure_rate", "closed_on_time", "open_overdue", "on_time_rate",
                     "reworked", "rework_rate", "extended", "extension_rate", "median_handling_hours",
                     "p90_handling_hours")
PERSON_COLUMNS = tuple(f"persons_{c}" for c in COLOURS)
CHART_HEIGHT = 340
FONT = "Noto Sans CJK SC, Noto Sans SC, Microsoft YaHei, sans-serif"


# -- the query -------------------------------------------------------------------------------------------------
def default_days(now: datetime) -> tuple[date, date]:
    """The default range: the last :data:`DEFAULT_DAYS` Beijing days, today included."""
    today = now.astimezone(BEIJING).date()
    return today - timedelta(days=DEFAULT_DAYS - 1), today


def parse_query(args: dict, now: datetime) -> tuple[str, str | None, date, date]:
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
    """The query of a page state, as the export links carry it."""
    return urlencode({"level": level, "area": area or "", "from": first.isoformat(), "to": last.isoformat()})


# -- the export routes -----------------------------------------------------------------------------------------
def _export(engine: Engine, clock: Callable[[], datetime], kind: str) -> BaseResponse:
    now = clock()
    actor = page_actor(engine, now)
    if actor is None:
        return redirect(f"/login?next={REPORTS.path}")
    if actor.role not in ROLES:
        return Response(text("page.not_for_role", page_language()), status=403, mimetype="text/plain")
    try:
        level, area, first, last = parse_query(request.args, now)
        period = Period.of_days(first, last)
        with reading(engine) as conn:
            rows = report(conn, actor, level, period, now, area)
    except GridError as exc:
        return Response(str(exc), status=status_of(exc), mimetype="text/plain")
    stamp = Stamp(min(period.until, now), request.full_path, now)
    name = f"stats-{level}-{first.isoformat()}-{last.isoformat()}"
    if kind == "csv":
        response = Response(stats_csv(rows, stamp, REPORT_COLUMNS), mimetype=CSV_MEDIA)
    else:
        response = Response(stats_xlsx(rows, stamp, REPORT_COLUMNS), mimetype=XLSX_MEDIA)
    response.headers["Content-Disposition"] = f"attachment; filename={name}.{kind}"
    response.headers["Cache-Control"] = "no-store"
    return response


# -- the page --------------------------------------------------------------------------------------------------
def _area_options(choices: list[dict], lang: str) -> list[dict]:
    indent = {"town": "", "community": "　"}
    return [{"label": text("reports.area_all", lang), "value": ""}] + [
        {"label": f"{indent[a['level']]}{a['name']} ({a['code']})", "value": a["code"]} for a in choices]


def _page(engine: Engine, actor: Actor, lang: str, now: datetime) -> html.Div:
    with reading(engine) as conn:
        choices = areas(conn, actor)
    first, last = default_days(now)
    return html.Div(className="nh-page nh-reports", lang=lang, children=[
        nav_bar(actor, lang, REPORTS),
        dcc.Store(id="reports-lang", data=lang),
        html.Main(className="nh-reports-main", children=[
            html.H1(text("reports.title", lang)),
            html.Div(className="nh-reports-controls", children=[
                html.Div(className="nh-reports-field", children=[
                    html.Span(text("reports.level", lang), className="nh-reports-label"),
                    dcc.RadioItems(id="reports-level", inline=True, value=DEFAULT_LEVEL, className="nh-reports-levels",
                                   options=[{"label": text(f"reports.level.{k}", lang), "value": k} for k in LEVELS])]),
                html.Div(className="nh-reports-field nh-reports-area", children=[
                    html.Span(text("reports.area", lang), className="nh-reports-label"),
                    dcc.Dropdown(id="reports-area", options=_area_options(choices, lang), value="", clearable=False)]),
                html.Div(className="nh-reports-field", children=[
                    html.Span(text("reports.dates", lang), className="nh-reports-label"),
                    dcc.DatePickerRange(id="reports-dates", start_date=first.isoformat(), end_date=last.isoformat(),
                                        max_date_allowed=last.isoformat(), display_format="YYYY-MM-DD",
                                        first_day_of_week=1)]),
            ]),
            html.Div(className="nh-reports-bar", children=[
                html.Span(id="reports-stamp", className="nh-reports-stamp"),
                html.A(text("reports.export_csv", lang), id="reports-csv", className="nh-reports-export",
                       href=EXPORT_CSV),
                html.A(text("reports.export_xlsx", lang), id="reports-xlsx", className="nh-reports-export",
                       href=EXPORT_XLSX),
            ]),
            html.P(id="reports-error", className="nh-reports-error"),
            *[_section(key, lang) for key in ("persons", "statuses", "indicators")],
            html.P(text("reports.notes", lang), className="nh-reports-notes"),
        ]),
    ])


def _section(key: str, lang: str) -> html.Section:
    return html.Section(className="nh-reports-section", children=[
        html.H2(text(f"reports.{key}", lang)),
        dcc.Graph(id=f"reports-{key}-chart", className="nh-reports-chart", style={"height": f"{CHART_HEIGHT}px"},
                  config={"displaylogo": False}),
        html.Div(id=f"reports-{key}-table", className="nh-reports-table-wrap"),
    ])


# -- what the callback shows -----------------------------------------------------------------------------------
def _cell(row: dict, column: str) -> str:
    value = row[column]
    if value is None:
        return SUPPRESSED_TEXT if column in PERSON_COLUMNS else "–"
    if column in RATES:
        return f"{value * 100:.2f}%"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(rows: list[dict], columns: tuple[str, ...], lang: str, key: str) -> html.Table:
    """One table of the page: a row per unit, its name and code first; numbers right-aligned."""
    head = [html.Th(text("reports.col.name", lang)), html.Th(text("reports.col.code", lang)),
            *[html.Th(text(f"reports.col.{c}", lang), className="nh-reports-number") for c in columns]]
    return html.Table(className="nh-reports-table", id=f"reports-{key}-rows", children=[
        html.Thead(html.Tr(head)),
        html.Tbody([html.Tr([html.Td(r["name"]), html.Td(r["code"], className="nh-reports-code"),
                             *[html.Td(_cell(r, c), className="nh-reports-number") for c in columns]])
                    for r in rows]),
    ])


def _figure(rows: list[dict], traces: list[tuple[str, str, str]], lang: str, barmode: str,
            percent: bool = False) -> go.Figure:
    names = [r["name"] for r in rows]
    figure = go.Figure([go.Bar(name=text(label, lang), x=names, y=[r[column] for r in rows], marker_color=colour)
                        for column, label, colour in traces])
    figure.update_layout(barmode=barmode, height=CHART_HEIGHT, margin={"l": 50, "r": 10, "t": 30, "b": 60},
                         font={"family": FONT, "size": 12}, plot_bgcolor="#ffffff", paper_bgcolor="#ffffff",
                         legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0, "traceorder": "normal"})
    if percent:
        figure.update_yaxes(tickformat=".0%", range=[0, 1.05])
    return figure


def charts(rows: list[dict], lang: str) -> tuple[go.Figure, go.Figure, go.Figure]:
    """Persons by colour (stacked), tasks by status (stacked), the four rates (grouped)."""
    persons = _figure(rows, [(f"persons_{c}", f"reports.col.persons_{c}", COLOUR_HEX[c]) for c in COLOURS],
                      lang, "stack")
    statuses = _figure(rows, [(f"status_{s}", f"reports.col.status_{s}", STATUS_HEX[s]) for s in STATUSES],
                       lang, "stack")
    rates = _figure(rows, [(r, f"reports.col.{r}", colour) for r, colour in
                           zip(RATES, ("#2f9e44", "#1c7ed6", "#f76707", "#9775fa"), strict=True)],
                    lang, "group", percent=True)
    return persons, statuses, rates


def create_reports(server: Flask, engine: Engine, clock: Callable[[], datetime]) -> dash.Dash:
    """Mount the page on ``server`` at /reports/, with its export routes."""
    app = mount(server, REPORTS, text("nav.reports"))
    app.layout = lambda: guarded(engine, clock, REPORTS, lambda actor, lang: _page(engine, actor, lang, clock()))
    server.add_url_rule(EXPORT_CSV, "reports_export_csv", lambda: _export(engine, clock, "csv"))
    server.add_url_rule(EXPORT_XLSX, "reports_export_xlsx", lambda: _export(engine, clock, "xlsx"))
    empty = go.Figure()
    nothing = (empty, empty, empty, None, None, None, "", EXPORT_CSV, EXPORT_XLSX)

    @app.callback(
        Output("reports-persons-chart", "figure"), Output("reports-statuses-chart", "figure"),
        Output("reports-indicators-chart", "figure"), Output("reports-persons-table", "children"),
        Output("reports-statuses-table", "children"), Output("reports-indicators-table", "children"),
        Output("reports-stamp", "children"), Output("reports-csv", "href"), Output("reports-xlsx", "href"),
        Output("reports-error", "children"),
        Input("reports-level", "value"), Input("reports-area", "value"), Input("reports-dates", "start_date"),
        Input("reports-dates", "end_date"), State("reports-lang", "data"))
    @refusals_shown(lambda exc: (*nothing, str(exc)))
    def show(level: str | None, area: str | None, start: str | None, end: str | None,
             lang: str) -> tuple[go.Figure, go.Figure, go.Figure, html.Table | None, html.Table | None,
                                 html.Table | None, str, str, str, str]:
        now = clock()
        actor = page_actor(engine, now, ROLES)
        if actor is None:
            return (*nothing, text("reports.login_again", lang))
        level, area, first, last = parse_query({"level": level, "area": area, "from": start, "to": end}, now)
        period = Period.of_days(first, last)
        with reading(engine) as conn:
            rows = report(conn, actor, level, period, now, area)
        query = query_string(level, area, first, last)
        as_of = min(period.until, now).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
        stamp = f"{text('reports.as_of', lang)} {as_of} · {text('reports.query', lang)} {query}"
        return (*charts(rows, lang), table(rows, PERSON_COLUMNS, lang, "persons"),
                table(rows, (*STATUS_COLUMNS, "tasks"), lang, "statuses"),
                table(rows, INDICATOR_COLUMNS, lang, "indicators"), stamp,
                f"{EXPORT_CSV}?{query}", f"{EXPORT_XLSX}?{query}", "")
    return app
