"""What the administration pages share: the file upload box, a progress bar, a table of rows, Excel answers.

A file never travels through a Dash callback: the upload box's button runs
``nanhai.admin.upload`` (``assets/admin.js``), which streams the file to
``/admin/uploads`` (:mod:`web.uploads`) and puts the answer — the upload's id, name, size and SHA-256,
or the refusal — into the box's store. The page's callbacks take the id from there and call
:func:`web.uploads.uploaded_file`, which checks it again on the server.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import dash
from dash import ClientsideFunction, Input, Output, State, dcc, html
from dash.development.base_component import Component

from gis.spreadsheets import neutralised_row
from pages.shell import data
from pages.strings import text


def upload_box(prefix: str, purpose: str, lang: str, accept: str) -> html.Div:
    """A file input, an upload button, the upload's progress bar and the store its answer lands in
    (ids ``<prefix>-file``, ``-send``, ``-bar``, ``-upload``); bind it with :func:`bind_upload`."""
    return html.Div(className="nh-upload", children=[
        dcc.Store(id=f"{prefix}-upload"),
        dcc.Store(id=f"{prefix}-purpose", data=purpose),
        html.Label(text("admin.choose_file", lang), htmlFor=f"{prefix}-file", className="nh-upload-label"),
        # Dash has no file <input> of its own (dcc.Upload sends base64 through callbacks): admin.js puts a plain
        # one into this holder, and reads the file from it when the button is pressed
        html.Div(id=f"{prefix}-file", className="nh-upload-holder", **data(accept=accept, strings=json.dumps(
            {key: text(f"admin.{key}", lang) for key in ("choose_first", "cut_off")}, ensure_ascii=False))),
        html.Button(text("admin.upload", lang), id=f"{prefix}-send", className="nh-button"),
        progress_bar(f"{prefix}-bar", hidden=True),
    ])


def progress_bar(bar_id: str, fraction: float = 0.0, label: str = "", hidden: bool = False) -> html.Div:
    """A bar of ``fraction`` (0..1) with its label; ``nanhai.admin`` moves the upload's, callbacks the job's."""
    return html.Div(id=bar_id, className="nh-bar", style={"display": "none"} if hidden else None, children=[
        html.Div(className="nh-bar-fill", style={"width": f"{round(max(0.0, min(1.0, fraction)) * 100)}%"}),
        html.Span(label, className="nh-bar-text"),
    ])


def bind_upload(app: dash.Dash, prefix: str) -> None:
    """Bind ``prefix``'s upload button to ``nanhai.admin.upload`` (browser side: no file in callback JSON)."""
    app.clientside_callback(
        ClientsideFunction("nanhai_admin", "upload"),
        Output(f"{prefix}-send", "title"),
        Input(f"{prefix}-send", "n_clicks"),
        State(f"{prefix}-file", "id"), State(f"{prefix}-purpose", "data"), State(f"{prefix}-upload", "id"),
        State(f"{prefix}-bar", "id"),
        prevent_initial_call=True)


def rows_table(columns: Sequence[tuple[str, str]], rows: Sequence[dict[str, Any]], table_id: str | None = None,
               row_class: str | None = None, lang: str = "zh") -> html.Table:
    """A plain table: ``columns`` as (key, heading); a row's ``_class`` (or ``row_class``) styles its line. A value
    may be a component (a name in ``nh-name``), else it is shown as text."""
    head = html.Thead(html.Tr([html.Th(heading) for _key, heading in columns]))
    body = html.Tbody([html.Tr([html.Td(_cell(row.get(key))) for key, _ in columns],
                               className=row.get("_class") or row_class)
                       for row in rows] or [html.Tr(html.Td(text("admin.empty", lang), colSpan=len(columns)))])
    if table_id:
        return html.Table(className="nh-table", id=table_id, children=[head, body])
    return html.Table(className="nh-table", children=[head, body])


def _cell(value: Any) -> Any:
    """A table cell's content: a component (or a list of them) as it is, anything else as text."""
    if value is None:
        return ""
    return value if isinstance(value, Component | list) else str(value)


def pager(prefix: str, lang: str) -> html.Div:
    """Previous / next buttons (ids ``<prefix>-prev``, ``<prefix>-next``), disabled until a list says more."""
    return html.Div(className="nh-buttons", children=[
        html.Button(text(f"admin.{step}", lang), id=f"{prefix}-{step}", className="nh-button nh-secondary",
                    disabled=True) for step in ("prev", "next")])


def excel_bytes(sheet: str, columns: Sequence[tuple[str, str]], rows: Sequence[dict[str, Any]]) -> bytes:
    """An .xlsx of one sheet: the headings, then each row's values in ``columns``' order (text kept as text)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    page = book.create_sheet(sheet[:31])
    page.append([heading for _key, heading in columns])
    for row in rows:
        page.append(neutralised_row([row.get(key) for key, _ in columns]))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
