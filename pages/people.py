"""The people page (/people/): the hotline's look-up by ID number or phone, the person's card, and changing his
code — a commander's or administrator's override, a supervisor's appeal — and the appeals waiting for a decision.

Every callback asks :func:`web.session.page_actor` who is acting (supervisors, commanders, administrators) and
goes through :mod:`matching.lookup` and :mod:`matching.appeals`, which apply his data scope and write the audit
log. A look-up needs a reason, as unmasking does; the card shows masked data only. An override (or an approved
appeal) is committed, then a re-match is queued (:func:`jobs.queue.enqueue_rematch`) that makes it the code.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import dash
from dash import ALL, Input, Output, State, ctx, dcc, html
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate
from flask import Flask
from sqlalchemy import Engine

from accounts.actor import Actor
from gis.db import changing, reading
from gis.errors import InvalidRequest
from jobs.queue import enqueue_rematch
from matching.appeals import APPELLANTS, COLOURS, OVERRIDERS, decide_appeal, expiry, file_appeal, override_code
from matching.appeals import pending_appeals as waiting_appeals
from matching.lookup import card_of, look_up, require_found
from pages.shell import PEOPLE, data, date_picker, guarded, mount, name, nav_bar, refusal, use_mantine
from pages.strings import one_language, text
from pages.task_panels import kind_name, label
from tasks.overview import BEIJING
from web.context import client_tag, vault
from web.errors import refusals_shown
from web.session import page_actor

DATE_TIME = "%Y-%m-%d %H:%M"


def _when(iso: str | None) -> str:
    return datetime.fromisoformat(iso).astimezone(BEIJING).strftime(DATE_TIME) if iso else ""


def _chip(colour: str | None, lang: str) -> html.Span:
    return html.Span(text(f"wall.{colour}", lang) if colour else "—", className=f"nh-chip nh-chip-{colour}")


def _entry(entry: dict[str, Any], lang: str) -> html.Li:
    """One line of a person's code timeline."""
    kind = entry["kind"]
    said: list[Any]
    if kind == "code":
        said = [_chip(entry["previous_colour"], lang) if entry["previous_colour"] else "—", " → ",
                _chip(entry["colour"], lang), " ", name(one_language(entry["reason"], lang))]
    elif kind in ("override", "appeal"):
        said = [name(entry["by"]), " ", _chip(entry["colour"], lang),
                f" {text('people.until', lang)} {_when(entry['until'])[:10]}{text('people.colon', lang)}",
                name(one_language(entry["reason"], lang))]
        if kind == "appeal":
            said.insert(0, f"#{entry['id']} ")
    elif kind == "plan":  # home observation: what happened to his plan (dispatch.plan.* names it)
        said = [name(one_language(entry["detail"], lang)) if entry["detail"] else "",
                *([" · ", name(entry["by"])] if entry["by"] else []),
                *([f" · #{entry['task_id']}"] if entry["task_id"] else [])]
        return html.Li(className="nh-event nh-people-at-plan", children=[
            html.Span(_when(entry["at"]), className="nh-time"),
            html.Strong(label("dispatch.plan", entry["event"], lang) + " "), *said])
    else:
        said = [f"#{entry['id']} ", name(entry["by"]), f" {text('people.' + entry['status'], lang)}"
                f"{text('people.colon', lang)}", name(entry["note"] or "")]
    return html.Li(className=f"nh-event nh-people-at-{kind}", children=[
        html.Span(_when(entry["at"]), className="nh-time"),
        html.Strong(text(f"people.kind.{kind}", lang) + " "), *said])


