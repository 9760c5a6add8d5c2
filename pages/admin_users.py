"""The administrator's accounts page (/admin/users/): find, create, disable and enable, role and scope, duty and
grids, password resets, and the staff roster's import.

Everything here goes through :mod:`accounts.staff` and :mod:`accounts.roster`, which check that the actor is
an administrator and write the audit log; every callback also asks :func:`web.session.page_actor` first, so a
forged callback from anyone else reads and changes nothing (Dash answers 204). Names and phones are shown
masked. A one-time activation code is shown once: in the answer of the callback that issued it (a new
account, a reset password), or, for a roster, in the Excel sheet that the browser downloads once after the
import is applied; it is kept nowhere on the page.

The roster travels as every administration file does (:func:`pages.admin_parts.upload_box`): the browser streams
it to ``/admin/uploads`` and the page names it by its upload id. The preview is a dry run of every row
(create, update, unchanged or error, errors by row number and field); Apply stays disabled while any row has an
error, and applies all or nothing.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dash
from dash import ALL, Input, Output, State, ctx, dcc, html
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate
from flask import Flask, request
from sqlalchemy import Connection, Engine

from accounts import staff
from accounts.activation import Activation
from accounts.actor import WORKER, Actor
from accounts.roster import IssuedCode, Outcome, import_roster, preview_roster, read_roster, split_codes, write_codes
from gis.db import changing, reading
from gis.errors import GridError, InvalidRequest
from matching.identity import mask_name
from pages.admin_parts import bind_upload, pager, rows_table, upload_box
from pages.shell import USERS, guarded, marked, mount, nav_bar, page_language, refusal, role_name
from pages.shell import name as as_name
from pages.strings import one_language, text
from web.context import vault
from web.errors import refusals_shown
from web.session import page_actor
from web.uploads import uploaded_file

PAGE_SIZE = 50
BEIJING = ZoneInfo("Asia/Shanghai")
ROSTER = "users-roster"  # the upload box's prefix
ACTIONS = ("disable", "enable", "reset", "duty_on", "duty_off", "assign", "unassign", "scope")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"



# -- reading -------------------------------------------------------------------------------------------------------
def _acting(engine: Engine, clock: Callable[[], datetime]) -> Actor:
    actor = page_actor(engine, clock(), USERS.roles)
    if actor is None:
        raise PreventUpdate  # logged out, expired, or not an administrator: nothing is read or changed
    return actor


def _role_options(lang: str) -> list[dict[str, str]]:
    return [{"label": role_name(role, lang), "value": role} for role in staff.ROLES]


SCOPE_WORDS = {"网格": "grid", "村居": "community", "镇街": "town"}  # accounts.staff.placement_text's first word


def scope_shown(scope: str | None, lang: str) -> list[Any]:
    """Where an account answers (:func:`accounts.staff.placement_text`: 网格 …, 村居 …, 镇街 … or 全区) in
    ``lang``, its codes as data."""
    word, _, codes = (scope or "").partition(" ")
    if word in SCOPE_WORDS:
        return [text(f"users.scope.{SCOPE_WORDS[word]}", lang), " ", as_name(codes)]
    if (scope or "").startswith("全区"):
        return [text("users.scope.district", lang)]
    return [as_name(scope)]


def notes_shown(outcome: Outcome, lang: str) -> str:
    """A roster row's problems (field: message) or changes, in ``lang``."""
    if outcome.problems:
        return "；".join(f"{p.field if lang == 'en' else staff.FIELD_NAMES.get(p.field, p.field)}: "
                        f"{one_language(p.message, lang)}" for p in outcome.problems)
    return "；".join(one_language(change, lang) or "" for change in outcome.changes)


