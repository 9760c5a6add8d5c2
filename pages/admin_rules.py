"""The administrator's rules page (/admin/rules/): the colour rules and the task kinds' time limits and priorities,
edited as TOML, checked as they are typed, previewed, saved as versions, and rolled back.

Each of the two editors starts with the text in force (the newest saved version, else the shipped file). Every
change of the text is checked (:func:`matching.rule_versions.check`): each problem with its line, rule or kind,
field and reason, or "valid". **Preview** shows what saving the text would do: for colour rules, persons per
colour now and after, the change, code changes and new task requests, counted as the matcher counts them; for
task kinds, the fields that change and each kind's open tasks (which keep the limits they were given). **Save**
stays disabled until the text in the editor is valid and is the one previewed, and needs a note. Saved colour
rules take effect with a re-match, queued at once as a background job; task kinds take effect for the tasks
created from then on. The list of versions (who, when, note) rolls any of them back, as a new version.

Everything goes through :mod:`matching.rule_versions`, which checks that the actor is an administrator and
writes the audit log (``rules.save``, ``rules.rollback``); every callback also asks
:func:`web.session.page_actor` first, so a forged callback from anyone else reads and changes nothing (204).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import dash
from dash import ALL, Input, Output, State, ctx, dcc, html
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate
from flask import Flask
from sqlalchemy import Engine

from accounts.actor import Actor
from gis.db import changing, reading
from gis.errors import GridError
from jobs.queue import enqueue_rematch
from matching import rule_versions as versions
from matching.conditions import HELP
from matching.rule_versions import COLOUR_RULES, TASK_KINDS, ColourPreview, KindsPreview, Version
from pages.shell import RULES, guarded, kind_name, mount, name, nav_bar, page_language
from pages.strings import one_language, text
from web.context import client_tag
from web.errors import refusals_shown
from web.session import page_actor

BEIJING = ZoneInfo("Asia/Shanghai")
KEYS = {COLOUR_RULES: "colour", TASK_KINDS: "kinds"}  # the editors' id parts
EDITOR_ROWS = 26




def refusal(exc: GridError) -> html.P:
    """A refusal in the page's language. The rules' refusals name the text they are about by its
    "中文 / English" name inside the message (versions.WHAT_NAMES): that name goes first to one language, so
    that the message splits into its two sides."""
    lang, said = page_language(), str(exc)
    for both in versions.WHAT_NAMES.values():
        said = said.replace(both, one_language(both, lang) or both)
    return html.P(one_language(said, lang), className="nh-error")

def _when(moment: datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def _digest(body: str | None) -> str:
    return hashlib.sha256((body or "").encode("utf-8")).hexdigest()


def _acting(engine: Engine, clock: Callable[[], datetime]) -> Actor:
    actor = page_actor(engine, clock(), RULES.roles)
    if actor is None:
        raise PreventUpdate  # logged out, expired, or not an administrator: nothing is read or changed
    return actor


# -- what the page shows ---------------------------------------------------------------------------------------
def in_force_line(version: Version | None, lang: str) -> str:
    """Which text is in force: a version (who saved it, when), or the shipped file."""
    if version is None:
        return text("rules.in_force_file", lang)
    return text("rules.in_force_version", lang).format(id=version.id, by=version.saved_by, at=_when(version.saved_at))


def check_shown(problems: list[versions.Problem], lang: str) -> html.Div:
    """The check of a text: "valid", or every problem on its own line (line, rule or kind, field, reason)."""
    if not problems:
        return html.Div(html.P(text("rules.valid", lang), className="nh-ok nh-rules-valid"))
    return html.Div(className="nh-error nh-rules-problems", children=[
        html.P(text("rules.problems", lang).format(n=len(problems))),
        html.Ul([html.Li(one_language(str(p), lang), className="nh-rules-problem") for p in problems])])


def _table(columns: list[str | None], rows: list[list[Any]], table_id: str, lang: str,
           row_classes: list[str] | None = None) -> html.Table:
    """A table with the headings of ``columns`` (keys of ``rules.col.*``; None: no heading)."""
    return html.Table(className="nh-table nh-rules-table", id=table_id, children=[
        html.Thead(html.Tr([html.Th(text(f"rules.col.{c}", lang) if c else "") for c in columns])),
        html.Tbody([html.Tr([html.Td(v) for v in row], className=(row_classes or [""] * len(rows))[i])
                    for i, row in enumerate(rows)])])


def preview_shown(found: ColourPreview | KindsPreview, lang: str, key: str) -> html.Div:
    """A preview as a small table and a line of totals."""
    if isinstance(found, ColourPreview):
        rows = [[text(f"rules.colour.{r['colour']}", lang), r["now"], r["after"], r["change"]] for r in found.rows()]
        notes = [text("rules.colour_summary", lang).format(recoloured=found.recoloured,
                                                           code_changes=found.code_changes,
                                                           task_requests=found.task_requests)]
        if found.new_persons:
            notes.append(text("rules.new_persons", lang).format(n=found.new_persons))
        if found.removed:
            notes.append(text("rules.removed", lang).format(n=found.removed))
        return html.Div(className="nh-rules-preview", children=[
            _table(["colour", "now", "after", "change"], rows, f"rules-{key}-preview-table", lang,
                   [f"nh-rules-{r['colour']}" for r in found.rows()]),
            html.P(" · ".join(notes), id=f"rules-{key}-preview-summary", className="nh-rules-summary")])
    if not found.changes:
        return html.Div(html.P(text("rules.no_change", lang), id=f"rules-{key}-preview-summary"))
    rows = [[[kind_name(c.code, lang), " (", name(c.code), ")"], name(c.field), name(str(c.before)), name(str(c.after)),
             c.open_tasks] for c in found.changes]
    return html.Div(className="nh-rules-preview", children=[
        _table(["kind", "field", "now", "after", "open"], rows, f"rules-{key}-preview-table", lang),
        html.P(text("rules.kinds_summary", lang).format(n=len(found.changes), open=found.open_tasks),
               id=f"rules-{key}-preview-summary", className="nh-rules-summary")])


def _rollback_cell(target: int | str, in_force: bool, lang: str) -> Component:
    if in_force:
        return html.Span(text("rules.in_force", lang), className="nh-rules-in-force")
    return html.Button(text("rules.rollback", lang), id={"type": "rules-rollback", "id": target},
                       className="nh-button nh-secondary")


def versions_shown(found: list[Version], lang: str) -> html.Table:
    """The saved versions, newest first, each with its Roll back button (none for the ones in force); then the
    shipped files, which a rollback can bring back too."""
    rows, classes = [], []
    for v in found:
        note = (v.note or "") + (f" (← #{v.rolled_back_from})" if v.rolled_back_from else "")
        rows.append([f"#{v.id}", text(f"rules.{v.what}", lang), name(v.saved_by), _when(v.saved_at), name(note),
                     _rollback_cell(v.id, v.in_force, lang)])
        classes.append("nh-row-ok" if v.in_force else "")
    for what in KEYS:
        stored = any(v.what == what for v in found)
        rows.append([text("rules.file", lang), text(f"rules.{what}", lang), "—", "—", text("rules.file_note", lang),
                     _rollback_cell(what, not stored, lang)])
        classes.append("" if stored else "nh-row-ok")
    return _table(["id", "what", "by", "at", "note", None], rows, "rules-versions-table", lang, classes)


def conditions_help(lang: str) -> html.Details:
    """How to write a rule's conditions (:data:`matching.conditions.HELP`), folded until asked for."""
    rows = [[html.Code(key), html.Code(example), zh if lang == "zh" else en] for key, example, zh, en in HELP]
    return html.Details(className="nh-rules-help", id="rules-colour-help", children=[
        html.Summary(text("rules.help", lang)),
        html.P(text("rules.help_intro", lang)),
        _table(["condition", "example", "meaning"], rows, "rules-colour-help-table", lang)])