def person_card(card: dict[str, Any], lang: str, pickable: bool) -> html.Article:
    """A person as the page shows him: masked identity, code and why, grid, timeline, tasks."""
    person, grid = card["person"], card["grid"]
    place: Any = [name(grid["code"]), " ", name(grid["name"]), " · ", name(grid["community"])] if grid else \
        [text("people.unplaced", lang), text("people.colon", lang), name(one_language(person["unplaced_reason"], lang))]
    facts: list[tuple[str, Any]] = [
        (text("people.reason_label", lang), name(one_language(person["reason"], lang))),
        (text("people.explanation", lang), name(one_language(person["explanation"], lang))),
        (text("people.rule", lang), name(person["rule_id"])),
        (text("people.sources", lang), name(person["sources"])), (text("people.set_at", lang), _when(person["set_at"])),
        (text("people.expires_at", lang), _when(person["expires_at"])), (text("people.grid", lang), place)]
    tasks = html.Table(className="nh-table nh-people-tasks", children=[html.Tbody([html.Tr([
        html.Td(f"#{t['id']}"), html.Td(kind_name(t["kind"], lang)), html.Td(name(t["title"])),
        html.Td(html.Span(label("status", t["status"], lang), className=f"nh-status nh-status-{t['status']}")),
        html.Td(_when(t["due_at"]))]) for t in card["tasks"]])]) if card["tasks"] \
        else html.P(text("people.none", lang), className="nh-empty")
    return html.Article(className="nh-people-card", **data(key=person["person_key"]), children=[
        html.H3([_chip(person["colour"], lang), " ", name(person["name_masked"]),
                 f" · {person['id_masked']} · {person['phone_masked'] or ''}"], className="nh-people-who"),
        html.Dl([part for term, value in facts for part in (html.Dt(term), html.Dd(value or "—"))],
                className="nh-facts"),
        *([html.Button(text("people.pick", lang), className="nh-button nh-secondary",
                       id={"type": "people-pick", "key": person["person_key"]})] if pickable else []),
        html.A(text("gate.passes.link", lang), href=f"/checkpoint/persons/{person['person_key']}",
               className="nh-button nh-secondary", id={"type": "people-passes", "key": person["person_key"]}),
        html.H4(text("people.timeline", lang)),
        html.Ol([_entry(e, lang) for e in card["timeline"]], className="nh-timeline nh-people-timeline"),
        html.H4(text("people.tasks", lang)), tasks,
    ])


def appeal_list(appeals: list[dict[str, Any]], lang: str, deciding: bool) -> html.Div:
    """The appeals waiting: who asks what for whom; a note box and the two buttons for those who decide."""
    if not appeals:
        return html.Div(html.P(text("people.none", lang), className="nh-empty"))
    items = []
    for a in appeals:
        controls: list[Component] = []
        if deciding:
            controls = [dcc.Input(id={"type": "people-note", "id": a["id"]}, type="text", className="nh-input",
                                  placeholder=text("people.note", lang)),
                        html.Div(className="nh-buttons", children=[
                            html.Button(text("people.approve", lang), className="nh-button nh-action-close",
                                        id={"type": "people-decide", "id": a["id"], "approve": 1}),
                            html.Button(text("people.reject", lang), className="nh-button nh-action-cancel",
                                        id={"type": "people-decide", "id": a["id"], "approve": 0})])]
        items.append(html.Li(className="nh-lead nh-people-appeal", id=f"people-appeal-{a['id']}", children=[
            html.Div([html.Strong(f"#{a['id']} "), name(a.get("name_masked")), f" {a.get('id_masked') or ''} ",
                      name(a.get("grid_code")), f" · {text('people.now', lang)} ",
                      _chip(a.get("current_colour"), lang), " · ", name(a["requested_by"]),
                      f" {text('people.requested', lang)} ",
                      _chip(a["colour"], lang), f" {text('people.until', lang)} {_when(a['expires_at'])[:10]}"]),
            html.Div(name(one_language(a["reason"], lang)), className="nh-event-said"), *controls]))
    return html.Div(html.Ul(items))


def _change_form(actor: Actor, lang: str) -> html.Section:
    overriding = actor.role in OVERRIDERS
    return html.Section(className="nh-people-change", children=[
        html.H2(text("people.override" if overriding else "people.appeal", lang)),
        html.P(id="people-selected", className="nh-note", children=text("people.pick_first", lang)),
        html.Div(className="nh-form", children=[
            html.Label([text("people.colour", lang), dcc.Dropdown(
                id="people-colour", options=[{"label": text(f"wall.{c}", lang), "value": c} for c in COLOURS],
                value="green", clearable=False, className="nh-people-colour")]),
            html.Label([text("people.change_reason", lang),
                        dcc.Input(id="people-change-reason", type="text", className="nh-input")]),
            html.Label([text("people.days", lang), dcc.Input(id="people-days", type="number", min=1, max=365, value=7,
                                                             className="nh-input")]),
            html.Label([text("people.until_date", lang),
                        date_picker("people-until", lang, clearable=True)]),
            html.Button(text("people.override_button" if overriding else "people.appeal_button", lang),
                        id="people-change", className="nh-button")]),
    ])


