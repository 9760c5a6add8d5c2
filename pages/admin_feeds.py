"""The administrator's data imports page (/admin/feeds/): upload a department's feed, watch its import and match
run in the background, download its rejection report, read the import history, withdraw an import.

The file travels as every administration file does (:func:`pages.admin_parts.upload_box`): the browser streams it
to ``/admin/uploads`` and the page names it by its upload id. The page never imports anything itself: it queues
a background job (:func:`jobs.queue.enqueue_feed_import`, :func:`jobs.queue.enqueue_feed_withdrawal`), which the
job worker beside ``gridctl serve`` runs at a lower CPU priority, and polls the job's progress once a second
(:func:`jobs.progress.read_progress`) while one is under way. The rejection report (row number, field, reason, and
its kind: one line per problem of a rejected row, and one per field warning — a stored row's phone, point or time that
was ignored) is an Excel file at ``/admin/feeds/<import id>/rejections.xlsx``, for administrators only.

Every callback asks :func:`web.session.page_actor` first: for anyone but an administrator it reads and changes
nothing (Dash answers 204).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import dash
from dash import ALL, Input, Output, State, ctx, dcc, html
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate
from flask import Flask, Response
from sqlalchemy import Engine

from accounts.actor import Actor
from gis.db import reading
from gis.errors import GridError, InvalidRequest
from jobs.progress import JobView, list_progress, read_progress
from jobs.queue import CRS_CHOICES, enqueue_feed_import, enqueue_feed_withdrawal
from matching import repository
from matching.withdrawal import FIELD_NAMES, REASON_LIMIT, rejection_lines, rejection_report
from pages.admin_parts import bind_upload, excel_bytes, progress_bar, upload_box
from pages.shell import FEEDS, data, guarded, label, marked, mount, name, nav_bar, page_language, refusal
from pages.strings import one_language, text
from web.context import client_tag
from web.errors import refusals_shown
from web.session import page_actor
from web.uploads import uploaded_file

BEIJING = ZoneInfo("Asia/Shanghai")
POLL_MS = 1000
HISTORY_LIMIT = 100
PREVIEW_REJECTIONS = 10
PREVIEW_FIELD_WARNINGS = 10
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
REJECTIONS_URL = "/admin/feeds/{feed_id}/rejections.xlsx"
FINAL = ("succeeded", "failed")
# The stages the page lists for each kind of job: (job_progress stage, string key). The import checks, seals and
# stores each chunk of rows in one pass (matching.pipeline), which the job records as one stage, "storing": the
# three steps move together.
IMPORT_STAGES = (("reading", "feeds.stage.reading"), ("storing", "feeds.stage.checking"),
                 ("storing", "feeds.stage.sealing"), ("storing", "feeds.stage.storing"),
                 ("matching", "feeds.stage.matching"), ("sweeping", "feeds.stage.sweeping"))
WITHDRAW_STAGES = (("reading", "feeds.stage.withdrawing"), ("matching", "feeds.stage.rematching"),
                   ("storing", "feeds.stage.cancelling"), ("sweeping", "feeds.stage.sweeping"))
# where each stage lies on the job's whole bar (start, end)
SPANS = {"feed_import": {"queued": (0.0, 0.0), "reading": (0.0, 0.1), "storing": (0.1, 0.55),
                         "matching": (0.55, 0.95), "sweeping": (0.95, 1.0), "done": (1.0, 1.0)},
         "feed_withdraw": {"queued": (0.0, 0.0), "reading": (0.0, 0.05), "matching": (0.05, 0.85),
                           "storing": (0.85, 0.95), "sweeping": (0.95, 1.0), "done": (1.0, 1.0)}}



def _when(moment: datetime | None) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S") if moment else "—"


def _duration(row: dict[str, Any]) -> str:
    seconds = row["job_seconds"] if row.get("job_seconds") is not None else (
        row["import_ms"] / 1000 if row.get("import_ms") is not None else None)
    if seconds is None:
        return "—"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _status(row: dict[str, Any]) -> str:
    if row["withdrawn_at"] is not None and not row.get("withdraw_job_id"):
        return "withdrawn"
    return "withdrawing" if row.get("withdraw_job_id") else "active"


def history_table(rows: list[dict[str, Any]], lang: str) -> html.Table | html.P:
    """The import history: who, when, file, SHA-256, counts, duration, status, and its actions."""
    if not rows:
        return html.P(text("feeds.none", lang), className="nh-empty", id="feeds-history-table")
    keys = ("id", "when", "who", "source", "file", "sha", "counts", "duration", "status", "actions")
    head = html.Thead(html.Tr([html.Th(text(f"feeds.col.{key}", lang)) for key in keys]))
    lines = []
    for row in rows:
        status = _status(row)
        actions: list[Component] = []
        if row["rows_rejected"] or row.get("rows_warned"):
            actions.append(html.A(text("feeds.report_short", lang), href=REJECTIONS_URL.format(feed_id=row["id"]),
                                  className="nh-feeds-report", id=f"feeds-report-{row['id']}"))
        if status == "active":
            actions.append(html.Button(text("feeds.withdraw", lang), id={"type": "feeds-withdraw", "id": row["id"]},
                                       className="nh-button nh-secondary nh-feeds-withdraw"))
        note: list[Component | str] | None = [name(row["withdrawn_by"]), f" · {_when(row['withdrawn_at'])} · ",
                name(one_language(row["withdraw_reason"], lang))] if row["withdrawn_at"] is not None else None
        lines.append(html.Tr(className=f"nh-feeds-{status}", id=f"feeds-row-{row['id']}", children=[
            html.Td(str(row["id"])), html.Td(_when(row["imported_at"])), html.Td(name(row["imported_by"] or "—")),
            html.Td(name(row["source"])), html.Td(name(row["file_name"])),
            html.Td(html.Code(row["sha256"][:16] + "…", title=row["sha256"])),
            html.Td([f"{row['rows_read']} = {row['rows_stored']} + {row['rows_rejected']}",
                     *([html.Br(), html.Small(text("feeds.warned_short", lang).format(warned=row["rows_warned"]),
                                              className="nh-feeds-warned")] if row.get("rows_warned") else [])]),
            html.Td(_duration(row)),
            html.Td([html.Span(text(f"feeds.status.{status}", lang), className=f"nh-feeds-status-{status}"),
                     *([html.Br(), html.Small(note)] if note else [])]),
            html.Td(actions)]))
    return html.Table(className="nh-table nh-feeds-history", id="feeds-history-table",
                      children=[head, html.Tbody(lines)])


def _overall(view: JobView) -> float:
    start, end = SPANS.get(view.kind, SPANS["feed_import"]).get(view.stage, (0.0, 1.0))
    return 1.0 if view.state == "succeeded" else start + (end - start) * view.fraction


def _stage_list(view: JobView, lang: str) -> html.Ol:
    """The job's stages, each done, under way or still to come (``data-state``), in order."""
    stages = WITHDRAW_STAGES if view.kind == "feed_withdraw" else IMPORT_STAGES
    order = [stage for stage, _key in stages]
    current = order.index(view.stage) if view.stage in order else (len(order) if view.stage == "done" else -1)
    items = []
    for stage, key in stages:
        position = order.index(stage)
        if view.state == "succeeded" or position < current:
            state = "done"
        elif position == current:
            state = "failed" if view.state == "failed" else "now"
        else:
            state = "todo"
        items.append(html.Li(text(key, lang), className=f"nh-stage nh-stage-{state}",
                             **data(stage=stage, state=state)))
    return html.Ol(items, className="nh-stages", id=f"feeds-stages-{view.kind}")