def _editor(what: str, body: str, version: Version | None, lang: str) -> html.Section:
    key = KEYS[what]
    return html.Section(className="nh-rules-section", id=f"rules-{key}-section", children=[
        html.H2(text(f"rules.{what}", lang)),
        html.P(in_force_line(version, lang), id=f"rules-{key}-in-force", className="nh-rules-in-force-line"),
        *([conditions_help(lang)] if what == COLOUR_RULES else []),
        dcc.Textarea(id=f"rules-{key}-text", value=body, rows=EDITOR_ROWS, spellCheck=False,
                     className="nh-rules-editor"),
        html.Div(id=f"rules-{key}-check", className="nh-rules-check"),
        dcc.Store(id=f"rules-{key}-previewed"),  # the digest of the text last previewed
        html.Div(className="nh-form", children=[
            html.Button(text("rules.preview", lang), id=f"rules-{key}-preview", className="nh-button"),
            html.Button(text("rules.default", lang), id=f"rules-{key}-default", className="nh-button nh-secondary"),
            html.Label([text("rules.note", lang),
                        dcc.Input(id=f"rules-{key}-note", type="text", maxLength=versions.MAX_NOTE,
                                  className="nh-rules-note")]),
            html.Button(text("rules.save", lang), id=f"rules-{key}-save", className="nh-button", disabled=True,
                        title=text("rules.save_hint", lang)),
        ]),
        html.Div(id=f"rules-{key}-preview-out"),
        html.Div(id=f"rules-{key}-message", className="nh-message"),
    ])