def _layout(actor: Actor, lang: str) -> html.Div:
    return html.Div(className="nh-page", lang=lang, children=[
        nav_bar(actor, lang, PEOPLE),
        dcc.Store(id="people-lang", data=lang), dcc.Store(id="people-key"), dcc.Store(id="people-changed", data=0),
        html.Main(className="nh-admin nh-people", children=[
            html.H1(text("people.title", lang)),
            html.Section(className="nh-form", children=[
                html.Label([text("people.query", lang), dcc.Input(id="people-query", type="text", autoComplete="off",
                                                                  className="nh-input", maxLength=40)]),
                html.Label([text("people.reason", lang), dcc.Input(id="people-reason", type="text",
                                                                   className="nh-input", maxLength=200)]),
                html.Button(text("people.search", lang), id="people-search", className="nh-button")]),
            html.Div(id="people-message", className="nh-message", role="status"),
            html.Div(id="people-result"),
            _change_form(actor, lang),
            html.Section(className="nh-people-pending", children=[
                html.H2(text("people.pending", lang)), html.Div(id="people-appeals")]),
        ]),
    ])


def _acting(engine: Engine, clock: Callable[[], datetime]) -> Actor:
    actor = page_actor(engine, clock(), PEOPLE.roles)
    if actor is None:
        raise PreventUpdate  # logged out, expired, or a role that may not look people up: nothing is read
    return actor


def _ok(message: str) -> html.P:
    return html.P(message, className="nh-ok")


def change_code(engine: Engine, actor: Actor, person_key: str | None, colour: str, reason: str | None,
                days: int | float | str | None, until: str | None, now: datetime, lang: str) -> str:
    """Override (a commander, an administrator: then queue the re-match) or appeal (a supervisor); what was done."""
    if not person_key:
        raise InvalidRequest(text("people.pick_first", lang), "person")
    try:
        whole_days = None if days in (None, "") else int(days)  # a number, or the text of one
    except ValueError:
        raise InvalidRequest(text("people.days_whole", lang), "days") from None
    ends = expiry(now, whole_days if not until else None, date.fromisoformat(until[:10]) if until else None)
    if actor.role in OVERRIDERS:
        with changing(engine) as conn:
            override_code(conn, actor, person_key, colour, reason or "", ends, client_tag())
        job = enqueue_rematch(engine, requested_by=actor.username)
        return text("people.overridden", lang).format(job=job)
    actor.require_role(*APPELLANTS)
    with changing(engine) as conn:
        appeal_id = file_appeal(conn, actor, person_key, colour, reason or "", ends, client_tag())
    return text("people.appealed", lang).format(id=appeal_id)