def _result(view: JobView, lang: str, feed_id: int | None) -> list[Component]:
    result = view.result or {}
    if view.kind == "feed_withdraw":
        return [html.P(text("feeds.withdrawn_result", lang).format(
            records=result.get("records_removed", 0), tasks=result.get("tasks_cancelled", 0),
            persons=(result.get("match") or {}).get("persons", 0)), className="nh-ok", id="feeds-withdraw-result")]
    shown: list[Component] = [html.P(text("feeds.balance", lang).format(
        read=result.get("rows_read"), stored=result.get("rows_stored"), rejected=result.get("rows_rejected")),
        className="nh-ok", id="feeds-balance")]
    if result.get("already_imported"):
        shown.append(html.P(text("feeds.already", lang), className="nh-note"))
    shown += [html.P(one_language(warning, lang), className="nh-warning feeds-warning")
              for warning in result.get("warnings") or []]
    match, tasks = result.get("match"), result.get("tasks") or {}
    if isinstance(match, dict):
        shown.append(html.P(text("feeds.matched", lang).format(
            persons=match.get("persons"), red=match.get("red"), yellow=match.get("yellow"),
            tasks=tasks.get("tasks", 0))))
    rejected = result.get("rejections") or []
    if rejected:
        lines = [(row, field, reason) for row, reasons in rejected[:PREVIEW_REJECTIONS]
                 for field, reason in rejection_lines(reasons)]
        shown.append(html.H4(text("feeds.rejections", lang)))
        shown.append(html.Table(className="nh-table nh-feeds-rejections", children=[
            html.Thead(html.Tr([html.Th(text(key, lang)) for key in ("feeds.col.row", "feeds.col.field",
                                                                        "feeds.col.reason")])),
            html.Tbody([html.Tr([html.Td(str(row)), html.Td(one_language(field, lang)),
                                 html.Td(one_language(reason, lang))], className="nh-row-error")
                        for row, field, reason in lines])]))
        more = int(result.get("rows_rejected") or 0) - min(len(rejected), PREVIEW_REJECTIONS)
        if more > 0:
            shown.append(html.P(text("feeds.more_rejections", lang).format(more=more)))
    shown += _field_warnings(result, lang)
    if feed_id is not None and (result.get("rows_rejected") or result.get("rows_warned")):
        shown.append(html.A(text("feeds.report", lang), href=REJECTIONS_URL.format(feed_id=feed_id),
                            id="feeds-report-link", className="nh-button"))
    return shown


