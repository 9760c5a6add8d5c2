"""Boundaries from the browser (/admin/boundaries/, administrators): upload a boundary file, read its check as a
table and on the map, then the preview of the change — grids added, removed and reshaped, the persons and open
tasks that would move, the staff who would lose a grid — and apply it in one transaction, or cancel.

The file goes to the plain upload endpoint (:mod:`web.uploads`), never through a callback; callbacks name it
by its upload id. The preview's stamp travels in the page's store, and applying refuses when the stored grids
changed since (:func:`grids.changes.apply_change`). Every callback asks who is acting first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import dash
import dash_leaflet as dl
import geopandas as gpd
import numpy as np
import shapely
from dash import Input, Output, State, dcc, html
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate
from flask import Flask
from sqlalchemy import Engine

from accounts.actor import Actor
from gis.db import changing, reading
from gis.errors import GridError, ImportRejected
from gis.geojson import feature_collection
from grids import repository
from grids.changes import AppliedChange, BoundaryPreview, applied_changes, apply_change, preview_change, summary
from grids.importing import GridFile, read_grid_file
from layers.basemap import basemap_layers
from layers.wall import OUTLINE_URLS, map_view
from pages.admin_parts import bind_upload, rows_table, upload_box
from pages.shell import BOUNDARIES, data, guarded, kind_name, label, mount, name, nav_bar, refusal, role_name
from pages.strings import one_language, text
from web.context import client_tag
from web.errors import refusals_shown
from web.session import page_actor
from web.uploads import uploaded_file

PREFIX = "boundaries"
BEIJING = ZoneInfo("Asia/Shanghai")
ACCEPT = ".gpkg,.geojson,.json,.zip,.shp"
CRS_CHOICES = ("", "4490", "4547", "4326", "gcj02", "bd09")
MAP_CENTRE = [23.0, 113.06]
MAP_DECIMALS = 6  # 0.1 m: the map shows where a problem is, not the file's every centimetre
LABEL = re.compile(r"#(\d+)")
POINT = re.compile(r"^\((-?[0-9.]+), (-?[0-9.]+)\)$")
Shown = tuple[Any, ...]



def _acting(engine: Engine, clock: Callable[[], datetime]) -> Actor:
    actor = page_actor(engine, clock(), BOUNDARIES.roles)
    if actor is None:
        raise PreventUpdate  # logged out, expired, or not an administrator: nothing is read or changed
    return actor


def _history(engine: Engine, lang: str) -> html.Div:
    with reading(engine) as conn:
        rows = applied_changes(conn)
    shown = [{**row, "at": row["at"].astimezone(BEIJING).strftime("%Y-%m-%d %H:%M"), "username": name(row["username"]),
              "subject": name(row["subject"]), "reason": one_language(row["reason"], lang)} for row in rows]
    return html.Div([html.H2(text("boundaries.history", lang)), rows_table(
        [("at", text("boundaries.at", lang)), ("username", text("boundaries.by", lang)),
         ("subject", text("boundaries.file", lang)), ("reason", text("boundaries.result", lang))],
        shown, "boundaries-history-table", lang=lang)])


def _map_strings(lang: str) -> dict[str, str]:
    """The words of the map's tooltips (assets/admin_boundaries.js) in ``lang``."""
    return {f"change.{c}": text(f"boundaries.change.{c}", lang)
            for c in ("added", "removed", "reshaped", "renamed", "unchanged")} | \
        {f"status.{s}": text(f"boundaries.status.{s}", lang) for s in ("error", "warning")}


def _layout(actor: Actor, lang: str, engine: Engine) -> html.Div:
    crs_options = [{"label": text("boundaries.crs_file", lang) if not c else c, "value": c} for c in CRS_CHOICES]
    return html.Div(className="nh-page", lang=lang, children=[
        nav_bar(actor, lang, BOUNDARIES),
        dcc.Store(id="boundaries-lang", data=lang),
        dcc.Store(id="boundaries-preview"),
        html.Div(id="boundaries-strings", hidden=True, **data(strings=json.dumps(_map_strings(lang)))),
        html.Div(className="nh-admin nh-boundaries", children=[
            html.H1(text("boundaries.title", lang)),
            html.P(text("boundaries.intro", lang)),
            html.Div(className="nh-form", children=[
                html.Label([text("boundaries.crs", lang), dcc.Dropdown(
                    id="boundaries-crs", options=crs_options, value="", clearable=False,
                    className="nh-boundaries-crs")]),
                html.Label([text("boundaries.layer", lang), dcc.Input(id="boundaries-layer", className="nh-input",
                                                                      debounce=True)]),
            ]),
            upload_box(PREFIX, "boundary", lang, ACCEPT),
            html.Div(id="boundaries-message", className="nh-message", role="status"),
            html.Section(id="boundaries-check"),
            html.Div(id="boundaries-map-holder"),
            html.Section(id="boundaries-preview-panel"),
            html.Div(id="boundaries-actions", className="nh-buttons", style={"display": "none"}, children=[
                html.Button(text("boundaries.apply", lang), id="boundaries-apply", className="nh-button"),
                html.Button(text("boundaries.cancel", lang), id="boundaries-cancel",
                            className="nh-button nh-secondary")]),
            html.Section(id="boundaries-history", children=_history(engine, lang)),
        ]),
    ])


