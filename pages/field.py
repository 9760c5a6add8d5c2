"""The grid worker's field view (/field/): his tasks on a 390-px phone on a poor network.

The server renders the task cards (most urgent first) and answers one small
question, how far the phone is from the task's grid. Every action goes from
the browser straight to the JSON API (``assets/field.js``): each tap becomes
one outbox entry with its own Idempotency-Key, kept in localStorage and
retried with backoff until the server gives a definitive answer, so a retried
tap never duplicates or loses an update. Each card carries every action
button; the stylesheet shows the one (or two) that fit the card's
``data-status``, which lets the phone move a card ahead while its request
still waits to be sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import dash
from dash import Input, Output, State, dcc, html
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate
from flask import Flask
from sqlalchemy import Connection, Engine

from accounts.actor import Actor
from gis.db import reading
from grids.proximity import FAR_FROM_GRID_M, distance_to_grid_m, far_from_grid
from pages.shell import FIELD, data, guarded, kind_name, mount, name, nav_bar, page_language
from pages.strings import catalog, one_language, text
from tasks.kinds import load_kinds
from tasks.overview import BEIJING
from tasks.repository import TaskFilter, get_task, list_tasks
from web.errors import refusals_shown
from web.session import page_actor

ROLES = FIELD.roles
MY_STATUSES = ("dispatched", "accepted", "in_progress", "handled")  # what a worker still has in hand
REFRESH_MS = 60_000
# (action, the status it is shown in, primary): one big button per state, declining beside accepting
ACTIONS = (("accept", "dispatched", True), ("decline", "dispatched", False), ("start", "accepted", True),
           ("handle", "in_progress", True))


def my_tasks(conn: Connection, actor: Actor, now: datetime) -> list[dict]:
    """The worker's own tasks still in hand, the earliest due first (the repository's order for open work)."""
    tasks, _total = list_tasks(conn, actor, TaskFilter(statuses=MY_STATUSES, assignee=actor.username, limit=100),
                               now)
    return tasks


def _due_label(due_at: str | None, now: datetime, lang: str) -> str:
    if not due_at:
        return ""
    due = datetime.fromisoformat(due_at).astimezone(BEIJING)
    shown = due.strftime("%H:%M") if due.date() == now.astimezone(BEIJING).date() else due.strftime("%m-%d %H:%M")
    return f"{text('field.due', lang)} {shown}"


def task_card(task: dict, lang: str, now: datetime) -> html.Article:
    """One task as a card: kind, status, title, countdown, and the action buttons of every state."""
    kind = load_kinds().get(task["kind"])
    person = task.get("person") or {}
    facts: list[Any] = [f"{text('field.grid', lang)} ", name(task["grid_code"])]
    if person.get("name_masked"):
        facts += [f" · {text('field.person', lang)} ", name(person["name_masked"])]
    buttons: list[Component] = [
        html.Button(text(f"field.{action}", lang), type="button", id=f"field-{action}-{task['id']}",
                    className="nh-field-btn " + ("nh-field-primary" if primary else "nh-field-secondary"),
                    **data(action=action, when=when))
        for action, when, primary in ACTIONS]
    buttons.append(html.Div(text("field.waiting", lang), className="nh-field-note", **data(when="handled")))
    buttons.append(html.Div(text("field.declined", lang), className="nh-field-note", **data(when="declined")))
    return html.Article(
        id=f"field-task-{task['id']}", className="nh-field-card",
        **data(task=str(task["id"]), version=str(task["version"]), status=task["status"],
               temperature="1" if kind and kind.needs_temperature else "0", title=task["title"]),
        children=[
            html.Div(className="nh-field-card-top", children=[
                html.Span(kind_name(task["kind"], lang), className="nh-field-kind"),
                html.Span(text(f"field.status.{task['status']}", lang), className="nh-field-status"),
            ]),
            html.H2(name(task["title"]), className="nh-field-title"),
            html.Div(className="nh-field-due-row", children=[
                html.Span("", className="nh-field-countdown" + (" nh-field-overdue" if task["overdue"] else ""),
                          **data(due=task["due_at"] or "")),
                html.Span(_due_label(task["due_at"], now, lang), className="nh-field-due"),
            ]),
            html.Div(facts, className="nh-field-facts"),
            *([html.P(name(task["detail"]), className="nh-field-detail")] if task.get("detail") else []),
            html.Div(buttons, className="nh-field-actions"),
            html.Div("", className="nh-field-sync", role="status"),
        ])


def task_stamp(tasks: list[dict]) -> str:
    """What the cards are drawn from, in short: the ids and versions of the tasks, in order."""
    return ",".join(f"{task['id']}:{task['version']}" for task in tasks)


def task_cards(tasks: list[dict], lang: str, now: datetime) -> list[Component]:
    """The cards, or a friendly line when there is nothing to do."""
    if not tasks:
        return [html.P(text("field.empty", lang), className="nh-field-empty", id="field-empty")]
    return [task_card(task, lang, now) for task in tasks]


def distance_warning(conn: Connection, actor: Actor, task_id: int, lon: float, lat: float, now: datetime,
                     lang: str) -> tuple[str, str]:
    """(message, CSS class) for a report made at (``lon``, ``lat``) on task ``task_id`` in the actor's scope."""
    task = get_task(conn, actor, task_id, now)
    metres = distance_to_grid_m(conn, task["grid_code"], lon, lat)
    if far_from_grid(metres):
        return text("field.far", lang).format(m=f"{metres:,.0f}"), "nh-field-distance nh-field-far"
    if metres == 0:
        return text("field.inside", lang), "nh-field-distance nh-field-near"
    return text("field.near", lang).format(m=f"{metres:,.0f}"), "nh-field-distance nh-field-near"