def _field_label(field: str, lang: str = "zh") -> str:
    """A field as the page names it in ``lang``: 手机号, or phone (the file's header, or the field's key)."""
    return field if lang == "en" else FIELD_NAMES.get(field, field)


def _field_warnings(result: dict[str, Any], lang: str) -> list[Component]:
    """How many stored rows had a field ignored, and the first warnings (row, field, reason)."""
    warned = int(result.get("rows_warned") or 0)
    if not warned:
        return []
    listed = result.get("field_warnings") or []
    shown: list[Component] = [
        html.P(text("feeds.warned", lang).format(warned=warned), className="nh-warning", id="feeds-warned"),
        html.H4(text("feeds.field_warnings", lang)),
        html.Table(className="nh-table nh-feeds-field-warnings", id="feeds-field-warnings", children=[
            html.Thead(html.Tr([html.Th(text(key, lang)) for key in ("feeds.col.row", "feeds.col.field",
                                                                        "feeds.col.reason")])),
            html.Tbody([html.Tr([html.Td(str(row)), html.Td(_field_label(field, lang)),
                                 html.Td(one_language(reason, lang))],
                                className="nh-row-warning")
                        for row, field, reason in listed[:PREVIEW_FIELD_WARNINGS]])])]
    more = warned - len({row for row, _field, _reason in listed[:PREVIEW_FIELD_WARNINGS]})
    if more > 0:
        shown.append(html.P(text("feeds.more_field_warnings", lang).format(more=more)))
    return shown