def check_section(preview: BoundaryPreview, lang: str) -> html.Div:
    """The check's findings as a table, errors first and highlighted."""
    counts = preview.counts()
    line = text("boundaries.check_line", lang).format(
        name=preview.file_name, crs=preview.crs, features=preview.features,
        communities=", ".join(preview.communities) or "—", errors=counts["errors"], warnings=counts["warnings"])
    rows = [{"severity": label("boundaries.severity", p.severity, lang),
             "kind": label("boundaries.problem", p.kind, lang),
             "feature": name(p.feature), "reason": one_language(p.reason, lang),
             "area": None if p.area_m2 is None else f"{p.area_m2:,.1f}",
             "_class": "nh-row-error" if p.severity == "error" else "nh-row-warning"} for p in preview.problems]
    columns = [("severity", text("boundaries.severity", lang)), ("kind", text("boundaries.kind", lang)),
               ("feature", text("boundaries.feature", lang)), ("reason", text("boundaries.reason", lang)),
               ("area", text("boundaries.area", lang))]
    return html.Div([
        html.H2(text("boundaries.check", lang)),
        html.P(line, id="boundaries-check-line", className="nh-error" if preview.blocked else None),
        rows_table(columns, rows, "boundaries-problems", lang=lang) if rows
        else html.P(text("boundaries.check_ok", lang), className="nh-ok", id="boundaries-check-ok"),
    ])


def map_features(grid_file: GridFile, preview: BoundaryPreview, removed: gpd.GeoDataFrame) -> dict:
    """GeoJSON of the file's grids (each with its status: error, warning or ok, and its change) and of the
    grids the change removes."""
    frame = grid_file.frame
    status = ["ok"] * len(frame)
    for problem in preview.problems:
        for number in LABEL.findall(problem.feature):
            row = int(number) - 1
            if 0 <= row < len(frame) and status[row] != "error":
                status[row] = "error" if problem.severity == "error" else "warning"
    changes = {g.code: g.change for g in preview.grids}
    drawn = frame.assign(status=status, change=[changes.get(c, "unchanged") for c in frame["code"]])
    usable = np.array([g is not None and not shapely.is_empty(g) for g in drawn.geometry.values], dtype=bool)
    shapes = feature_collection(drawn[usable], ["code", "name", "status", "change"], precision=MAP_DECIMALS)
    if len(removed):  # drawn first, under the grids that take their place
        gone = removed[["code", "name", "geometry"]].assign(status="ok", change="removed")
        shapes["features"] = feature_collection(gone, ["code", "name", "status", "change"],
                                                precision=MAP_DECIMALS)["features"] + shapes["features"]
    return shapes


def problem_points(preview: BoundaryPreview, lang: str = "zh") -> list[dl.CircleMarker]:
    """A marker at each finding that has a place but no feature (a gap, an uncovered edge)."""
    markers = []
    for problem in preview.problems:
        where = POINT.match(problem.feature)
        if where:
            colour = "#c92a2a" if problem.severity == "error" else "#e67700"
            markers.append(dl.CircleMarker(center=[float(where.group(2)), float(where.group(1))], radius=8,
                                           color=colour, fillColor=colour, fillOpacity=0.6,
                                           className="nh-boundaries-problem",
                                           children=dl.Tooltip(f"{label('boundaries.problem', problem.kind, lang)}: "
                                                               f"{one_language(problem.reason, lang)}")))
    return markers


def boundary_map(grid_file: GridFile, preview: BoundaryPreview, removed: gpd.GeoDataFrame, lang: str) -> html.Div:
    shapes = map_features(grid_file, preview, removed)
    geoms = [g for g in grid_file.frame.geometry.values if g is not None and not shapely.is_empty(g)]
    bounds = None
    if geoms:
        minx, miny, maxx, maxy = shapely.total_bounds(np.array(geoms, dtype=object))
        bounds = [[float(miny), float(minx)], [float(maxy), float(maxx)]]
    return html.Div([
        html.P(text("boundaries.map_legend", lang), className="nh-boundaries-legend"),
        dl.Map(id="boundaries-map", className="nh-boundaries-map", zoomSnap=0.25, **map_view(bounds, MAP_CENTRE),
               children=[*basemap_layers(),
                         dl.GeoJSON(url=OUTLINE_URLS["communities"], format="geojson", interactive=False,
                                    style={"color": "#9fb3c8", "weight": 1, "fill": False}),
                         dl.GeoJSON(id="boundaries-shapes", data=shapes, zoomToBounds=False,
                                    style={"variable": "nanhai.boundaries.style"},
                                    onEachFeature={"variable": "nanhai.boundaries.tooltip"}),
                         *problem_points(preview, lang)]),
    ])


