"""The supervisor's dispatch console (/dispatch/): his area's map, the work queue, a grid's persons, leads and
timeline, a task's actions and timeline.

Every callback asks :func:`web.session.page_actor` who is acting and goes
through the repositories, which apply his data scope: a supervisor sees and
acts on his community only, whatever the browser sends. The map's geometry
is fetched once by URL; colours and the selection travel in ``hideout``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import dash
import dash_leaflet as dl
from dash import ALL, Input, Output, Patch, State, ctx, dcc, html
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate
from flask import Flask
from sqlalchemy import Connection, Engine

from accounts.actor import Actor
from accounts.repository import workers_in_scope
from gis.db import changing, reading
from gis.errors import Conflict
from layers.basemap import basemap_layers
from layers.grid_layer import grid_layer
from layers.wall import OUTLINE_URLS, district_bounds, map_view
from leads import repository as lead_repository
from matching.person_repository import flagged_in_grid
from pages.shell import DISPATCH, guarded, mount, nav_bar, refusal
from pages.strings import text
from pages.task_panels import kind_name, lead_item, person_table, task_detail, task_list, timeline
from tasks import repository as tasks
from tasks.kinds import load_kinds
from tasks.lifecycle import OPEN, STATUSES
from tasks.overview import grid_figures, version_stamp
from web.errors import refusals_shown
from web.session import page_actor

REFRESH_MS = 10000
DUE_SOON = timedelta(hours=1)
LIST_LIMIT = 100
# what a console button's callback shows: a message, the new change count, the task to show
Done = tuple[html.P, int | dash.NoUpdate, int | None | dash.NoUpdate]


def _layout(actor: Actor, lang: str, engine: Engine, clock: Callable[[], datetime]) -> html.Div:
    scope = None if actor.sees_everything else sorted(actor.grid_ids)
    with reading(engine) as conn:
        bounds = district_bounds(conn, scope)
        figures = grid_figures(conn, clock(), scope)
    status_options = [{"label": text("dispatch.all_open", lang), "value": "open"}] + \
        [{"label": text(f"status.{s}", lang), "value": s} for s in STATUSES]
    return html.Div(className="nh-page", lang=lang, children=[
        nav_bar(actor, lang, DISPATCH),
        dcc.Store(id="dispatch-lang", data=lang),
        dcc.Store(id="dispatch-grid"), dcc.Store(id="dispatch-task"), dcc.Store(id="dispatch-changed", data=0),
        dcc.Store(id="dispatch-stamp"),
        dcc.Interval(id="dispatch-tick", interval=REFRESH_MS),
        html.Div(className="nh-dispatch", children=[
            html.Aside(className="nh-dispatch-lists", children=[
                html.H2(text("dispatch.queue", lang)), html.Div(id="dispatch-queue"),
                html.Div(className="nh-row", children=[
                    html.H2(text("dispatch.tasks", lang)),
                    dcc.Dropdown(id="dispatch-status", options=status_options, value="open", clearable=False,
                                 className="nh-status-filter")]),
                html.Div(id="dispatch-tasks"),
                html.H2(text("dispatch.leads", lang)), html.Div(id="dispatch-leads"),
            ]),
            dl.Map(id="dispatch-map", className="nh-dispatch-map", zoomSnap=0.25,
                   **map_view(bounds, [23.0, 113.06]), children=[
                       *basemap_layers(),
                       grid_layer("dispatch-grids", "nanhai.dispatch.gridStyle",
                                  {"scope": None if scope is None else list(actor.grid_codes), "selected": None,
                                   "values": figures}),
                       dl.GeoJSON(url=OUTLINE_URLS["communities"], format="geojson", interactive=False,
                                  style={"color": "#334e68", "weight": 1.5, "fill": False}),
                   ]),
            html.Aside(className="nh-dispatch-side", children=[
                html.Div(id="dispatch-message", className="nh-message", role="status"),
                html.Div(id="dispatch-task-panel", children=html.P(text("dispatch.pick_task", lang))),
                html.Div(id="dispatch-grid-panel", children=html.P(text("dispatch.pick_grid", lang))),
            ]),
        ]),
    ])


def _acting(engine: Engine, clock: Callable[[], datetime]) -> Actor:
    actor = page_actor(engine, clock(), DISPATCH.roles)
    if actor is None:
        raise PreventUpdate  # logged out, expired, or not a dispatching role: nothing is read or changed
    return actor


def grid_panel(conn: Connection, actor: Actor, code: str, lang: str, now: datetime) -> list[Component]:
    """A grid's flagged persons (masked), open leads, tasks, a form for a new task, and its timeline."""
    persons = flagged_in_grid(conn, actor, code, limit=200)
    leads = lead_repository.list_leads(conn, actor, grid_code=code)
    found, total = tasks.list_tasks(conn, actor, tasks.TaskFilter(grid_code=code, limit=30), now)
    kinds = [{"label": kind_name(k, lang), "value": k} for k in load_kinds()]
    return [
        html.H3(code, id="grid-panel-code"),
        html.H4(text("dispatch.create", lang)),
        html.Div(className="nh-create", children=[
            dcc.Dropdown(id={"type": "form", "name": "kind"}, options=kinds, value="home_visit", clearable=False),
            dcc.Input(id={"type": "form", "name": "title"}, placeholder=text("dispatch.title_placeholder", lang),
                      maxLength=200, className="nh-input nh-create-title"),
            html.Button(text("dispatch.create_button", lang), id={"type": "create-task", "grid": code},
                        className="nh-button nh-create-button")]),
        html.H4(text("dispatch.tasks", lang)), task_list(found, lang, "grid", total),
        html.H4(text("dispatch.persons", lang)), person_table(persons, lang),
        html.H4(text("dispatch.leads", lang)),
        html.Ul([lead_item(lead, lang, actionable=False) for lead in leads]) if leads
        else html.P(text("dispatch.none", lang), className="nh-empty"),
        html.H4(text("dispatch.grid_timeline", lang)),
        timeline(tasks.grid_timeline(conn, actor, code, limit=30), lang, with_task=True),
    ]