def job_panel(engine: Engine, job_id: int | None, lang: str) -> tuple[list[Component], bool]:
    """A job's panel (stages, bar, then its result or error) and whether it is over (nothing more to poll)."""
    if not job_id:
        return [], True
    view = read_progress(engine, job_id)
    if view is None:
        return [html.P(text("feeds.job", lang).format(job=job_id) + " ?", className="nh-error")], True
    fraction = _overall(view)
    label = f"{text('feeds.job', lang).format(job=view.job_id)} · {text(f'feeds.state.{view.state}', lang)} · " \
            f"{round(fraction * 100)}%" + (f" · {view.step}" if view.step and view.state == "running" else "")
    panel: list[Component] = [
        html.Div(className="nh-feeds-job", id=f"feeds-job-{view.kind}", **data(state=view.state, job=str(view.job_id)),
                 children=[_stage_list(view, lang), progress_bar(f"feeds-bar-{view.kind}", fraction, label)])]
    if view.state == "failed":
        panel.append(html.P(one_language(view.error, lang) or "", className="nh-error", id="feeds-job-error"))
    elif view.state == "succeeded":
        feed_id = None
        if view.kind == "feed_import":
            with reading(engine) as conn:
                feed_id = repository.feed_of_job(conn, view.job_id)
        panel.extend(_result(view, lang, feed_id))
    return panel, view.state in FINAL


def _layout(actor: Actor, lang: str, engine: Engine) -> html.Div:
    with reading(engine) as conn:
        sources = repository.feed_sources(conn)
        history = repository.feed_history(conn, HISTORY_LIMIT)
    # a job of this kind still under way (the page reloaded meanwhile) is followed again
    under_way = {view.kind: view.job_id for view in reversed(list_progress(engine, 20))
                 if view.kind in ("feed_import", "feed_withdraw") and view.state not in FINAL}
    return html.Div(className="nh-page nh-admin nh-feeds", lang=lang, children=[
        nav_bar(actor, lang, FEEDS),
        dcc.Store(id="feeds-lang", data=lang),
        dcc.Store(id="feeds-job", data=under_way.get("feed_import")),
        dcc.Store(id="feeds-withdraw-job", data=under_way.get("feed_withdraw")),
        dcc.Store(id="feeds-withdraw-target"),
        dcc.Store(id="feeds-changed", data=0),
        dcc.Interval(id="feeds-tick", interval=POLL_MS, disabled=not under_way),
        html.H1(text("feeds.title", lang)),
        html.Section(children=[
            html.H2(text("feeds.import", lang)),
            html.P(marked(text("feeds.help", lang)), className="nh-help"),
            html.Div(className="nh-form", children=[
                html.Label([text("feeds.source", lang),
                            dcc.Input(id="feeds-source", type="text", list="feeds-sources", debounce=False,
                                      placeholder=text("feeds.source_placeholder", lang), maxLength=60,
                                      className="nh-input", style={"minWidth": "220px"})]),
                html.Datalist(id="feeds-sources", children=[html.Option(value=source) for source in sources]),
                html.Label([*marked(text("feeds.crs", lang)),
                            dcc.Dropdown(id="feeds-crs", value="wgs84", clearable=False, className="nh-feeds-crs",
                                         options=[{"label": label("feeds.crs", crs, lang), "value": crs}
                                                  for crs in CRS_CHOICES])]),
            ]),
            upload_box("feeds", "feed", lang, ".csv,.xlsx"),
            html.Div(className="nh-buttons", children=[
                html.Button(text("feeds.start", lang), id="feeds-start", className="nh-button nh-secondary")]),
            html.Div(id="feeds-message", className="nh-message", role="status"),
            html.Div(id="feeds-progress", className="nh-feeds-progress"),
        ]),
        html.Section(children=[
            html.H2(text("feeds.history", lang)),
            html.Div(id="feeds-confirm", className="nh-feeds-confirm", style={"display": "none"}, children=[
                html.P(id="feeds-confirm-text"),
                dcc.Input(id="feeds-withdraw-reason", type="text", maxLength=REASON_LIMIT,
                          placeholder=text("feeds.reason", lang), className="nh-input"),
                html.Div(className="nh-buttons", children=[
                    html.Button(text("feeds.confirm_button", lang), id="feeds-withdraw-confirm",
                                className="nh-button nh-action-cancel"),
                    html.Button(text("feeds.cancel_button", lang), id="feeds-withdraw-cancel",
                                className="nh-button nh-secondary")]),
            ]),
            html.Div(id="feeds-withdraw-message", className="nh-message", role="status"),
            html.Div(id="feeds-withdraw-progress", className="nh-feeds-progress"),
            html.Div(id="feeds-history", children=history_table(history, lang)),
        ]),
    ])