def _beijing(moment: datetime | str | None) -> str:
    if moment is None:
        return ""
    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def user_table(users: Sequence[dict[str, Any]], lang: str) -> html.Table:
    """The accounts found: masked names and phones, status, duty, scope, and a button to select each."""
    headings = ("users.username", "users.name", "users.role", "users.phone", "users.status", "users.duty",
                "users.scope", "users.open_tasks", "users.pick")
    head = html.Thead(html.Tr([html.Th(text(key, lang)) for key in headings]))
    rows = []
    for user in users:
        duty = text("users.on_duty" if user["on_duty"] else "users.off_duty", lang) if user["role"] == WORKER else ""
        rows.append(html.Tr(className="nh-user-row" + (" nh-row-warning" if not user["active"] else ""),
                            **{"data-username": user["username"]}, children=[
            html.Td(as_name(user["username"])), html.Td(as_name(mask_name(user["display_name"] or ""))),
            html.Td(role_name(user["role"], lang)), html.Td(user["phone_masked"] or ""),
            html.Td(text(f"users.status.{user['status']}", lang)), html.Td(duty),
            html.Td(scope_shown(user["scope"], lang)),
            html.Td(str(user["open_tasks"])),
            html.Td(html.Button(text("users.pick", lang), id={"type": "users-pick", "username": user["username"]},
                                className="nh-button nh-secondary nh-users-pick"))]))
    body = html.Tbody(rows or [html.Tr(html.Td(text("users.none_found", lang), colSpan=len(headings)))])
    return html.Table(className="nh-table nh-users-table", id="users-table", children=[head, body])


def _field(name: str, label: str, value: str | None = None, placeholder: str = "") -> html.Label:
    return html.Label([label, dcc.Input(id={"type": "users-field", "name": name}, value=value or "", type="text",
                                        placeholder=placeholder, className="nh-input", debounce=False)])


def _act(action: str, username: str, lang: str, secondary: bool = False, disabled: bool = False) -> html.Button:
    return html.Button(text(f"users.{action}", lang), id={"type": "users-act", "action": action, "username": username},
                       className="nh-button" + (" nh-secondary" if secondary else ""), disabled=disabled)


def user_detail(user: dict[str, Any], lang: str) -> html.Div:
    """The selected account's facts and what the administrator may do to it."""
    username = user["username"]
    facts: list[tuple[str, Any]] = [
             ("users.username", as_name(username)), ("users.name", as_name(mask_name(user["display_name"] or ""))),
             ("users.role", role_name(user["role"], lang)),
             ("users.phone", user["phone_masked"] or "-"),
             ("users.status", text(f"users.status.{user['status']}", lang)),
             ("users.scope", scope_shown(user["scope"], lang)), ("users.open_tasks", str(user["open_tasks"]))]
    if user["disabled_at"]:
        facts.append(("users.disabled_at", [f"{_beijing(user['disabled_at'])} · ", as_name(user["disabled_by"])]))
    if user["role"] == WORKER:
        facts.append(("users.duty", text("users.on_duty" if user["on_duty"] else "users.off_duty", lang)))
    children: list[Component] = [
        html.H3(as_name(username), id="users-detail-username"),
        html.Dl(className="nh-facts", children=[part for key, value in facts
                                                for part in (html.Dt(text(key, lang)), html.Dd(value))]),
        html.Div(className="nh-buttons", children=[
            _act("disable", username, lang) if user["active"] else _act("enable", username, lang),
            _act("reset", username, lang, secondary=True)]),
    ]
    if user["role"] == WORKER:
        children += [
            html.H4(text("users.duty", lang)),
            html.Div(className="nh-buttons", children=[
                _act("duty_on", username, lang, disabled=user["on_duty"]),
                _act("duty_off", username, lang, secondary=True, disabled=not user["on_duty"])]),
            html.H4(text("users.grids", lang)),
            html.Div(className="nh-form", children=[
                _field("more_grids", text("users.more_grids", lang), placeholder="440605011001001"),
                _act("assign", username, lang), _act("unassign", username, lang, secondary=True)]),
        ]
    town = user["town_code"] if user["role"] in staff.TOWN_ROLES and user["scope"].startswith("镇街") else None
    children += [
        html.H4(text("users.role_scope", lang)),
        html.Div(className="nh-form nh-users-scope", children=[
            html.Label([text("users.role", lang),
                        dcc.Dropdown(id={"type": "users-field", "name": "role"}, options=_role_options(lang),
                                     value=user["role"], clearable=False, className="nh-users-role")]),
            _field("grids", text("users.grid_codes", lang), "、".join(user["grid_codes"])),
            _field("community", text("users.community_code", lang),
                   user["community_code"] if user["role"] == "supervisor" else None),
            _field("town", text("users.town_code", lang), town),
            _act("scope", username, lang)]),
    ]
    return html.Div(className="nh-users-detail", children=children)


