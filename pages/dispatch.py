"""The supervisor's dispatch console (/dispatch/): his area's map, alerts, the work queue, searchable and paged
task lists, leads, a grid's persons, leads and timeline, a task's evidence, actions and timeline.

Home observation: a grid's panel shows its persons in observation (masked; day n of N, last temperature,
misses, :func:`observation.overview.grid_follow_ups`) and their plan events in its timeline; the lists show the
persons of the desk's area lost to follow-up (no report for 24 h: :func:`observation.overview.lost_to_follow_up`),
each opening his grid.

Every callback asks :func:`web.session.page_actor` who is acting and goes
through the repositories, which apply his data scope: a supervisor sees and
acts on his community only, whatever the browser sends. The map's geometry
is fetched once by URL; colours (the shared palette of :mod:`layers.palette`)
and the selection travel in ``hideout``. The lists and the panels scroll on
their own beside the map (``assets/dispatch.css``); the browser side (alert
sound and title, photo viewer, marks) is ``assets/dispatch.js``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import dash
import dash_leaflet as dl
import shapely.geometry
from dash import ALL, Input, Output, Patch, State, ctx, dcc, html
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate
from flask import Flask
from sqlalchemy import Connection, Engine

from accounts.actor import Actor
from accounts.repository import workers_in_scope
from gis.db import changing, reading
from gis.errors import Conflict, GridError, InvalidRequest
from layers.basemap import basemap_crs, basemap_layers, to_basemap_crs
from layers.grid_layer import grid_layer
from layers.wall import CHECKPOINTS_URL, OUTLINE_URLS, district_bounds, map_view
from leads import repository as lead_repository
from matching.appeals import pending_appeals
from matching.person_repository import flagged_in_grid
from observation.overview import grid_follow_ups, grid_plan_events, lost_after_hours, lost_to_follow_up
from pages.people import appeal_list
from pages.shell import DISPATCH, PEOPLE, data, guarded, mount, nav_bar
from pages.strings import one_language, text
from pages.task_panels import (
    follow_up_table,
    grid_label,
    kind_name,
    lead_detail,
    lead_list,
    local_time,
    lost_list,
    note,
    page_label,
    person_table,
    task_detail,
    task_list,
    timeline,
)
from pages.wall import legend
from tasks import repository as tasks
from tasks.alerts import pending_alerts
from tasks.kinds import load_kinds
from tasks.lifecycle import OPEN, STATUSES
from tasks.overview import grid_figures, version_stamp
from web.session import page_actor

REFRESH_MS = 10000
DUE_SOON = timedelta(hours=1)
PAGE_SIZE = 25
LEAD_LIMIT = 30
ALERT_WINDOW = timedelta(hours=12)  # a desk that never acknowledged is alerted to the last half day
ALERTS_SHOWN = 20
LOST_SHOWN = 30  # persons lost to follow-up listed (the count says how many in all)
REVIEWS_SHOWN = 20  # codes waiting for a review listed
MEASURES = ("work", "risk")
PANES = {"nh-dispatch-outlines": 430, "nh-dispatch-points": 440, "nh-dispatch-pick": 450}
FLAGS = ("overdue", "extension")
# a console action's outcome: (where and what to say, the new change count, the task to show)
Done = tuple[dict[str, Any], int, int | None | dash.NoUpdate]


def _filters(lang: str, workers: list[dict]) -> html.Div:
    status_options = [{"label": text("dispatch.all_open", lang), "value": "open"},
                      {"label": text("dispatch.all_statuses", lang), "value": "all"}] + \
        [{"label": text(f"status.{s}", lang), "value": s} for s in STATUSES]
    kinds = [{"label": kind_name(k, lang), "value": k} for k in load_kinds()]
    people = [{"label": w["display_name"] or w["username"], "value": w["id"]} for w in workers]
    return html.Div(className="nh-filters", children=[
        dcc.Input(id="dispatch-search", type="search", debounce=True, className="nh-input nh-search",
                  placeholder=text("dispatch.search", lang)),
        html.Div(className="nh-filter-row", children=[
            dcc.Dropdown(id="dispatch-status", options=status_options, value="open", clearable=False,
                         searchable=False, className="nh-filter"),
            dcc.Dropdown(id="dispatch-kind", options=kinds, placeholder=text("dispatch.kind_any", lang),
                         className="nh-filter", searchable=False)]),
        dcc.Dropdown(id="dispatch-worker", options=people, placeholder=text("dispatch.worker_any", lang),
                     className="nh-filter nh-name"),
        dcc.Checklist(id="dispatch-flags", className="nh-flags", inputClassName="nh-check", value=[], options=[
            {"label": text(f"dispatch.only_{f}", lang), "value": f} for f in FLAGS]),
    ])


def _map(actor: Actor, lang: str, bounds: list[list[float]] | None, figures: dict) -> html.Div:
    scope = None if actor.sees_everything else list(actor.grid_codes)
    return html.Div(className="nh-dispatch-mapbox", children=[
        dl.Map(id="dispatch-map", className="nh-dispatch-map", zoomSnap=0.25,
               **map_view(bounds, [23.0, 113.06]), children=[
                   *basemap_layers(),
                   grid_layer("dispatch-grids", "nanhai.dispatch.gridStyle",
                              {"scope": scope, "selected": None, "values": figures, "measure": MEASURES[0]}),
                   dl.Pane(name="nh-dispatch-outlines", style={"zIndex": PANES["nh-dispatch-outlines"]}, children=[
                       dl.GeoJSON(url=OUTLINE_URLS["communities"], format="geojson", interactive=False,
                                  zoomToBounds=False, hideout={"symbol": "community"},
                                  style={"variable": "nanhai.dispatch.outlineStyle"}),
                       dl.GeoJSON(url=OUTLINE_URLS["towns"], format="geojson", interactive=False,
                                  zoomToBounds=False, hideout={"symbol": "town"},
                                  style={"variable": "nanhai.dispatch.outlineStyle"})]),
                   dl.Pane(name="nh-dispatch-points", style={"zIndex": PANES["nh-dispatch-points"]}, children=[
                       dl.GeoJSON(url=CHECKPOINTS_URL, format="geojson", zoomToBounds=False,
                                  hideout={"pane": "nh-dispatch-points"},
                                  pointToLayer={"variable": "nanhai.dispatch.checkpoint"})]),
                   dl.Pane(name="nh-dispatch-pick", style={"zIndex": PANES["nh-dispatch-pick"]}, children=[
                       dl.GeoJSON(id="dispatch-pick", data=None, zoomToBounds=False, interactive=False,
                                  hideout={"pane": "nh-dispatch-pick"},
                                  style={"variable": "nanhai.dispatch.pickStyle"},
                                  onEachFeature={"variable": "nanhai.dispatch.pickEach"},
                                  pointToLayer={"variable": "nanhai.dispatch.reportPoint"})]),
               ]),
        html.Div(className="nh-dispatch-legend", id="dispatch-legend-box", children=[
            dcc.RadioItems(id="dispatch-measure", value=MEASURES[0], className="nh-measure", options=[
                {"label": text(f"dispatch.measure.{m}", lang), "value": m} for m in MEASURES]),
            html.Div(id="dispatch-legend", className=f"nh-measure-{MEASURES[0]}", children=[
                *(legend(m, lang, "light") for m in MEASURES), legend("checkpoint", lang, "light"),
                legend("community", lang, "light")])]),
    ])


def _layout(actor: Actor, lang: str, engine: Engine, clock: Callable[[], datetime]) -> html.Div:
    scope = None if actor.sees_everything else sorted(actor.grid_ids)
    with reading(engine) as conn:
        bounds = district_bounds(conn, scope)
        figures = grid_figures(conn, clock(), scope)
        workers = workers_in_scope(conn, actor) if actor.role != "admin" else []
        lost_hours = lost_after_hours(conn)
    sound = {"on": text("dispatch.sound_on", lang), "off": text("dispatch.sound_off", lang),
             "title": text("dispatch.page_title", lang)}
    return html.Div(className="nh-page nh-dispatch-page", lang=lang, children=[
        nav_bar(actor, lang, DISPATCH),
        dcc.Store(id="dispatch-lang", data=lang), dcc.Store(id="dispatch-words", data=sound),
        dcc.Store(id="dispatch-grid"), dcc.Store(id="dispatch-task"), dcc.Store(id="dispatch-lead"),
        dcc.Store(id="dispatch-changed", data=0), dcc.Store(id="dispatch-note"),
        dcc.Store(id="dispatch-stamp"), dcc.Store(id="dispatch-alert-stamp"),
        dcc.Store(id="dispatch-query", data={"offset": 0}), dcc.Store(id="dispatch-total", data=0),
        dcc.Store(id="dispatch-seen", storage_type="local"), dcc.Store(id="dispatch-sound", storage_type="local"),
        dcc.Store(id="dispatch-alert-count", data=None), dcc.Store(id="dispatch-title-done"),
        dcc.Interval(id="dispatch-tick", interval=REFRESH_MS),
        html.Div(className="nh-dispatch", children=[
            html.Aside(className="nh-dispatch-lists", children=[
                html.Div(className="nh-alerts", children=[
                    html.Button(id="dispatch-alert-badge", className="nh-alert-badge", n_clicks=0,
                                title=text("dispatch.alerts_ack", lang), children=[
                                    html.Span(text("dispatch.alerts", lang)),
                                    html.Span("0", id="dispatch-alert-number", className="nh-badge nh-badge-zero")]),
                    html.Button(id="dispatch-sound-toggle", className="nh-sound", n_clicks=0,
                                children=sound["on"]),
                    html.Ul(id="dispatch-alert-list", className="nh-alert-list")]),
                html.H2(text("dispatch.queue", lang)), html.Div(id="dispatch-queue", className="nh-queue"),
                html.H2(text("dispatch.lost", lang).format(hours=lost_hours)),
                html.Div(id="dispatch-lost"),
                html.H2(text("dispatch.tasks", lang)),
                _filters(lang, workers),
                html.Div(id="dispatch-tasks"),
                html.Div(className="nh-pager", children=[
                    html.Button(text("dispatch.prev", lang), id="dispatch-prev", className="nh-button nh-secondary",
                                n_clicks=0, disabled=True),
                    html.Span(id="dispatch-page", className="nh-page-label"),
                    html.Button(text("dispatch.next", lang), id="dispatch-next", className="nh-button nh-secondary",
                                n_clicks=0, disabled=True)]),
                html.H2(text("dispatch.leads", lang)), html.Div(id="dispatch-leads"),
                # codes waiting for a review (a fever on follow-up files one): decided on the people page
                html.H2(text("dispatch.reviews", lang)), html.Div(id="dispatch-reviews"),
                html.A(text("dispatch.reviews_open", lang), href=PEOPLE.path, className="nh-more"),
            ]),
            _map(actor, lang, bounds, figures),
            html.Aside(className="nh-dispatch-side", children=[
                html.Div(id="dispatch-lead-panel"),
                html.Div(id="dispatch-task-panel", children=html.P(text("dispatch.pick_task", lang),
                                                                    className="nh-empty")),
                html.Div(id="dispatch-grid-panel", children=html.P(text("dispatch.pick_grid", lang),
                                                                    className="nh-empty")),
            ]),
        ]),
    ])


def _acting(engine: Engine, clock: Callable[[], datetime]) -> Actor:
    actor = page_actor(engine, clock(), DISPATCH.roles)
    if actor is None:
        raise PreventUpdate  # logged out, expired, or not a dispatching role: nothing is read or changed
    return actor


def refused(exc: GridError, lang: str) -> html.P:
    """A refusal in the page's language."""
    return html.P(one_language(str(exc), lang), className="nh-error")