def _acting(engine: Engine, clock: Callable[[], datetime]) -> Actor:
    actor = page_actor(engine, clock(), FEEDS.roles)
    if actor is None:
        raise PreventUpdate  # logged out, expired, or not an administrator: nothing is read or changed
    return actor


def rejections_workbook(engine: Engine, feed_id: int, lang: str = "zh") -> bytes:
    """The rejection report of the import ``feed_id`` as an .xlsx in the reader's language: row number, field,
    reason and kind — one line per problem of a rejected row and one per field warning of a stored row, in row
    order (a row is either rejected or stored: its lines stay together)."""
    with reading(engine) as conn:
        report = [line | {"kind": text("feeds.xlsx.rejected", lang)} for line in rejection_report(conn, feed_id)]
        report += [{"row": row, "field": FIELD_NAMES.get(field, field) if lang == "zh" else field, "reason": reason,
                    "kind": text("feeds.xlsx.warning", lang)}
                   for row, field, reason in repository.feed_field_warnings(conn, feed_id)]
    report.sort(key=lambda line: line["row"])  # stable: each row's lines keep their order
    shown = [line | {"field": one_language(line["field"], lang), "reason": one_language(line["reason"], lang)}
             for line in report]
    columns = [(key, text(f"feeds.xlsx.{key}", lang)) for key in ("row", "field", "reason", "kind")]
    return excel_bytes(text("feeds.xlsx.sheet", lang).format(n=feed_id), columns, shown)


