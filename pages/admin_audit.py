"""The audit page (/admin/audit/): administrators and commanders read the audit log — filtered by user, person,
kind and days, a page at a time — and export it to Excel.

Every callback asks :func:`web.session.page_actor` who is acting (administrators and commanders only) and calls
:mod:`accounts.audit`, which refuses any other role and writes each read (``audit.read``) and export
(``audit.export``) to the log itself. The export comes back through ``dcc.Download`` from a callback, not a
plain GET route: the person filter may be an ID number, and a URL would carry it into access logs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import dash
from dash import Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate
from flask import Flask
from sqlalchemy import Engine

from accounts.actor import Actor
from accounts.audit import (
    EXPORT_COLUMNS,
    KIND_NAMES,
    KINDS,
    PAGE_SIZE,
    AuditFilter,
    Language,
    action_label,
    export_log,
    read_log,
)
from gis.db import changing
from gis.errors import InvalidRequest
from pages.admin_parts import pager, rows_table
from pages.shell import AUDIT, date_picker, guarded, mount, name, nav_bar, refusal, use_mantine
from pages.strings import one_language, text
from tasks.overview import BEIJING
from web.context import client_tag, vault
from web.errors import refusals_shown
from web.session import page_actor

COLUMNS = ("at", "username", "action", "subject", "person", "reason")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _layout(actor: Actor, lang: str) -> html.Div:
    kinds = [{"label": KIND_NAMES[k][1 if lang == "en" else 0], "value": k} for k in KINDS]
    return html.Div(className="nh-page", lang=lang, children=[
        nav_bar(actor, lang, AUDIT),
        dcc.Store(id="audit-lang", data=lang), dcc.Store(id="audit-page", data=1),
        dcc.Download(id="audit-download"),
        html.Main(className="nh-admin nh-audit", children=[
            html.H1(text("audit.title", lang)),
            html.Div(className="nh-form", children=[
                html.Label([text("audit.user", lang), dcc.Input(id="audit-user", type="text", className="nh-input",
                                                                maxLength=64)]),
                html.Label([text("audit.person", lang), dcc.Input(id="audit-person", type="text", autoComplete="off",
                                                                  className="nh-input", maxLength=80)]),
                html.Label([text("audit.kind", lang), dcc.Dropdown(id="audit-kind", options=kinds,
                                                                   placeholder=text("audit.any", lang),
                                                                   className="nh-audit-kind")]),
                html.Label([text("audit.dates", lang), date_picker("audit-dates", lang, span=True, clearable=True)]),
                html.Button(text("audit.search", lang), id="audit-search", className="nh-button"),
                html.Button(text("audit.export", lang), id="audit-export", className="nh-button nh-secondary"),
            ]),
            html.Div(id="audit-message", className="nh-message", role="status"),
            html.P(id="audit-count", className="nh-more"),
            html.Div(id="audit-table"),
            pager("audit", lang),
        ]),
    ])


def _day(value: str | None, field: str) -> date | None:
    try:
        return date.fromisoformat(value[:10]) if value else None
    except ValueError:
        raise InvalidRequest(f"日期无效 / invalid date: {value}", field) from None


def _span(value: list[str | None] | str | None) -> tuple[str | None, str | None]:
    """(first, last) day of the date picker's span (either may be missing while it is being picked)."""
    if not value:
        return None, None
    if isinstance(value, str):
        return value, value
    days = [*value, None, None]
    return days[0], days[1]


def export_language(lang: str) -> Language:
    """The audit export in the page's language: headings from the catalogs, each action named by its kind, the
    stored "中文 / English" reason in one language."""
    return Language(text("audit.xlsx.sheet", lang), tuple(text(f"audit.xlsx.{key}", lang) for key, _ in EXPORT_COLUMNS),
                    lambda entry: {**entry, "action": action_label(entry["action"], lang),
                                   "reason": one_language(entry["reason"], lang)})