def grid_panel(conn: Connection, actor: Actor, code: str, lang: str, now: datetime,
               message: dict | None = None) -> list[Component]:
    """A grid's flagged persons (masked), persons in observation, open leads, tasks, a form for a new task, and
    its timeline (task and plan events)."""
    persons = flagged_in_grid(conn, actor, code, limit=200)
    follow_ups = grid_follow_ups(conn, actor, code, now)
    leads = lead_repository.list_leads(conn, actor, grid_code=code)
    found, total = tasks.list_tasks(conn, actor, tasks.TaskFilter(grid_code=code, limit=30), now)
    grid_name = found[0]["grid_name"] if found else (leads[0]["grid_name"] if leads else None)
    kinds = [{"label": kind_name(k, lang), "value": k} for k in load_kinds()]
    shown = [task_list(found, lang, "grid")]
    if total > len(found):
        shown.append(html.P(page_label(0, len(found), total, lang), className="nh-more"))
    return [
        html.H3(grid_label(code, grid_name), id="grid-panel-code", **data(code=code)),
        html.H4(text("dispatch.create", lang)),
        html.Div(className="nh-create", children=[
            dcc.Dropdown(id={"type": "form", "name": "kind"}, options=kinds, value="home_visit", clearable=False),
            dcc.Input(id={"type": "form", "name": "title"}, placeholder=text("dispatch.title_placeholder", lang),
                      maxLength=200, className="nh-input nh-create-title"),
            html.Button(text("dispatch.create_button", lang), id={"type": "create-task", "grid": code},
                        className="nh-button nh-create-button"),
            note(message, "grid", code)]),
        html.H4(text("dispatch.tasks", lang)), *shown,
        html.H4(text("dispatch.persons", lang)), person_table(persons, lang),
        html.H4(text("dispatch.follow_ups", lang)), follow_up_table(follow_ups, lang),
        html.H4(text("dispatch.leads", lang)), lead_list(leads, lang) if leads
        else html.P(text("dispatch.none", lang), className="nh-empty"),
        html.H4(text("dispatch.grid_timeline", lang)),
        timeline(tasks.grid_timeline(conn, actor, code, limit=30) + grid_plan_events(conn, actor, code, limit=30),
                 lang, with_task=True),
    ]