def _client_strings(lang: str) -> dict[str, str]:
    wanted = [key for key in catalog("zh") if key.startswith("field.")]
    return {key[len("field."):]: text(key, lang) for key in wanted}


def _field(actor: Actor, lang: str, engine: Engine, clock: Callable[[], datetime]) -> html.Div:
    now = clock()
    with reading(engine) as conn:
        tasks = my_tasks(conn, actor, now)
    return html.Div(className="nh-page nh-field", lang=lang, children=[
        nav_bar(actor, lang, FIELD),
        html.Div(id="field-config", hidden=True,
                 **data(user=str(actor.user_id), lang=lang, far=str(int(FAR_FROM_GRID_M)),
                        strings=json.dumps(_client_strings(lang)))),
        dcc.Store(id="field-lang", data=lang),
        dcc.Store(id="field-synced"),
        dcc.Store(id="field-stamp", data=task_stamp(tasks)),
        dcc.Store(id="field-position"),
        dcc.Interval(id="field-tick", interval=REFRESH_MS),
        html.Header(className="nh-field-head", children=[
            html.H1(text("field.title", lang)),
            html.Span(text("field.outbox_sent", lang), id="field-outbox", className="nh-field-outbox",
                      role="status", **data(state="sent")),
        ]),
        html.Div(id="field-message", className="nh-field-message", role="alert"),
        html.Main(task_cards(tasks, lang, now), id="field-tasks", className="nh-field-list"),
        _sheet(lang),
    ])


def _sheet(lang: str) -> html.Section:
    """The bottom sheet for the two actions that need words: declining (a reason) and reporting."""
    return html.Section(id="field-sheet", className="nh-field-sheet", hidden=True, children=[
        html.H2(id="field-sheet-title", className="nh-field-sheet-title"),
        html.Div(id="field-sheet-task", className="nh-field-sheet-task"),
        html.Div(id="field-decline-form", className="nh-field-form", children=[
            html.Label(text("field.reason", lang), htmlFor="field-reason"),
            html.Textarea(id="field-reason", className="nh-field-input", maxLength=1000, rows=3),
        ]),
        html.Div(id="field-report-form", className="nh-field-form", children=[
            html.Label(text("field.result", lang), htmlFor="field-result"),
            html.Textarea(id="field-result", className="nh-field-input", maxLength=1000, rows=3),
            html.Label([text("field.temperature", lang),
                        html.Span(text("field.temperature_needed", lang), id="field-temperature-needed",
                                  className="nh-field-hint")], htmlFor="field-temperature"),
            dcc.Input(id="field-temperature", type="number", min=34, max=43, step=0.1, className="nh-field-input",
                      inputMode="decimal"),  # type: ignore[arg-type]  # stub lacks HTML's "decimal"; passed to <input>
            html.Label(text("field.note", lang), htmlFor="field-note"),
            html.Textarea(id="field-note", className="nh-field-input", maxLength=1000, rows=2),
            html.Label(text("field.photo", lang)),
            html.Div(id="field-photo-slot", className="nh-field-photo"),  # field.js puts the file input here
            html.Button(text("field.locate", lang), type="button", id="field-locate",
                        className="nh-field-btn nh-field-secondary"),
            html.Div(id="field-position-text", className="nh-field-position"),
            html.Div(id="field-distance", className="nh-field-distance", role="status"),
        ]),
        html.Div(id="field-sheet-error", className="nh-field-message", role="alert"),
        html.Div(className="nh-field-sheet-actions", children=[
            html.Button(text("field.cancel", lang), type="button", id="field-cancel",
                        className="nh-field-btn nh-field-secondary"),
            html.Button(text("field.submit", lang), type="button", id="field-submit",
                        className="nh-field-btn nh-field-primary"),
        ]),
    ])


def create_field(server: Flask, engine: Engine, clock: Callable[[], datetime]) -> dash.Dash:
    """Mount the field view on ``server`` at /field/."""
    app = mount(server, FIELD, "nav.field")
    app.layout = lambda: guarded(engine, clock, FIELD, lambda actor, lang: _field(actor, lang, engine, clock))

    @app.callback(Output("field-tasks", "children"), Output("field-stamp", "data"),
                  Input("field-synced", "data"), Input("field-tick", "n_intervals"), State("field-lang", "data"),
                  State("field-stamp", "data"), prevent_initial_call=True)
    def refresh(_synced: Any, _tick: int | None, lang: str, known: str | None) -> tuple[list[Component], str]:
        now = clock()
        actor = page_actor(engine, now, ROLES)
        if actor is None:
            raise PreventUpdate  # logged out, expired or not a worker: nothing is shown, the cards stay as they are
        with reading(engine) as conn:
            tasks = my_tasks(conn, actor, now)
        stamp = task_stamp(tasks)
        if stamp == known:
            raise PreventUpdate  # nothing changed: nothing is resent over the phone's network
        return task_cards(tasks, lang, now), stamp

    @app.callback(Output("field-distance", "children"), Output("field-distance", "className"),
                  Input("field-position", "data"), State("field-lang", "data"), prevent_initial_call=True)
    @refusals_shown(lambda exc: (one_language(str(exc), page_language()), "nh-field-distance nh-field-far"))
    def distance(position: dict[str, Any] | None, lang: str) -> tuple[str, str]:
        now = clock()
        actor = page_actor(engine, now, ROLES)
        if actor is None or not isinstance(position, dict):
            raise PreventUpdate
        try:
            task_id, lon, lat = int(position["task"]), float(position["lon"]), float(position["lat"])
        except (KeyError, TypeError, ValueError):
            raise PreventUpdate from None
        with reading(engine) as conn:
            return distance_warning(conn, actor, task_id, lon, lat, now, lang)

    return app