def _page(engine: Engine, actor: Actor, lang: str) -> html.Div:
    with reading(engine) as conn:
        shown = {what: (versions.current_body(conn, what), versions.newest(conn, what)) for what in KEYS}
        found = versions.list_versions(conn, actor)
    return html.Div(className="nh-page", lang=lang, children=[
        nav_bar(actor, lang, RULES),
        dcc.Store(id="rules-lang", data=lang),
        dcc.Store(id="rules-changed", data=0),
        html.Main(className="nh-admin nh-rules", children=[
            html.H1(text("rules.title", lang)),
            html.P(text("rules.intro", lang), className="nh-rules-intro"),
            *[_editor(what, body, version, lang) for what, ((body, _), version) in shown.items()],
            html.Section(className="nh-rules-section", children=[
                html.H2(text("rules.versions", lang)),
                html.Div(id="rules-rollback-message", className="nh-message"),
                html.Div(versions_shown(found, lang), id="rules-versions"),
            ]),
        ]),
    ])


# -- the callbacks ---------------------------------------------------------------------------------------------
def _bind_editor(app: dash.Dash, engine: Engine, clock: Callable[[], datetime], what: str) -> None:
    key = KEYS[what]

    @app.callback(Output(f"rules-{key}-check", "children"), Output(f"rules-{key}-save", "disabled"),
                  Input(f"rules-{key}-text", "value"), Input(f"rules-{key}-previewed", "data"),
                  State("rules-lang", "data"))
    @refusals_shown(lambda exc: (refusal(exc), True))
    def check(body: str | None, previewed: str | None, lang: str) -> tuple[html.Div, bool]:
        _acting(engine, clock)
        problems = versions.check(what, body or "")
        return check_shown(problems, lang), bool(problems) or previewed != _digest(body)

    @app.callback(Output(f"rules-{key}-preview-out", "children"), Output(f"rules-{key}-previewed", "data"),
                  Input(f"rules-{key}-preview", "n_clicks"), State(f"rules-{key}-text", "value"),
                  State("rules-lang", "data"), prevent_initial_call=True)
    @refusals_shown(lambda exc: (refusal(exc), None))
    def preview(_clicks: int | None, body: str | None, lang: str) -> tuple[html.Div, str]:
        actor = _acting(engine, clock)
        with reading(engine) as conn:
            found = versions.preview(conn, actor, what, body or "", clock())
        return preview_shown(found, lang, key), _digest(body)

    @app.callback(Output(f"rules-{key}-message", "children"), Output("rules-changed", "data"),
                  Output(f"rules-{key}-previewed", "data", allow_duplicate=True),
                  Output(f"rules-{key}-note", "value"), Output(f"rules-{key}-in-force", "children"),
                  Input(f"rules-{key}-save", "n_clicks"), State(f"rules-{key}-text", "value"),
                  State(f"rules-{key}-note", "value"), State(f"rules-{key}-previewed", "data"),
                  State("rules-changed", "data"), State("rules-lang", "data"), prevent_initial_call=True)
    @refusals_shown(lambda exc: (refusal(exc), dash.no_update, dash.no_update, dash.no_update, dash.no_update))
    def save(_clicks: int | None, body: str | None, note: str | None, previewed: str | None, changed: int | None,
             lang: str) -> tuple[list[Component], int, None, str, str]:
        actor = _acting(engine, clock)
        if not _clicks or previewed != _digest(body):
            raise PreventUpdate  # not previewed as it is: the button was disabled
        with changing(engine) as conn:
            saved = versions.save_version(conn, actor, what, body or "", note, client_tag())
        said: list[Component] = [html.P(text("rules.saved", lang).format(id=saved.id), className="nh-ok",
                                        id=f"rules-{key}-saved")]
        if what == COLOUR_RULES:
            job = enqueue_rematch(engine, requested_by=actor.username)
            said.append(html.P(text("rules.rematch_queued", lang).format(job=job), className="nh-ok"))
        else:
            said.append(html.P(text("rules.kinds_apply", lang), className="nh-ok"))
        return said, (changed or 0) + 1, None, "", in_force_line(saved, lang)

    @app.callback(Output(f"rules-{key}-text", "value", allow_duplicate=True),
                  Input(f"rules-{key}-default", "n_clicks"), prevent_initial_call=True)
    def load_default(_clicks: int | None) -> str:
        _acting(engine, clock)
        return versions.default_body(what)