def act(conn: Connection, actor: Actor, trigger: dict[str, Any], values: dict[str, Any],
        now: datetime) -> tuple[str, int | None]:
    """Carry out what a console button asks; returns (what was done, the task to show).

    Cancelling a task and dismissing a lead take the reason typed next to their confirm button (each its own
    box); closing a report made far from the grid is sent with ``confirm_far`` only from the confirm button shown
    beside the distance (the repository refuses it otherwise)."""
    lang = values.get("lang", "zh")
    if trigger["type"] == "create-task":
        new = tasks.NewTask(values.get("kind") or "", trigger["grid"], values.get("title") or "")
        created = tasks.create_task(conn, actor, new, now)
        return f"{text('action.create', lang)} #{created['id']}", created["id"]
    if trigger["type"] == "lead-act":
        if trigger["action"] == "dismiss":
            lead_repository.dismiss_lead(conn, actor, trigger["id"], values.get("dismiss_reason"), required=True)
            return f"{text('dispatch.dismissed', lang)} #{trigger['id']}", None
        created = lead_repository.triage_lead(conn, actor, trigger["id"], "lead_verification", now)
        return f"{text('dispatch.triaged', lang)} #{created['id']}", created["id"]
    action = trigger["action"]
    payload: dict[str, Any] = {"assignee_id": values.get("assignee")}
    if action == "cancel":
        if not trigger.get("confirm"):
            raise InvalidRequest("请确认撤销并填写原因 / confirm the cancellation and give its reason", "reason")
        payload["reason"] = values.get("cancel_reason") or None
    elif action in ("rework", "refuse_extension", "decline", "request_extension"):
        payload["reason"] = values.get("reason") or None
    else:
        payload["note"] = values.get("reason") or None
    if action == "close":
        payload["confirm_far"] = bool(trigger.get("confirm"))
    done = tasks.transition(conn, actor, trigger["task"], action, trigger["version"], payload, now)
    return f"{text('action.' + action, lang)} #{done['task']['id']}", done["task"]["id"]