def shown_row(row: dict[str, Any], lang: str) -> dict[str, Any]:
    """A log line as the page shows it: the action's kind in ``lang`` with its code, names and codes as data
    (``nh-name``), the stored "中文 / English" reason in ``lang``."""
    label = action_label(row["action"], lang)
    kind, _, code = label.rpartition(" · ")
    return {**row, "action": [kind, " · ", name(code)] if kind else name(code),
            **{key: name(None if row.get(key) is None else str(row[key])) for key in ("username", "subject", "person")},
            "reason": name(one_language(row.get("reason"), lang))}


def audit_filter(user: str | None, person: str | None, kind: str | None, start: str | None, end: str | None,
                 page: int = 1) -> AuditFilter:
    """The filter of the page's fields (empty ones left out)."""
    return AuditFilter(username=(user or "").strip() or None, person=(person or "").strip() or None,
                       kind=kind or None, since=_day(start, "since"), until=_day(end, "until"), page=page)


def _acting(engine: Engine, clock: Callable[[], datetime]) -> Actor:
    actor = page_actor(engine, clock(), AUDIT.roles)
    if actor is None:
        raise PreventUpdate  # logged out, expired, or a role that may not read the log: nothing is read
    return actor


def create_audit(server: Flask, engine: Engine, clock: Callable[[], datetime]) -> dash.Dash:
    """Mount the audit page on ``server`` at /admin/audit/."""
    app = mount(server, AUDIT, "nav.audit")
    use_mantine(app)  # its date picker
    app.layout = lambda: guarded(engine, clock, AUDIT, _layout)

    @app.callback(Output("audit-table", "children"), Output("audit-count", "children"),
                  Output("audit-page", "data"), Output("audit-prev", "disabled"), Output("audit-next", "disabled"),
                  Input("audit-search", "n_clicks"), Input("audit-prev", "n_clicks"), Input("audit-next", "n_clicks"),
                  State("audit-user", "value"), State("audit-person", "value"), State("audit-kind", "value"),
                  State("audit-dates", "value"), State("audit-page", "data"), State("audit-lang", "data"))
    @refusals_shown(lambda exc: (refusal(exc), "", dash.no_update, True, True))
    def show(_search: int | None, _prev: int | None, _next: int | None, user: str | None, person: str | None,
             kind: str | None, dates: list[str | None] | None, page: int | None,
             lang: str) -> tuple[html.Table, str, int, bool, bool]:
        actor = _acting(engine, clock)
        start, end = _span(dates)
        step = {"audit-prev": -1, "audit-next": 1}.get(str(ctx.triggered_id), 0)
        page = max(1, (page or 1) + step) if step else 1
        with changing(engine) as conn:  # a read of the log is written to it
            rows, total = read_log(conn, actor, audit_filter(user, person, kind, start, end, page), vault(),
                                   client_tag())
        pages = max(1, -(-total // PAGE_SIZE))
        columns = [(c, text(f"audit.col.{c}", lang)) for c in COLUMNS]
        rows = [shown_row(row, lang) for row in rows]
        return (rows_table(columns, rows, "audit-rows", row_class="nh-audit-row", lang=lang),
                text("audit.count", lang).format(total=total, page=page, pages=pages), page, page <= 1,
                page >= pages)

    @app.callback(Output("audit-download", "data"), Output("audit-message", "children"),
                  Input("audit-export", "n_clicks"),
                  State("audit-user", "value"), State("audit-person", "value"), State("audit-kind", "value"),
                  State("audit-dates", "value"), State("audit-lang", "data"), prevent_initial_call=True)
    @refusals_shown(lambda exc: (dash.no_update, refusal(exc)))
    def export(_clicks: int | None, user: str | None, person: str | None, kind: str | None,
               dates: list[str | None] | None, lang: str) -> tuple[dict[str, Any], html.P]:
        actor = _acting(engine, clock)
        start, end = _span(dates)
        with changing(engine) as conn:
            body = export_log(conn, actor, audit_filter(user, person, kind, start, end), vault(), client_tag(),
                              export_language(lang))
        stamp = clock().astimezone(BEIJING).strftime("%Y%m%d-%H%M")
        return (dcc.send_bytes(body, f"audit-{stamp}.xlsx", type=XLSX),
                html.P(text("audit.exported", lang), className="nh-ok"))

    return app