def code_shown(activation: Activation, lang: str) -> html.Div:
    """A one-time activation code, shown in this answer only."""
    return html.Div(className="nh-users-code", children=[
        html.Span([f"{text('users.code', lang)} · ", as_name(activation.username), "：" if lang == "zh" else ": "]),
        html.Code(activation.code, id="users-code", className="nh-code"),
        html.P(text("users.code_once", lang).format(until=_beijing(activation.expires_at))),
    ])


# -- acting --------------------------------------------------------------------------------------------------------
def act(conn: Connection, actor: Actor, action: str, username: str, values: dict[str, Any],
        now: datetime) -> tuple[dict[str, Any], Activation | None]:
    """Carry out one of the selected account's buttons; returns (what the domain answered, a new code or None)."""
    if action == "disable":
        return staff.disable_user(conn, actor, username, now), None
    if action == "enable":
        return staff.enable_user(conn, actor, username), None
    if action == "reset":
        return {"changes": ["reset"]}, staff.reset_password(conn, actor, username, vault(), now)
    if action in ("duty_on", "duty_off"):
        before = staff.get_user(conn, actor, username)
        after = staff.set_duty(conn, actor, username, action == "duty_on")
        return {**after, "changes": ["duty"] if before["on_duty"] != after["on_duty"] else []}, None
    if action in ("assign", "unassign"):
        codes = split_codes(values.get("more_grids") or "")
        if not codes:
            raise InvalidRequest("请填写网格编码 / enter the grid codes", "grid_codes")
        change = staff.assign_grids if action == "assign" else staff.unassign_grids
        return change(conn, actor, username, codes, now), None
    if action == "scope":
        return staff.change_role(conn, actor, username, values.get("role") or "", now,
                                 split_codes(values.get("grids") or ""), values.get("community") or None,
                                 values.get("town") or None), None
    raise InvalidRequest(f"未知操作 {action} / unknown action", "action")


def done_message(action: str, username: str, done: dict[str, Any], lang: str) -> list[Component]:
    """What a button did, in words: the change, the tasks it recalled."""
    said = text(f"users.done.{action}", lang).format(user=username)
    if not done.get("changes"):
        said += text("users.unchanged", lang)
    parts: list[Component] = [html.P(said, className="nh-ok")]
    recalled = done.get("recalled") or []
    if recalled:
        parts.append(html.P(text("users.recalled", lang).format(
            count=len(recalled), ids=", ".join(f"#{task_id}" for task_id in recalled)), id="users-recalled"))
    return parts


# -- the roster ------------------------------------------------------------------------------------------------------
def preview_table(outcomes: Sequence[Outcome], lang: str) -> html.Table:
    """Every row's outcome, errors marked ``nh-row-error``, new accounts ``nh-row-ok``."""
    columns = [("row", text("users.row", lang)), ("outcome", text("users.outcome", lang)),
               ("username", text("users.username", lang)), ("role", text("users.role", lang)),
               ("name", text("users.name", lang)), ("phone", text("users.phone", lang)),
               ("scope", text("users.scope", lang)), ("notes", text("users.notes", lang))]
    classes = {"error": "nh-row-error", "create": "nh-row-ok", "update": "nh-row-update", "unchanged": None}
    rows = [{"row": o.row, "outcome": text(f"users.outcome.{o.action}", lang), "username": as_name(o.username),
             "role": role_name(o.role, lang) or "-", "name": as_name(o.name_masked),
             "phone": o.phone_masked or "-", "scope": scope_shown(o.scope, lang), "notes": notes_shown(o, lang),
             "_class": classes[o.action]}
            for o in outcomes]
    return rows_table(columns, rows, "users-roster-table", lang=lang)


def counts_of(outcomes: Sequence[Outcome]) -> dict[str, int]:
    return {action: sum(o.action == action for o in outcomes) for action in ("create", "update", "unchanged",
                                                                            "error")}


def codes_sheet(codes: list[IssuedCode], base_url: str) -> bytes:
    """The activation codes as the Excel sheet :func:`accounts.roster.write_codes` writes, as bytes (the file
    lives only for the moment it is read back)."""
    with tempfile.TemporaryDirectory(prefix="nanhai-codes-") as folder:
        path = Path(folder) / "codes.xlsx"
        write_codes(path, codes, base_url)
        return path.read_bytes()