def _where(trigger: dict[str, Any]) -> tuple[str, int | str | None]:
    """Which panel an action's outcome is shown on, and for which subject (a task, a lead, a grid)."""
    if trigger["type"] == "create-task":
        return "grid", trigger["grid"]
    if trigger["type"] == "lead-act":
        return "lead", trigger["id"]
    return "task", trigger["task"]


def alert_items(alerts: list, lang: str) -> list[html.Li]:
    """The newest alerts, each opening its task or lead: when, what, which grid."""
    items = []
    for i, alert in enumerate(alerts[:ALERTS_SHOWN]):
        target = {"type": "lead-pick", "id": alert.lead_id, "where": f"alert{i}"} if alert.kind == "lead" \
            else {"type": "task-pick", "id": alert.task_id, "where": f"alert{i}"}
        items.append(html.Li(className=f"nh-alert nh-alert-{alert.kind}", children=html.Button(
            id=target, className="nh-alert-button", children=[
                html.Span(local_time(alert.at.isoformat()), className="nh-time"),
                html.Strong(text(f"dispatch.alert.{alert.kind}", lang)), " ",
                *grid_label(alert.grid_code, alert.grid_name)])))
    return items


def pick_shapes(place: dict) -> tuple[dict, list[list[float]] | None]:
    """A task's place (tasks.repository.task_place) in the basemap's datum, and the bounds to show: the grid and
    the report point both."""
    shifted = to_basemap_crs(place, basemap_crs())
    if not shifted["features"]:
        return shifted, None
    west, south, east, north = shapely.geometry.shape(
        {"type": "GeometryCollection", "geometries": [f["geometry"] for f in shifted["features"]]}).bounds
    return shifted, [[south, west], [north, east]]