def create_people(server: Flask, engine: Engine, clock: Callable[[], datetime]) -> dash.Dash:
    """Mount the people page on ``server`` at /people/."""
    app = mount(server, PEOPLE, "nav.people")
    use_mantine(app)  # its date picker
    app.layout = lambda: guarded(engine, clock, PEOPLE, _layout)

    @app.callback(Output("people-result", "children"), Output("people-key", "data"),
                  Output("people-message", "children"),
                  Input("people-search", "n_clicks"), Input("people-query", "n_submit"),
                  State("people-query", "value"), State("people-reason", "value"), State("people-lang", "data"),
                  prevent_initial_call=True)
    @refusals_shown(lambda exc: ([], None, refusal(exc)))
    def search(_clicks: int | None, _submit: int | None, query: str | None, reason: str | None,
               lang: str) -> tuple[list[html.Article], str | None, html.P]:
        actor = _acting(engine, clock)
        with changing(engine) as conn:  # audited, found or not: committed before "not found" is said
            cards = look_up(conn, actor, query or "", reason or "", vault(), client_tag(), clock())
        require_found(cards)
        chosen = cards[0]["person"]["person_key"] if len(cards) == 1 else None
        return ([person_card(c, lang, pickable=len(cards) > 1) for c in cards], chosen,
                _ok(text("people.found", lang).format(n=len(cards))))

    @app.callback(Output("people-key", "data", allow_duplicate=True),
                  Input({"type": "people-pick", "key": ALL}, "n_clicks"), prevent_initial_call=True)
    def pick(_clicks: list[int | None]) -> str:
        _acting(engine, clock)
        if not ctx.triggered_id or not ctx.triggered[0]["value"]:
            raise PreventUpdate
        return str(ctx.triggered_id["key"])

    @app.callback(Output("people-selected", "children"), Input("people-key", "data"), State("people-lang", "data"))
    @refusals_shown(refusal)
    def selected(person_key: str | None, lang: str) -> str | list[Any]:
        actor = _acting(engine, clock)
        if not person_key:
            return text("people.pick_first", lang)
        with reading(engine) as conn:
            person = card_of(conn, actor, person_key, clock())["person"]
        return [f"{text('people.selected', lang)}{text('people.colon', lang)}", name(person["name_masked"]),
                f" · {person['id_masked']} · {text('wall.' + person['colour'], lang)}"]

    @app.callback(Output("people-message", "children", allow_duplicate=True),
                  Output("people-changed", "data"),
                  Input("people-change", "n_clicks"),
                  State("people-key", "data"), State("people-colour", "value"), State("people-change-reason", "value"),
                  State("people-days", "value"), State("people-until", "value"), State("people-changed", "data"),
                  State("people-lang", "data"), prevent_initial_call=True)
    @refusals_shown(lambda exc: (refusal(exc), dash.no_update))
    def change(_clicks: int | None, person_key: str | None, colour: str, reason: str | None,
               days: int | None, until: str | None, changed: int | None, lang: str) -> tuple[html.P, int]:
        actor = _acting(engine, clock)
        done = change_code(engine, actor, person_key, colour, reason, days, until, clock(), lang)
        return _ok(done), (changed or 0) + 1

    @app.callback(Output("people-result", "children", allow_duplicate=True),
                  Input("people-changed", "data"), State("people-key", "data"), State("people-lang", "data"),
                  prevent_initial_call=True)
    @refusals_shown(refusal)
    def redraw(_changed: int | None, person_key: str | None, lang: str) -> list[html.Article]:
        actor = _acting(engine, clock)
        if not person_key:
            raise PreventUpdate
        with reading(engine) as conn:  # the person the user already looked up (that look-up is audited)
            return [person_card(card_of(conn, actor, person_key, clock()), lang, pickable=False)]

    @app.callback(Output("people-appeals", "children"), Input("people-changed", "data"),
                  State("people-lang", "data"))
    @refusals_shown(refusal)
    def appeals(_changed: int | None, lang: str) -> html.Div:
        actor = _acting(engine, clock)
        with reading(engine) as conn:
            return appeal_list(waiting_appeals(conn, actor), lang, deciding=actor.role in OVERRIDERS)

    @app.callback(Output("people-message", "children", allow_duplicate=True),
                  Output("people-changed", "data", allow_duplicate=True),
                  Input({"type": "people-decide", "id": ALL, "approve": ALL}, "n_clicks"),
                  State({"type": "people-note", "id": ALL}, "value"), State("people-changed", "data"),
                  State("people-lang", "data"), prevent_initial_call=True)
    @refusals_shown(lambda exc: (refusal(exc), dash.no_update))
    def decide(_clicks: list[int | None], notes: list[str | None], changed: int | None,
               lang: str) -> tuple[html.P, int]:
        actor = _acting(engine, clock)
        if not ctx.triggered_id or not ctx.triggered[0]["value"]:
            raise PreventUpdate  # the list was drawn, nobody clicked
        appeal_id, approve = int(ctx.triggered_id["id"]), bool(ctx.triggered_id["approve"])
        by_id = {state["id"]["id"]: value for state, value in zip(ctx.states_list[0], notes, strict=True)}
        with changing(engine) as conn:
            decide_appeal(conn, actor, appeal_id, approve, by_id.get(appeal_id) or "", clock(), client_tag())
        message = text("people.decided", lang).format(
            id=appeal_id, what=text("people.approved" if approve else "people.rejected", lang))
        if approve:
            message += " · " + text("people.overridden", lang).format(job=enqueue_rematch(
                engine, requested_by=actor.username))
        return _ok(message), (changed or 0) + 1

    return app