def rejected(exc: GridError) -> html.Div:
    """A refusal with every problem it lists (a roster's, row by row)."""
    problems = getattr(exc, "problems", None) or []
    return html.Div(className="nh-error", children=[
        html.P(one_language(str(exc), page_language())),
        *([html.Ul([html.Li([as_name(p.feature), f": {one_language(p.reason, page_language())}"]) for p in problems])]
          if problems else [])])


# -- the page --------------------------------------------------------------------------------------------------------
def _layout(actor: Actor, lang: str) -> html.Div:
    status_options = [{"label": text(f"users.status.{s}", lang), "value": s} for s in staff.STATUSES]
    return html.Div(className="nh-page", lang=lang, children=[
        nav_bar(actor, lang, USERS),
        dcc.Store(id="users-lang", data=lang), dcc.Store(id="users-changed", data=0),
        dcc.Store(id="users-selected"), dcc.Store(id="users-page", data=0), dcc.Store(id="users-roster-id"),
        dcc.Download(id="users-roster-download"),
        html.Main(className="nh-admin nh-users", children=[
            html.H1(text("users.title", lang)),
            html.Div(className="nh-users-columns", children=[
                html.Section(className="nh-users-find", children=[
                    html.H2(text("users.find", lang)),
                    html.Div(className="nh-form", children=[
                        html.Label([text("users.search", lang),
                                    dcc.Input(id="users-search", type="text", debounce=True, className="nh-input")]),
                        html.Label([text("users.role", lang),
                                    dcc.Dropdown(id="users-role", options=_role_options(lang),
                                                 placeholder=text("users.any", lang), className="nh-users-filter")]),
                        html.Label([text("users.status", lang),
                                    dcc.Dropdown(id="users-status", options=status_options,
                                                 placeholder=text("users.any", lang), className="nh-users-filter")]),
                        dcc.Checklist(id="users-generated", value=[],
                                      options=[{"label": text("users.generated", lang), "value": "yes"}]),
                    ]),
                    html.P(id="users-count", className="nh-more"),
                    html.Div(id="users-list"),
                    pager("users", lang),
                ]),
                html.Section(className="nh-users-side", children=[
                    html.H2(text("users.selected", lang)),
                    html.Div(id="users-message", className="nh-message", role="status"),
                    html.Div(id="users-detail", children=html.P(text("users.pick_one", lang), className="nh-empty")),
                ]),
            ]),
            html.Section(className="nh-users-create", children=[
                html.H2(text("users.create", lang)),
                html.Div(className="nh-form", children=[
                    html.Label([text("users.username", lang), dcc.Input(id="users-new-username", type="text",
                                                                        className="nh-input")]),
                    html.Label([text("users.name", lang), dcc.Input(id="users-new-name", type="text",
                                                                    className="nh-input")]),
                    html.Label([text("users.phone", lang), dcc.Input(id="users-new-phone", type="text",
                                                                     className="nh-input")]),
                    html.Label([text("users.role", lang),
                                dcc.Dropdown(id="users-new-role", options=_role_options(lang), value=WORKER,
                                             clearable=False, className="nh-users-role")]),
                    html.Label([text("users.grid_codes", lang), dcc.Input(id="users-new-grids", type="text",
                                                                          className="nh-input")]),
                    html.Label([text("users.community_code", lang), dcc.Input(id="users-new-community", type="text",
                                                                              className="nh-input")]),
                    html.Label([text("users.town_code", lang), dcc.Input(id="users-new-town", type="text",
                                                                         className="nh-input")]),
                    html.Button(text("users.create_button", lang), id="users-create", className="nh-button"),
                ]),
                html.Div(id="users-created", className="nh-message", role="status"),
            ]),
            html.Section(className="nh-users-roster", children=[
                html.H2(text("users.roster", lang)),
                html.P(marked(text("users.roster_help", lang)), className="nh-note"),
                upload_box(ROSTER, "roster", lang, ".csv,.xlsx"),
                html.Div(id="users-roster-preview"),
                html.Button(text("users.apply", lang), id="users-roster-apply", className="nh-button", disabled=True),
                html.Div(id="users-roster-result", className="nh-message", role="status"),
            ]),
        ]),
    ])