def create_dispatch(server: Flask, engine: Engine, clock: Callable[[], datetime]) -> dash.Dash:
    """Mount the dispatch console on ``server`` at /dispatch/."""
    app = mount(server, DISPATCH, "nav.dispatch")
    app.layout = lambda: guarded(engine, clock, DISPATCH, lambda actor, lang: _layout(actor, lang, engine, clock))

    @app.callback(Output("dispatch-query", "data"),
                  Input("dispatch-search", "value"), Input("dispatch-status", "value"),
                  Input("dispatch-kind", "value"), Input("dispatch-worker", "value"),
                  Input("dispatch-flags", "value"), Input("dispatch-prev", "n_clicks"),
                  Input("dispatch-next", "n_clicks"), State("dispatch-query", "data"),
                  State("dispatch-total", "data"), prevent_initial_call=True)
    def query(search: str | None, status: str | None, kind: str | None, worker: int | None, flags: list[str] | None,
              _prev: int, _next: int, current: dict | None, total: int | None) -> dict[str, Any]:
        """The list's filters and page: a changed filter goes back to the first page."""
        offset = (current or {}).get("offset", 0)
        if ctx.triggered_id == "dispatch-prev":
            offset = max(0, offset - PAGE_SIZE)
        elif ctx.triggered_id == "dispatch-next":
            offset = offset + PAGE_SIZE if offset + PAGE_SIZE < (total or 0) else offset
        else:
            offset = 0
        return {"search": search or None, "status": status or "open", "kind": kind, "worker": worker,
                "flags": sorted(flags or []), "offset": offset}

    # Picking a grid or a task changes no list and no figure: the browser marks the pick (mark, below) and the
    # lists are not queried and sent again for it.
    @app.callback(Output("dispatch-queue", "children"), Output("dispatch-tasks", "children"),
                  Output("dispatch-page", "children"), Output("dispatch-prev", "disabled"),
                  Output("dispatch-next", "disabled"), Output("dispatch-total", "data"),
                  Output("dispatch-leads", "children"), Output("dispatch-grids", "hideout"),
                  Output("dispatch-lost", "children"), Output("dispatch-reviews", "children"),
                  Output("dispatch-stamp", "data"),
                  Input("dispatch-tick", "n_intervals"), Input("dispatch-changed", "data"),
                  Input("dispatch-query", "data"), State("dispatch-stamp", "data"), State("dispatch-lang", "data"))
    def refresh(_tick: int | None, changed: int | None, where: dict | None, known: str | None,
                lang: str) -> tuple[Any, ...]:
        actor, now = _acting(engine, clock), clock()
        where = where or {}
        with reading(engine) as conn:
            stamp = f"{version_stamp(conn)}|{changed}|{sorted(where.items())}|{now.strftime('%Y%m%d%H%M')}"
            if stamp == known:
                raise PreventUpdate  # the idle refresh: nothing changed, nothing resent
            queue, _ = tasks.list_tasks(conn, actor, tasks.TaskFilter(due_before=now + DUE_SOON, limit=50), now)
            status = where.get("status") or "open"
            flags = where.get("flags") or []
            offset = int(where.get("offset") or 0)
            found, total = tasks.list_tasks(conn, actor, tasks.TaskFilter(
                statuses=() if status == "all" else OPEN if status == "open" else (status,),
                search=where.get("search"), kinds=(where["kind"],) if where.get("kind") else (),
                assignee_id=where.get("worker"), overdue=True if "overdue" in flags else None,
                extension_pending=True if "extension" in flags else None, limit=PAGE_SIZE, offset=offset), now)
            leads = lead_repository.list_leads(conn, actor, limit=LEAD_LIMIT)
            lead_total = lead_repository.count_leads(conn, actor)
            figures = grid_figures(conn, now, None if actor.sees_everything else sorted(actor.grid_ids))
            lost, lost_total = lost_to_follow_up(conn, actor, now, limit=LOST_SHOWN)
            reviews = pending_appeals(conn, actor, limit=REVIEWS_SHOWN)
        shown_leads: list[Component] = [lead_list(leads, lang)]
        if lead_total > len(leads):
            shown_leads.append(html.P(page_label(0, len(leads), lead_total, lang), className="nh-more"))
        values = Patch()  # the figures only: a pick made while this ran keeps its mark on the map
        values["values"] = figures
        return (task_list(queue, lang, "queue"), task_list(found, lang, "list"),
                page_label(offset, PAGE_SIZE, total, lang), offset == 0, offset + PAGE_SIZE >= total, total,
                shown_leads, values, lost_list(lost, lost_total, lang), appeal_list(reviews, lang, deciding=False),
                stamp)

    @app.callback(Output("dispatch-alert-list", "children"), Output("dispatch-alert-number", "children"),
                  Output("dispatch-alert-number", "className"), Output("dispatch-alert-count", "data"),
                  Output("dispatch-alert-stamp", "data"),
                  Input("dispatch-tick", "n_intervals"), Input("dispatch-seen", "data"),
                  State("dispatch-alert-stamp", "data"), State("dispatch-lang", "data"))
    def alerts(_tick: int | None, seen: str | None, known: str | None, lang: str) -> tuple[Any, ...]:
        """New tip-offs, overdue tasks and extension requests since the desk last acknowledged (one cheap
        statement, asked only when something changed or a minute turned over)."""
        actor, now = _acting(engine, clock), clock()
        since = datetime.fromisoformat(seen) if seen else now - ALERT_WINDOW
        with reading(engine) as conn:
            stamp = f"{version_stamp(conn)}|{seen}|{now.strftime('%Y%m%d%H%M')}"
            if stamp == known:
                raise PreventUpdate
            found = pending_alerts(conn, None if actor.sees_everything else sorted(actor.grid_ids), since, now)
        count = len(found)
        newest = found[0].at.isoformat() if found else None
        return (alert_items(found, lang), str(count), "nh-badge" + ("" if count else " nh-badge-zero"),
                {"count": count, "newest": newest}, stamp)

    @app.callback(Output("dispatch-seen", "data"), Input("dispatch-alert-badge", "n_clicks"),
                  prevent_initial_call=True)
    def acknowledge(clicks: int | None) -> str:
        """The desk has looked: alerts count from now (the server's clock, as the alerts are stamped by it)."""
        _acting(engine, clock)
        if not clicks:
            raise PreventUpdate
        return clock().isoformat()

    app.clientside_callback(
        dash.ClientsideFunction(namespace="nanhai_dispatch_console", function_name="alert"),
        Output("dispatch-title-done", "data"), Input("dispatch-alert-count", "data"),
        State("dispatch-sound", "data"), State("dispatch-words", "data"))
    app.clientside_callback(
        dash.ClientsideFunction(namespace="nanhai_dispatch_console", function_name="sound"),
        Output("dispatch-sound", "data"), Output("dispatch-sound-toggle", "children"),
        Input("dispatch-sound-toggle", "n_clicks"), State("dispatch-sound", "data"), State("dispatch-words", "data"))
    app.clientside_callback(
        dash.ClientsideFunction(namespace="nanhai_dispatch_console", function_name="mark"),
        Output("dispatch-grids", "hideout", allow_duplicate=True),
        Input("dispatch-grid", "data"), Input("dispatch-task", "data"), Input("dispatch-queue", "children"),
        Input("dispatch-tasks", "children"), Input("dispatch-measure", "value"), State("dispatch-grids", "hideout"),
        prevent_initial_call=True)
    app.clientside_callback(
        "function (measure) { return 'nh-measure-' + measure; }",
        Output("dispatch-legend", "className"), Input("dispatch-measure", "value"))

    @app.callback(Output("dispatch-grid", "data"), Input("dispatch-grids", "clickData"), prevent_initial_call=True)
    def pick_grid(feature: dict[str, Any] | None) -> str:
        _acting(engine, clock)
        if not feature:
            raise PreventUpdate
        return feature["properties"]["code"]

    @app.callback(Output("dispatch-grid", "data", allow_duplicate=True),
                  Input({"type": "lost-pick", "plan": ALL, "grid": ALL}, "n_clicks"), prevent_initial_call=True)
    def pick_lost(_clicks: list[int | None]) -> str:
        """A person lost to follow-up was clicked: his grid's panel opens (its table shows him first)."""
        _acting(engine, clock)
        if not ctx.triggered_id or not ctx.triggered[0]["value"] or not ctx.triggered_id["grid"]:
            raise PreventUpdate
        return str(ctx.triggered_id["grid"])

    @app.callback(Output("dispatch-task", "data", allow_duplicate=True),
                  Input({"type": "task-pick", "id": ALL, "where": ALL}, "n_clicks"), prevent_initial_call=True)
    def pick_task(_clicks: list[int | None]) -> int:
        _acting(engine, clock)
        if not ctx.triggered_id or not ctx.triggered[0]["value"]:
            raise PreventUpdate  # a list was redrawn, nobody clicked
        return ctx.triggered_id["id"]

    @app.callback(Output("dispatch-lead", "data"),
                  Input({"type": "lead-pick", "id": ALL, "where": ALL}, "n_clicks"), prevent_initial_call=True)
    def pick_lead(_clicks: list[int | None]) -> int:
        _acting(engine, clock)
        if not ctx.triggered_id or not ctx.triggered[0]["value"]:
            raise PreventUpdate
        return ctx.triggered_id["id"]

    @app.callback(Output("dispatch-grid-panel", "children"),
                  Input("dispatch-grid", "data"), Input("dispatch-changed", "data"), State("dispatch-note", "data"),
                  State("dispatch-lang", "data"), prevent_initial_call=True)
    def show_grid(code: str | None, _changed: int | None, message: dict | None, lang: str) -> Any:
        actor = _acting(engine, clock)
        if not code:
            raise PreventUpdate
        try:
            with reading(engine) as conn:
                return grid_panel(conn, actor, code, lang, clock(), message)
        except GridError as exc:
            return refused(exc, lang)

    @app.callback(Output("dispatch-task-panel", "children"), Output("dispatch-pick", "data"),
                  Output("dispatch-map", "viewport"),
                  Input("dispatch-task", "data"), Input("dispatch-changed", "data"), State("dispatch-note", "data"),
                  State("dispatch-lang", "data"), prevent_initial_call=True)
    def show_task(task_id: int | None, _changed: int | None, message: dict | None, lang: str) -> tuple[Any, ...]:
        """The task's panel; on the map its grid outlined, the report's position and its gap to the grid, zoomed
        to (only when another task is picked: a redraw after an action keeps the user's view)."""
        actor = _acting(engine, clock)
        if not task_id:
            raise PreventUpdate
        now = clock()
        try:
            with reading(engine) as conn:
                task = tasks.get_task(conn, actor, task_id, now)
                workers = workers_in_scope(conn, actor) if actor.role != "admin" else []
                place = tasks.task_place(conn, actor, task_id, now)
        except GridError as exc:
            return refused(exc, lang), None, dash.no_update
        shapes, bounds = pick_shapes(place)
        view = {"bounds": bounds, "transition": "fitBounds", "options": {"maxZoom": 16, "padding": [40, 40]}} \
            if bounds and ctx.triggered_id == "dispatch-task" else dash.no_update
        return task_detail(task, actor.role, workers, lang, message), shapes, view

    @app.callback(Output("dispatch-lead-panel", "children"),
                  Input("dispatch-lead", "data"), Input("dispatch-changed", "data"), State("dispatch-note", "data"),
                  State("dispatch-lang", "data"), prevent_initial_call=True)
    def show_lead(lead_id: int | None, _changed: int | None, message: dict | None, lang: str) -> Any:
        actor = _acting(engine, clock)
        if not lead_id:
            raise PreventUpdate
        try:
            with reading(engine) as conn:
                lead = lead_repository.get_lead(conn, actor, lead_id)
        except GridError as exc:
            return refused(exc, lang)
        return lead_detail(lead, lang, actor.role in ("supervisor", "commander"), message)

    @app.callback(Output("dispatch-note", "data"), Output("dispatch-changed", "data"),
                  Output("dispatch-task", "data"),
                  Input({"type": "task-act", "action": ALL, "task": ALL, "version": ALL, "confirm": ALL}, "n_clicks"),
                  Input({"type": "lead-act", "action": ALL, "id": ALL}, "n_clicks"),
                  Input({"type": "create-task", "grid": ALL}, "n_clicks"),
                  State({"type": "form", "name": ALL}, "value"), State("dispatch-changed", "data"),
                  State("dispatch-task", "data"), State("dispatch-lang", "data"), prevent_initial_call=True)
    def on_action(_acts: list[int | None], _leads: list[int | None], _create: list[int | None], fields: list[Any],
                  changed: int | None, shown: int | None, lang: str) -> Done:
        """Carry out a button's action; its outcome (done, or why not) is shown next to that button."""
        actor = _acting(engine, clock)
        if not ctx.triggered_id or not ctx.triggered[0]["value"]:
            raise PreventUpdate  # buttons were drawn, nobody clicked
        trigger = dict(ctx.triggered_id)
        names = [state["id"]["name"] for state in ctx.states_list[0]]
        values = {**dict(zip(names, fields, strict=True)), "lang": lang}
        where, subject = _where(trigger)
        try:
            with changing(engine) as conn:
                done, task_id = act(conn, actor, trigger, values, clock())
        except Conflict as exc:  # the task moved on meanwhile: say so and redraw it as it is now
            said = text("dispatch.stale", lang) if exc.code == "stale_version" else one_language(str(exc), lang)
            return {"where": where, "subject": subject, "text": said, "ok": False}, (changed or 0) + 1, shown
        except GridError as exc:
            return ({"where": where, "subject": subject, "text": one_language(str(exc), lang), "ok": False},
                    (changed or 0) + 1, shown)
        message = {"where": where, "subject": subject, "text": f"{text('dispatch.done', lang)}{done}", "ok": True}
        return message, (changed or 0) + 1, task_id or shown

    return app