def create_feeds(server: Flask, engine: Engine, clock: Callable[[], datetime]) -> dash.Dash:
    """Mount the page on ``server`` at /admin/feeds/, with the rejection report's download route."""
    app = mount(server, FEEDS, "nav.feeds")
    app.layout = lambda: guarded(engine, clock, FEEDS, lambda actor, lang: _layout(actor, lang, engine))
    bind_upload(app, "feeds")

    def rejections_xlsx(feed_id: int) -> Response:
        if page_actor(engine, clock(), FEEDS.roles) is None:
            return Response("仅管理员可下载 / administrators only", status=403, mimetype="text/plain")
        try:
            body = rejections_workbook(engine, feed_id, page_language())
        except GridError as exc:
            return Response(str(exc), status=404, mimetype="text/plain")
        return Response(body, mimetype=XLSX, headers={
            "Content-Disposition": f"attachment; filename=rejections-{feed_id}.xlsx", "Cache-Control": "no-store"})

    server.add_url_rule("/admin/feeds/<int:feed_id>/rejections.xlsx", endpoint="feeds_rejections_xlsx",
                        view_func=rejections_xlsx)

    @app.callback(Output("feeds-job", "data"), Output("feeds-message", "children"),
                  Output("feeds-tick", "disabled", allow_duplicate=True),
                  Input("feeds-upload", "data"), Input("feeds-start", "n_clicks"),
                  State("feeds-source", "value"), State("feeds-crs", "value"), State("feeds-lang", "data"),
                  prevent_initial_call=True)
    @refusals_shown(lambda exc: (dash.no_update, refusal(exc), dash.no_update))
    def start(upload: dict[str, Any] | None, _clicks: int | None, source: str | None, crs: str | None,
              lang: str) -> tuple[int, html.P, bool]:
        actor = _acting(engine, clock)
        if ctx.triggered_id == "feeds-start" and not _clicks:
            raise PreventUpdate
        if not upload:
            raise InvalidRequest(text("feeds.need_upload", lang), "upload")
        if upload.get("error"):
            raise InvalidRequest(str(upload.get("message") or upload["error"]), "upload")
        if not (source or "").strip():
            raise InvalidRequest(text("feeds.need_source", lang), "source")
        sent = uploaded_file(str(upload.get("id")), "feed")
        job_id = enqueue_feed_import(engine, sent.path, (source or "").strip(), crs or "wgs84",
                                     requested_by=actor.username, discard=True)  # clear personal data: not kept
        return job_id, html.P(f"{sent.name}：{text('feeds.queued', lang).format(job=job_id)}", className="nh-ok"), \
            False

    @app.callback(Output("feeds-progress", "children"), Output("feeds-withdraw-progress", "children"),
                  Output("feeds-tick", "disabled"), Output("feeds-changed", "data"),
                  Input("feeds-tick", "n_intervals"), Input("feeds-job", "data"), Input("feeds-withdraw-job", "data"),
                  State("feeds-changed", "data"), State("feeds-lang", "data"))
    def poll(_tick: int | None, job_id: int | None, withdraw_id: int | None, changed: int | None,
             lang: str) -> tuple[list[Component], list[Component], bool, int | dash.NoUpdate]:
        _acting(engine, clock)
        imported, import_over = job_panel(engine, job_id, lang)
        withdrawn, withdraw_over = job_panel(engine, withdraw_id, lang)
        over = import_over and withdraw_over
        # the history is drawn again when a job ends (or once a second while a withdrawal runs: its status)
        redraw = bool(job_id or withdraw_id) and (over or bool(withdraw_id))
        return imported, withdrawn, over, (changed or 0) + 1 if redraw else dash.no_update

    @app.callback(Output("feeds-history", "children"), Input("feeds-changed", "data"), State("feeds-lang", "data"),
                  prevent_initial_call=True)
    def history(_changed: int | None, lang: str) -> html.Table | html.P:
        _acting(engine, clock)
        with reading(engine) as conn:
            return history_table(repository.feed_history(conn, HISTORY_LIMIT), lang)

    @app.callback(Output("feeds-withdraw-target", "data"), Output("feeds-confirm", "style"),
                  Output("feeds-confirm-text", "children"),
                  Input({"type": "feeds-withdraw", "id": ALL}, "n_clicks"), Input("feeds-withdraw-cancel", "n_clicks"),
                  State("feeds-lang", "data"), prevent_initial_call=True)
    def pick(_clicks: list[int | None], _cancel: int | None, lang: str) -> tuple[int | None, dict[str, str], str]:
        _acting(engine, clock)
        if ctx.triggered_id == "feeds-withdraw-cancel":
            return None, {"display": "none"}, ""
        if not isinstance(ctx.triggered_id, dict) or not ctx.triggered[0]["value"]:
            raise PreventUpdate  # the history was drawn again, nobody clicked
        feed_id = int(ctx.triggered_id["id"])
        with reading(engine) as conn:
            found = repository.feed_file(conn, feed_id)
        if found is None:
            raise PreventUpdate
        return feed_id, {"display": "block"}, text("feeds.confirm", lang).format(
            id=feed_id, source=found["source"], file=found["file_name"], stored=found["rows_stored"])

    @app.callback(Output("feeds-withdraw-job", "data"), Output("feeds-withdraw-message", "children"),
                  Output("feeds-confirm", "style", allow_duplicate=True),
                  Output("feeds-tick", "disabled", allow_duplicate=True),
                  Output("feeds-withdraw-reason", "value"),
                  Input("feeds-withdraw-confirm", "n_clicks"), State("feeds-withdraw-target", "data"),
                  State("feeds-withdraw-reason", "value"), State("feeds-lang", "data"), prevent_initial_call=True)
    @refusals_shown(lambda exc: (dash.no_update, refusal(exc), dash.no_update, dash.no_update, dash.no_update))
    def withdraw(clicks: int | None, feed_id: int | None, reason: str | None,
                 lang: str) -> tuple[int, html.P, dict[str, str], bool, str]:
        actor = _acting(engine, clock)
        if not clicks or not feed_id:
            raise PreventUpdate
        job_id = enqueue_feed_withdrawal(engine, int(feed_id), reason or "", actor.username, client_tag())
        return job_id, html.P(text("feeds.withdraw_queued", lang).format(job=job_id), className="nh-ok"), \
            {"display": "none"}, False, ""

    return app