def create_rules(server: Flask, engine: Engine, clock: Callable[[], datetime]) -> dash.Dash:
    """Mount the page on ``server`` at /admin/rules/.

    The server's task workflow then follows the task kinds in force in ``engine``'s database
    (:func:`matching.rule_versions.follow_versions`): a version saved here applies to the tasks created after it,
    in every process that serves this database.
    """
    versions.follow_versions(engine)
    app = mount(server, RULES, "nav.rules")
    app.layout = lambda: guarded(engine, clock, RULES, lambda actor, lang: _page(engine, actor, lang))
    for what in KEYS:
        _bind_editor(app, engine, clock, what)

    @app.callback(Output("rules-versions", "children"), Input("rules-changed", "data"), State("rules-lang", "data"),
                  prevent_initial_call=True)
    @refusals_shown(refusal)
    def list_versions(_changed: int | None, lang: str) -> html.Table:
        actor = _acting(engine, clock)
        with reading(engine) as conn:
            return versions_shown(versions.list_versions(conn, actor), lang)

    @app.callback(Output("rules-rollback-message", "children"), Output("rules-changed", "data", allow_duplicate=True),
                  Output("rules-colour-text", "value", allow_duplicate=True),
                  Output("rules-kinds-text", "value", allow_duplicate=True),
                  Output("rules-colour-in-force", "children", allow_duplicate=True),
                  Output("rules-kinds-in-force", "children", allow_duplicate=True),
                  Input({"type": "rules-rollback", "id": ALL}, "n_clicks"), State("rules-changed", "data"),
                  State("rules-lang", "data"), prevent_initial_call=True)
    @refusals_shown(lambda exc: (refusal(exc), *[dash.no_update] * 5))
    def roll_back(_clicks: list[int | None], changed: int | None, lang: str) -> tuple[Any, ...]:
        actor = _acting(engine, clock)
        if not ctx.triggered_id or not ctx.triggered[0]["value"]:
            raise PreventUpdate  # the list was redrawn, nobody clicked
        target = ctx.triggered_id["id"]
        with changing(engine) as conn:
            if isinstance(target, str):  # a shipped file
                saved = versions.rollback_to_file(conn, actor, target, client=client_tag())
                said_text = text("rules.rolled_back_file", lang).format(new=saved.id)
            else:
                saved = versions.rollback(conn, actor, int(target), client=client_tag())
                said_text = text("rules.rolled_back", lang).format(id=target, new=saved.id)
        said: list[Component] = [html.P(said_text, className="nh-ok", id="rules-rolled-back")]
        if saved.what == COLOUR_RULES:
            job = enqueue_rematch(engine, requested_by=actor.username)
            said.append(html.P(text("rules.rematch_after_rollback", lang).format(job=job), className="nh-ok"))
        colour = saved.what == COLOUR_RULES
        line = in_force_line(saved, lang)
        return (said, (changed or 0) + 1, saved.body if colour else dash.no_update,
                dash.no_update if colour else saved.body, line if colour else dash.no_update,
                dash.no_update if colour else line)

    return app