def create_users(server: Flask, engine: Engine, clock: Callable[[], datetime]) -> dash.Dash:
    """Mount the accounts page on ``server`` at /admin/users/."""
    app = mount(server, USERS, "nav.users")
    app.layout = lambda: guarded(engine, clock, USERS, _layout)
    bind_upload(app, ROSTER)

    @app.callback(Output("users-list", "children"), Output("users-count", "children"), Output("users-page", "data"),
                  Output("users-prev", "disabled"), Output("users-next", "disabled"),
                  Input("users-search", "value"), Input("users-role", "value"), Input("users-status", "value"),
                  Input("users-generated", "value"), Input("users-prev", "n_clicks"), Input("users-next", "n_clicks"),
                  Input("users-changed", "data"), State("users-page", "data"), State("users-lang", "data"))
    @refusals_shown(lambda exc: (refusal(exc), "", dash.no_update, True, True))
    def find(search: str | None, role: str | None, status: str | None, generated: list[str] | None,
             _prev: int | None, _next: int | None, _changed: int | None, page: int | None,
             lang: str) -> tuple[html.Table, str, int, bool, bool]:
        actor = _acting(engine, clock)
        trigger = ctx.triggered_id
        page = max(0, (page or 0) + (-1 if trigger == "users-prev" else 1 if trigger == "users-next" else 0)) \
            if trigger in ("users-prev", "users-next", "users-changed") else 0
        where = staff.UserFilter(search=search or None, role=role or None, status=status or None,
                                 include_synthetic=bool(generated) or bool(search), limit=PAGE_SIZE,
                                 offset=page * PAGE_SIZE)
        with reading(engine) as conn:
            found, total = staff.list_users(conn, actor, vault(), where)
        first = page * PAGE_SIZE + 1 if found else 0
        count = text("users.count", lang).format(total=total, first=first, last=page * PAGE_SIZE + len(found))
        return user_table(found, lang), count, page, page == 0, (page + 1) * PAGE_SIZE >= total

    @app.callback(Output("users-selected", "data"), Output("users-message", "children", allow_duplicate=True),
                  Input({"type": "users-pick", "username": ALL}, "n_clicks"), prevent_initial_call=True)
    def pick(_clicks: list[int | None]) -> tuple[str, str]:
        _acting(engine, clock)
        if not ctx.triggered_id or not ctx.triggered[0]["value"]:
            raise PreventUpdate  # the list was redrawn, nobody clicked
        username: str = ctx.triggered_id["username"]
        return username, ""  # what was said of the account selected before (a code shown once) goes

    @app.callback(Output("users-detail", "children"),
                  Input("users-selected", "data"), Input("users-changed", "data"), State("users-lang", "data"),
                  prevent_initial_call=True)
    @refusals_shown(refusal)
    def detail(username: str | None, _changed: int | None, lang: str) -> html.Div:
        actor = _acting(engine, clock)
        if not username:
            raise PreventUpdate
        with reading(engine) as conn:
            return user_detail(staff.get_user(conn, actor, username), lang)

    @app.callback(Output("users-message", "children"), Output("users-changed", "data", allow_duplicate=True),
                  Input({"type": "users-act", "action": ALL, "username": ALL}, "n_clicks"),
                  State({"type": "users-field", "name": ALL}, "value"), State("users-changed", "data"),
                  State("users-lang", "data"), prevent_initial_call=True)
    @refusals_shown(lambda exc: (refusal(exc), dash.no_update))
    def on_action(_clicks: list[int | None], fields: list[Any], changed: int | None,
                  lang: str) -> tuple[list[Component], int]:
        actor = _acting(engine, clock)
        if not ctx.triggered_id or not ctx.triggered[0]["value"]:
            raise PreventUpdate  # buttons were drawn, nobody clicked
        action, username = ctx.triggered_id["action"], ctx.triggered_id["username"]
        names = [state["id"]["name"] for state in ctx.states_list[0]]
        values = dict(zip(names, fields, strict=True))
        with changing(engine) as conn:
            done, activation = act(conn, actor, action, username, values, clock())
        shown = done_message(action, username, done, lang)
        if activation is not None:
            shown.append(code_shown(activation, lang))
        return shown, (changed or 0) + 1

    @app.callback(Output("users-created", "children"), Output("users-changed", "data", allow_duplicate=True),
                  Output("users-selected", "data", allow_duplicate=True),
                  Input("users-create", "n_clicks"),
                  State("users-new-username", "value"), State("users-new-name", "value"),
                  State("users-new-phone", "value"), State("users-new-role", "value"),
                  State("users-new-grids", "value"), State("users-new-community", "value"),
                  State("users-new-town", "value"), State("users-changed", "data"), State("users-lang", "data"),
                  prevent_initial_call=True)
    @refusals_shown(lambda exc: (refusal(exc), dash.no_update, dash.no_update))
    def create(clicks: int | None, username: str | None, name: str | None, phone: str | None, role: str | None,
               grids: str | None, community: str | None, town: str | None, changed: int | None,
               lang: str) -> tuple[list[Component], int, str]:
        actor = _acting(engine, clock)
        if not clicks:
            raise PreventUpdate
        with changing(engine) as conn:
            activation = staff.add_user(conn, actor, username or "", name or "", role or "", vault(), clock(),
                                        phone or None, split_codes(grids or ""), community or None, town or None)
            user = staff.get_user(conn, actor, activation.username)
        return ([html.P([f"{text('users.created', lang)} ", as_name(user["username"]),
                         f" · {role_name(user['role'], lang)} · ", *scope_shown(user["scope"], lang)],
                        className="nh-ok"), code_shown(activation, lang)], (changed or 0) + 1, user["username"])

    @app.callback(Output("users-roster-preview", "children"), Output("users-roster-apply", "disabled"),
                  Output("users-roster-id", "data"), Output("users-roster-result", "children"),
                  Input(f"{ROSTER}-upload", "data"), State("users-lang", "data"), prevent_initial_call=True)
    @refusals_shown(lambda exc: (rejected(exc), True, None, ""))
    def preview(upload: dict[str, Any] | None, lang: str) -> tuple[list[Component], bool, str | None, str]:
        actor = _acting(engine, clock)
        if not upload:
            raise PreventUpdate
        if upload.get("error"):
            return [html.P(upload.get("message") or upload["error"], className="nh-error")], True, None, ""
        sent = uploaded_file(upload.get("id") or "", "roster")
        rows = read_roster(sent.path)
        with reading(engine) as conn:
            outcomes = preview_roster(conn, actor, rows, vault())
        counts = counts_of(outcomes)
        summary = text("users.preview_counts", lang).format(file=sent.name, rows=len(outcomes), **counts)
        verdict = html.P(text("users.preview_errors" if counts["error"] else "users.preview_clean", lang),
                         className="nh-error" if counts["error"] else "nh-ok", id="users-roster-verdict")
        return ([html.P(summary, id="users-roster-counts"), verdict, preview_table(outcomes, lang)],
                bool(counts["error"]), None if counts["error"] else sent.id, "")

    @app.callback(Output("users-roster-result", "children", allow_duplicate=True),
                  Output("users-roster-download", "data"),
                  Output("users-roster-apply", "disabled", allow_duplicate=True),
                  Output("users-changed", "data", allow_duplicate=True),
                  Input("users-roster-apply", "n_clicks"), State("users-roster-id", "data"),
                  State("users-changed", "data"), State("users-lang", "data"), prevent_initial_call=True)
    @refusals_shown(lambda exc: (rejected(exc), dash.no_update, True, dash.no_update))
    def apply(clicks: int | None, upload_id: str | None, changed: int | None,
              lang: str) -> tuple[list[Component], dict[str, Any] | dash.NoUpdate, bool, int]:
        actor = _acting(engine, clock)
        if not clicks:
            raise PreventUpdate
        if not upload_id:
            raise InvalidRequest("请先上传并预览没有错误的花名册 / upload a roster and preview it without errors "
                                 "first", "upload")
        sent = uploaded_file(upload_id, "roster")
        rows = read_roster(sent.path)
        now = clock()
        with changing(engine) as conn:
            result = import_roster(conn, actor, rows, vault(), now, sent.name)
            sheet = codes_sheet(result.codes, request.host_url.rstrip("/")) if result.codes else None
        counts = result.counts()
        shown: list[Component] = [html.P(text("users.applied", lang).format(**counts), className="nh-ok",
                                         id="users-roster-applied")]
        download: dict[str, Any] | dash.NoUpdate = dash.no_update
        if sheet is not None:
            shown.append(html.P(text("users.codes_sheet", lang).format(count=len(result.codes))))
            stamp = now.astimezone(BEIJING).strftime("%Y%m%d-%H%M%S")
            download = dcc.send_bytes(sheet, f"activation-codes-{stamp}.xlsx", type=XLSX)
        return shown, download, True, (changed or 0) + 1

    return app