def _area(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def preview_section(preview: BoundaryPreview, lang: str) -> html.Div:
    """The preview: the counts, then the grids, the persons' moves, the open tasks and the staff concerned."""
    title = html.H2(text("boundaries.preview", lang))
    if preview.blocked:
        return html.Div([title, html.P(text("boundaries.blocked", lang), className="nh-error",
                                       id="boundaries-blocked")])
    counts = preview.counts()
    order = ("added", "removed", "reshaped", "renamed", "unchanged", "persons_moving", "persons_unplaced",
             "tasks_moving", "tasks_back", "assignments_lost", "checkpoints_moving", "leads_moving")
    values = {**counts, "tasks_back": counts["tasks_back_to_dispatch"]}
    summary_rows = [{"what": text(f"boundaries.{key}", lang), "count": values[key], "_class": f"nh-count-{key}"}
                    for key in order]
    parts: list[Component] = [title, rows_table([("what", text("boundaries.what", lang)),
                                                 ("count", text("boundaries.count", lang))],
                                                summary_rows, "boundaries-counts", lang=lang)]
    if not preview.changes_anything:
        parts.append(html.P(text("boundaries.nothing", lang), className="nh-ok", id="boundaries-nothing"))
        return html.Div(parts)
    parts += [html.H3(text("boundaries.grids", lang)), rows_table(
        [("code", text("boundaries.code", lang)), ("name", text("boundaries.name", lang)),
         ("change", text("boundaries.change", lang)), ("before", text("boundaries.before", lang)),
         ("after", text("boundaries.after", lang)), ("moved", text("boundaries.moved_m2", lang))],
        [{"code": name(g.code), "name": name(g.name), "change": text(f"boundaries.change.{g.change}", lang),
          "before": _area(g.area_before_m2), "after": _area(g.area_after_m2), "moved": _area(g.moved_m2),
          "_class": f"nh-change-{g.change}"} for g in preview.grids], "boundaries-grids", lang=lang)]
    if preview.person_flows:
        parts += [html.H3(text("boundaries.persons", lang)), rows_table(
            [("from", text("boundaries.from", lang)), ("to", text("boundaries.to", lang)),
             ("count", text("boundaries.count", lang))],
            [{"from": name(a), "to": name(b) if b else text("boundaries.unplaced", lang), "count": n}
             for a, b, n in preview.person_flows], "boundaries-flows", lang=lang)]
    parts += [html.H3(text("boundaries.tasks", lang)), rows_table(
        [("id", text("boundaries.task", lang)), ("kind", text("boundaries.task_kind", lang)),
         ("status", text("boundaries.status", lang)), ("from", text("boundaries.from", lang)),
         ("to", text("boundaries.to", lang)), ("why", text("boundaries.why", lang)),
         ("assignee", text("boundaries.assignee", lang)), ("back", text("boundaries.back", lang))],
        [{"id": [f"#{t.task_id} ", name(t.title)], "kind": kind_name(t.kind, lang),
          "status": text(f"status.{t.status}", lang), "from": name(t.from_code), "to": name(t.to_code),
          "why": text(f"boundaries.why.{t.why}", lang), "assignee": name(t.assignee),
          "back": text("boundaries.yes", lang) if t.back_to_dispatch else ""} for t in preview.tasks],
        "boundaries-tasks", lang=lang)]
    if preview.workers:
        parts += [html.H3(text("boundaries.workers", lang)), rows_table(
            [("username", text("boundaries.username", lang)), ("name", text("boundaries.name", lang)),
             ("role", text("boundaries.role", lang)), ("grid", text("boundaries.code", lang)),
             ("left", text("boundaries.grids_left", lang)), ("open", text("boundaries.open_tasks", lang))],
            [{"username": name(w.username), "name": name(w.display_name), "role": role_name(w.role, lang),
              "grid": name(w.grid_code),
              "left": w.grids_left, "open": w.open_tasks, "_class": "nh-row-warning" if w.grids_left == 0 else None}
             for w in preview.workers], "boundaries-workers", lang=lang)]
    return html.Div(parts)


def _read(upload: dict[str, Any], crs: str | None, layer: str | None) -> GridFile:
    if upload.get("error"):
        raise ImportRejected(str(upload.get("message") or upload["error"]))
    path = uploaded_file(str(upload.get("id")), "boundary").path
    return read_grid_file(path, (layer or "").strip() or None, crs or None)


def show_preview(engine: Engine, upload: dict[str, Any], crs: str | None, layer: str | None, lang: str) -> Shown:
    """Everything the page shows for an uploaded file: message, check, map, preview, store, buttons."""
    grid_file = _read(upload, crs, layer)
    with reading(engine) as conn:
        preview = preview_change(conn, grid_file)
        grids = repository.load_grids(conn)
    removed = grids[grids["code"].isin(preview.codes("removed"))]
    ready = not preview.blocked and preview.changes_anything
    store = {"upload": upload["id"], "crs": crs or "", "layer": (layer or "").strip(), "stamp": preview.stamp,
             "name": preview.file_name}
    return ("", check_section(preview, lang), boundary_map(grid_file, preview, removed, lang),
            preview_section(preview, lang), store if ready else None,
            {"display": "flex"} if ready else {"display": "none"})


def apply_preview(engine: Engine, actor: Actor, store: dict[str, Any], now: datetime,
                  client: str | None) -> AppliedChange:
    """Apply the previewed file in one transaction (refused when the grids changed since the preview)."""
    grid_file = _read({"id": store["upload"]}, store.get("crs"), store.get("layer"))
    with changing(engine) as conn:
        return apply_change(conn, actor, grid_file, store["stamp"], now, client)


def create_boundaries(server: Flask, engine: Engine, clock: Callable[[], datetime]) -> dash.Dash:
    """Mount the boundaries page on ``server`` at /admin/boundaries/."""
    app = mount(server, BOUNDARIES, "nav.boundaries")
    app.layout = lambda: guarded(engine, clock, BOUNDARIES, lambda actor, lang: _layout(actor, lang, engine))
    bind_upload(app, PREFIX)
    hidden = {"display": "none"}

    def refused(exc: GridError) -> Shown:
        return refusal(exc), None, None, None, None, hidden

    @app.callback(Output("boundaries-message", "children"), Output("boundaries-check", "children"),
                  Output("boundaries-map-holder", "children"), Output("boundaries-preview-panel", "children"),
                  Output("boundaries-preview", "data"), Output("boundaries-actions", "style"),
                  Input(f"{PREFIX}-upload", "data"), Input("boundaries-crs", "value"),
                  Input("boundaries-layer", "value"), State("boundaries-lang", "data"), prevent_initial_call=True)
    @refusals_shown(refused)
    def uploaded(upload: dict[str, Any] | None, crs: str | None, layer: str | None, lang: str) -> Shown:
        _acting(engine, clock)
        if not upload:
            raise PreventUpdate  # the CRS or layer was chosen before any file
        return show_preview(engine, upload, crs, layer, lang)

    @app.callback(Output("boundaries-message", "children", allow_duplicate=True),
                  Output("boundaries-preview", "data", allow_duplicate=True),
                  Output("boundaries-actions", "style", allow_duplicate=True),
                  Output("boundaries-preview-panel", "children", allow_duplicate=True),
                  Output("boundaries-history", "children"),
                  Input("boundaries-apply", "n_clicks"), State("boundaries-preview", "data"),
                  State("boundaries-lang", "data"), prevent_initial_call=True)
    @refusals_shown(lambda exc: (refusal(exc), dash.no_update, dash.no_update, dash.no_update, dash.no_update))
    def apply(clicks: int | None, store: dict[str, Any] | None, lang: str) -> Shown:
        actor = _acting(engine, clock)
        if not clicks or not store:
            raise PreventUpdate
        done = apply_preview(engine, actor, store, clock(), client_tag())
        message = html.P(f"{text('boundaries.applied', lang)}{one_language(summary(done), lang)}", className="nh-ok",
                         id="boundaries-applied")
        return message, None, hidden, None, _history(engine, lang)

    @app.callback(Output("boundaries-message", "children", allow_duplicate=True),
                  Output("boundaries-check", "children", allow_duplicate=True),
                  Output("boundaries-map-holder", "children", allow_duplicate=True),
                  Output("boundaries-preview-panel", "children", allow_duplicate=True),
                  Output("boundaries-preview", "data", allow_duplicate=True),
                  Output("boundaries-actions", "style", allow_duplicate=True),
                  Input("boundaries-cancel", "n_clicks"), State("boundaries-lang", "data"), prevent_initial_call=True)
    def cancel(clicks: int | None, lang: str) -> Shown:
        _acting(engine, clock)
        if not clicks:
            raise PreventUpdate
        return (html.P(text("boundaries.cancelled", lang), className="nh-ok", id="boundaries-cancelled"),
                None, None, None, None, hidden)

    return app