def act(conn: Connection, actor: Actor, trigger: dict[str, Any], values: dict[str, Any],
        now: datetime) -> tuple[str, int | None]:
    """Carry out what a console button asks; returns (what was done, the task to show)."""
    if trigger["type"] == "create-task":
        new = tasks.NewTask(values.get("kind") or "", trigger["grid"], values.get("title") or "")
        created = tasks.create_task(conn, actor, new, now)
        return f"{text('action.create', values['lang'])} #{created['id']}", created["id"]
    if trigger["type"] == "lead-act":
        if trigger["action"] == "dismiss":
            lead_repository.dismiss_lead(conn, actor, trigger["id"])
            return f"{text('dispatch.dismiss', values['lang'])} #{trigger['id']}", None
        created = lead_repository.triage_lead(conn, actor, trigger["id"], "lead_verification", now)
        return f"{text('dispatch.triage', values['lang'])} #{created['id']}", created["id"]
    payload = {"assignee_id": values.get("assignee"), "reason": values.get("reason") or None}
    if trigger["action"] not in ("rework", "cancel", "refuse_extension"):
        payload["note"] = payload.pop("reason")
    done = tasks.transition(conn, actor, trigger["task"], trigger["action"], trigger["version"], payload, now)
    return f"{text('action.' + trigger['action'], values['lang'])} #{done['task']['id']}", done["task"]["id"]


def create_dispatch(server: Flask, engine: Engine, clock: Callable[[], datetime]) -> dash.Dash:
    """Mount the dispatch console on ``server`` at /dispatch/."""
    app = mount(server, DISPATCH, text("nav.dispatch"))
    app.layout = lambda: guarded(engine, clock, DISPATCH, lambda actor, lang: _layout(actor, lang, engine, clock))

    # Picking a grid or a task changes no list and no figure: the browser marks the pick (mark, below) and the
    # lists are not queried and sent again for it.
    @app.callback(Output("dispatch-queue", "children"), Output("dispatch-tasks", "children"),
                  Output("dispatch-leads", "children"), Output("dispatch-grids", "hideout"),
                  Output("dispatch-stamp", "data"),
                  Input("dispatch-tick", "n_intervals"), Input("dispatch-changed", "data"),
                  Input("dispatch-status", "value"), State("dispatch-stamp", "data"), State("dispatch-lang", "data"))
    def refresh(_tick: int | None, changed: int | None, status: str, known: str | None,
                lang: str) -> tuple[html.Ul | html.P, html.Ul | html.P, html.Ul | html.P, Patch, str]:
        actor, now = _acting(engine, clock), clock()
        with reading(engine) as conn:
            stamp = f"{version_stamp(conn)}|{changed}|{status}|{now.strftime('%Y%m%d%H%M')}"
            if stamp == known:
                raise PreventUpdate  # the idle refresh: nothing changed, nothing resent
            queue, _ = tasks.list_tasks(conn, actor, tasks.TaskFilter(due_before=now + DUE_SOON), now)
            statuses = OPEN if status == "open" else (status,)
            found, total = tasks.list_tasks(conn, actor, tasks.TaskFilter(statuses=statuses, limit=LIST_LIMIT), now)
            leads = lead_repository.list_leads(conn, actor, limit=50)
            figures = grid_figures(conn, now, None if actor.sees_everything else sorted(actor.grid_ids))
        lead_list = html.Ul([lead_item(lead, lang, actionable=True) for lead in leads]) if leads \
            else html.P(text("dispatch.none", lang), className="nh-empty")
        values = Patch()  # the figures only: a pick made while this ran keeps its mark on the map
        values["values"] = figures
        return (task_list(queue, lang, "queue"), task_list(found, lang, "list", total), lead_list, values, stamp)

    app.clientside_callback(
        dash.ClientsideFunction(namespace="nanhai_dispatch", function_name="mark"),
        Output("dispatch-grids", "hideout", allow_duplicate=True),
        Input("dispatch-grid", "data"), Input("dispatch-task", "data"), Input("dispatch-queue", "children"),
        Input("dispatch-tasks", "children"), State("dispatch-grids", "hideout"), prevent_initial_call=True)

    @app.callback(Output("dispatch-grid", "data"), Input("dispatch-grids", "clickData"), prevent_initial_call=True)
    def pick_grid(feature: dict[str, Any] | None) -> str:
        _acting(engine, clock)
        if not feature:
            raise PreventUpdate
        return feature["properties"]["code"]

    @app.callback(Output("dispatch-task", "data", allow_duplicate=True),
                  Input({"type": "task-pick", "id": ALL, "where": ALL}, "n_clicks"), prevent_initial_call=True)
    def pick_task(_clicks: list[int | None]) -> int:
        _acting(engine, clock)
        if not ctx.triggered_id or not ctx.triggered[0]["value"]:
            raise PreventUpdate  # a list was redrawn, nobody clicked
        return ctx.triggered_id["id"]

    @app.callback(Output("dispatch-grid-panel", "children"),
                  Input("dispatch-grid", "data"), Input("dispatch-changed", "data"), State("dispatch-lang", "data"),
                  prevent_initial_call=True)
    @refusals_shown(refusal)
    def show_grid(code: str | None, _changed: int | None, lang: str) -> list[Component]:
        actor = _acting(engine, clock)
        if not code:
            raise PreventUpdate
        with reading(engine) as conn:
            return grid_panel(conn, actor, code, lang, clock())

    @app.callback(Output("dispatch-task-panel", "children"),
                  Input("dispatch-task", "data"), Input("dispatch-changed", "data"), State("dispatch-lang", "data"),
                  prevent_initial_call=True)
    @refusals_shown(refusal)
    def show_task(task_id: int | None, _changed: int | None, lang: str) -> html.Div:
        actor = _acting(engine, clock)
        if not task_id:
            raise PreventUpdate
        with reading(engine) as conn:
            task = tasks.get_task(conn, actor, task_id, clock())
            workers = workers_in_scope(conn, actor) if actor.role != "admin" else []
        return task_detail(task, actor.role, workers, lang)

    @app.callback(Output("dispatch-message", "children"), Output("dispatch-changed", "data"),
                  Output("dispatch-task", "data"),
                  Input({"type": "task-act", "action": ALL, "task": ALL, "version": ALL}, "n_clicks"),
                  Input({"type": "lead-act", "action": ALL, "id": ALL}, "n_clicks"),
                  Input({"type": "create-task", "grid": ALL}, "n_clicks"),
                  State({"type": "form", "name": ALL}, "value"), State("dispatch-changed", "data"),
                  State("dispatch-task", "data"), State("dispatch-lang", "data"), prevent_initial_call=True)
    @refusals_shown(lambda exc: (refusal(exc), dash.no_update, dash.no_update))
    def on_action(_acts: list[int | None], _leads: list[int | None], _create: list[int | None], fields: list[Any],
                  changed: int | None, shown: int | None, lang: str) -> Done:
        actor = _acting(engine, clock)
        if not ctx.triggered_id or not ctx.triggered[0]["value"]:
            raise PreventUpdate  # buttons were drawn, nobody clicked
        names = [state["id"]["name"] for state in ctx.states_list[0]]
        values = {**dict(zip(names, fields, strict=True)), "lang": lang}
        try:
            with changing(engine) as conn:
                done, task_id = act(conn, actor, ctx.triggered_id, values, clock())
        except Conflict as exc:  # the task moved on meanwhile: say so and redraw it as it is now
            stale = exc.code == "stale_version"
            return (html.P(text("dispatch.stale", lang) if stale else str(exc), className="nh-error"),
                    (changed or 0) + 1, shown)
        return html.P(f"{text('dispatch.done', lang)}{done}", className="nh-ok"), (changed or 0) + 1, \
            task_id or shown

    return app
