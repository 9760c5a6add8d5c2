"""The review page (/review/): the record-linkage pairs waiting for a person's decision, and the links to split.

Two tabs. **To review**: the open pairs of the actor's scope, highest score first, each shown side by side —
the unidentified record and the candidate's record, masked, with where each came from — with the fields that
agree (green) and disagree (red) and the score; the reviewer says "same person" or "different people", with an
optional reason. **Linked**: the unidentified records linked to an identified person; a wrong link is split
again, with a reason.

Every callback asks :func:`web.session.page_actor` who is acting (supervisors, commanders, administrators) and
goes through :mod:`matching.review_repository`, which applies his data scope, checks his role again and writes
the audit log. A decision or a split is committed, then a re-match is queued (:func:`jobs.queue.enqueue_rematch`)
that applies it. Nothing on the page is personal data in clear.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import dash
from dash import ALL, Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate
from flask import Flask
from sqlalchemy import Engine

from accounts.actor import Actor
from gis.db import changing, reading
from jobs.queue import enqueue_rematch
from matching.review_repository import PAGE_SIZE, decide_pair, linked_records, open_pairs, split_record
from pages.admin_parts import pager
from pages.shell import REVIEW, data, guarded, mount, name, nav_bar, refusal
from pages.strings import text
from tasks.overview import BEIJING
from web.context import client_tag
from web.errors import refusals_shown
from web.session import page_actor

DATE_TIME = "%Y-%m-%d %H:%M"
AGREE_STYLE = {"color": "#2b8a3e", "fontWeight": "bold"}
DISAGREE_STYLE = {"color": "#c92a2a", "fontWeight": "bold"}
CHIP_GAP = {"marginRight": "4px"}
SIDE_BY_SIDE = {"display": "grid", "gridTemplateColumns": "repeat(auto-fit, minmax(18rem, 1fr))", "gap": "12px"}


def _when(iso: str | None) -> str:
    return datetime.fromisoformat(iso).astimezone(BEIJING).strftime(DATE_TIME) if iso else "—"


def _field(name: str, lang: str) -> str:
    key = f"review.field.{name}"
    try:
        return text(key, lang)
    except KeyError:  # a field the matcher compares that the page does not name yet: as stored
        return name


def _score(score: float | None) -> str:
    return "—" if score is None else f"{score:.1%}"


def field_chips(agreeing: list[str], disagreeing: list[str], lang: str) -> list[html.Span]:
    """The fields that agree (green) and disagree (red), each a chip."""
    colon = ": " if lang == "en" else "："
    return [*[html.Span(f"{text('review.agree', lang)}{colon}{_field(f, lang)}", className="nh-chip nh-chip-green "
                        "nh-review-agree", style=CHIP_GAP) for f in agreeing],
            *[html.Span(f"{text('review.disagree', lang)}{colon}{_field(f, lang)}", className="nh-chip nh-chip-red "
                        "nh-review-disagree", style=CHIP_GAP) for f in disagreeing]]


def _id_shown(record: dict[str, Any], lang: str) -> str:
    return record["id_masked"] or text("review.no_id", lang)


def _row(record: dict[str, Any], lang: str) -> list[Any]:
    """Which file and row a record came from: the file's name as data, the words around it in ``lang``."""
    before, _, after = text("review.row", lang).partition("{file}")
    return [before, name(record["file_name"]), after.format(row=record["row_number"])]


def record_side(record: dict[str, Any], title: str, agreeing: list[str], disagreeing: list[str],
                lang: str) -> html.Section:
    """One record of a pair, masked: what identifies him (the compared fields coloured), where it came from."""
    def style(field: str) -> dict[str, str] | None:
        return AGREE_STYLE if field in agreeing else DISAGREE_STYLE if field in disagreeing else None

    facts: list[tuple[str, Any, dict[str, str] | None]] = [
        (text("review.id", lang), _id_shown(record, lang), None),
        (text("review.name", lang), name(record["name_masked"] or "—"), style("name")),
        (text("review.phone", lang), record["phone_masked"] or "—", style("phone")),
        (text("review.source", lang), name(record["source"] or "—"), None),
        (text("review.file", lang), _row(record, lang), None),
        (text("review.category", lang), name(record["category"] or "—"), None),
        (text("review.reported", lang), _when(record["reported_at"]), None),
        (text("review.grid", lang), name(record["grid_code"]) if record.get("grid_code")
         else text("review.unplaced", lang), None)]
    return html.Section(className="nh-people-card nh-review-side", children=[
        html.H4(title),
        html.Dl([part for term, value, shown in facts for part in (html.Dt(term), html.Dd(value, style=shown))],
                className="nh-facts")])


def pair_card(pair: dict[str, Any], lang: str) -> html.Article:
    """A pair as the reviewer sees it: score, agreeing and disagreeing fields, both records side by side, the
    optional reason and the two decisions."""
    pair_id, agreeing, disagreeing = pair["id"], pair["agreeing"], pair["disagreeing"]
    return html.Article(className="nh-review-pair nh-lead", id=f"review-pair-{pair_id}",
                        **data(score=str(pair["score"])), children=[
        html.Div(className="nh-review-head", children=[
            html.Strong(f"#{pair_id} "), f"{text('review.score', lang)} ",
            html.Strong(_score(pair["score"]), className="nh-review-score"), " ",
            *field_chips(agreeing, disagreeing, lang)]),
        html.Div(className="nh-review-sides", style=SIDE_BY_SIDE, children=[
            record_side(pair["record"], text("review.record", lang), agreeing, disagreeing, lang),
            record_side(pair["other"], text("review.other", lang), agreeing, disagreeing, lang)]),
        dcc.Input(id={"type": "review-reason", "id": pair_id}, type="text", className="nh-input", maxLength=500,
                  placeholder=text("review.reason_optional", lang)),
        html.Div(className="nh-buttons", children=[
            html.Button(text("review.same", lang), className="nh-button nh-action-close nh-review-same",
                        id={"type": "review-decide", "id": pair_id, "same": 1}),
            html.Button(text("review.different", lang), className="nh-button nh-action-cancel nh-review-different",
                        id={"type": "review-decide", "id": pair_id, "same": 0})]),
    ])


def link_item(link: dict[str, Any], lang: str) -> html.Li:
    """A record linked to an identified person, both masked, with how it was linked; the split form."""
    record, person = link["record"], link["person"]
    file, row = record["feed_file_id"], record["row_number"]
    said: list[Any] = [
        f"{_id_shown(record, lang)} · ", name(record["name_masked"]), f" · {record['phone_masked'] or '—'} · ",
        name(record["source"]), " · ", *_row(record, lang),
        html.Strong(f" → {text('review.linked_to', lang)} "),
        name(person["name_masked"]), f" · {person['id_masked']} · {person['phone_masked'] or '—'} · ",
        name(person["grid_code"]) if person["grid_code"] else text("review.unplaced", lang)]
    band = text(f"review.band.{link['band']}", lang)
    how: list[Any] = [f"{band} · {text('review.score', lang)} {_score(link['score'])} ",
                      *field_chips(link["agreeing"], [], lang)]
    if link["split_waiting"]:
        action: list[Any] = [html.P(text("review.split_waiting", lang), className="nh-note nh-review-split-waiting")]
    else:
        action = [dcc.Input(id={"type": "review-split-reason", "file": file, "row": row}, type="text",
                            className="nh-input", maxLength=500, placeholder=text("review.split_reason", lang)),
                  html.Button(text("review.split", lang), className="nh-button nh-action-cancel",
                              id={"type": "review-split", "file": file, "row": row})]
    return html.Li(className="nh-lead nh-review-link", id=f"review-link-{file}-{row}",
                   children=[html.Div(said), html.Div(how, className="nh-note"), *action])


def _layout(actor: Actor, lang: str) -> html.Div:
    return html.Div(className="nh-page", lang=lang, children=[
        nav_bar(actor, lang, REVIEW),
        dcc.Store(id="review-lang", data=lang), dcc.Store(id="review-page", data=1),
        dcc.Store(id="review-linked-page", data=1), dcc.Store(id="review-changed", data=0),
        html.Main(className="nh-admin nh-review", children=[
            html.H1(text("review.title", lang)),
            html.Div(id="review-message", className="nh-message", role="status"),
            dcc.Tabs(id="review-tabs", value="queue", children=[
                dcc.Tab(label=text("review.tab.queue", lang), value="queue", id="review-tab-queue", children=[
                    html.P(id="review-count", className="nh-more"), html.Div(id="review-pairs"),
                    pager("review", lang)]),
                dcc.Tab(label=text("review.tab.linked", lang), value="linked", id="review-tab-linked", children=[
                    html.P(id="review-linked-count", className="nh-more"), html.Ul(id="review-linked"),
                    pager("review-linked", lang)]),
            ]),
        ]),
    ])


def _acting(engine: Engine, clock: Callable[[], datetime]) -> Actor:
    actor = page_actor(engine, clock(), REVIEW.roles)
    if actor is None:
        raise PreventUpdate  # logged out, expired, or a role that may not review: nothing is read
    return actor


def _ok(message: str) -> html.P:
    return html.P(message, className="nh-ok")


def _paged(step: int, page: int | None, total_of: Callable[[int], tuple[list[dict[str, Any]], int]]
           ) -> tuple[list[dict[str, Any]], int, int, int]:
    """The page ``step`` away from ``page`` (0: the same one, after a change), kept inside the list as it is now:
    (rows, total, page, pages)."""
    page = max(1, (page or 1) + step)
    rows, total = total_of(page)
    pages = max(1, -(-total // PAGE_SIZE))
    if page > pages:  # the last page emptied (decided, by somebody else too): show the one before
        page = pages
        rows, total = total_of(page)
    return rows, total, page, pages


def decide(engine: Engine, actor: Actor, pair_id: int, same: bool, reason: str | None, lang: str) -> str:
    """Store the decision on a pair, then queue the re-match that applies it; what was done."""
    with changing(engine) as conn:
        decide_pair(conn, actor, pair_id, "same" if same else "different", reason, client_tag())
    job = enqueue_rematch(engine, requested_by=actor.username)
    return text("review.decided", lang).format(id=pair_id, what=text("review.same" if same else "review.different",
                                                                       lang), job=job)


def split(engine: Engine, actor: Actor, feed_file_id: int, row_number: int, reason: str | None, lang: str) -> str:
    """Split a record off its person, then queue the re-match that applies it; what was done."""
    with changing(engine) as conn:
        done = split_record(conn, actor, feed_file_id, row_number, reason or "", client_tag())
    job = enqueue_rematch(engine, requested_by=actor.username)
    return text("review.split_done", lang).format(record=f"{feed_file_id}-{row_number}", name=done["name_masked"],
                                                  job=job)


def _clicked() -> dict[str, Any]:
    """The pattern id of the button clicked; PreventUpdate when a list was drawn and nobody clicked."""
    if not isinstance(ctx.triggered_id, dict) or not ctx.triggered[0]["value"]:
        raise PreventUpdate
    return dict(ctx.triggered_id)


def create_review(server: Flask, engine: Engine, clock: Callable[[], datetime]) -> dash.Dash:
    """Mount the review page on ``server`` at /review/."""
    app = mount(server, REVIEW, "nav.review")
    app.layout = lambda: guarded(engine, clock, REVIEW, _layout)

    @app.callback(Output("review-pairs", "children"), Output("review-count", "children"),
                  Output("review-page", "data"), Output("review-prev", "disabled"), Output("review-next", "disabled"),
                  Input("review-prev", "n_clicks"), Input("review-next", "n_clicks"), Input("review-changed", "data"),
                  State("review-page", "data"), State("review-lang", "data"))
    @refusals_shown(lambda exc: (refusal(exc), "", dash.no_update, True, True))
    def pairs(_prev: int | None, _next: int | None, _changed: int | None, page: int | None,
              lang: str) -> tuple[list[Any], str, int, bool, bool]:
        actor = _acting(engine, clock)
        step = {"review-prev": -1, "review-next": 1}.get(str(ctx.triggered_id), 0)
        with reading(engine) as conn:
            rows, total, page, pages = _paged(step, page, lambda p: open_pairs(conn, actor, p))
        shown: list[Any] = [pair_card(p, lang) for p in rows] or [html.P(text("review.empty", lang),
                                                                         className="nh-empty")]
        return (shown, text("review.count", lang).format(n=total, page=page, pages=pages), page, page <= 1,
                page >= pages)

    @app.callback(Output("review-linked", "children"), Output("review-linked-count", "children"),
                  Output("review-linked-page", "data"), Output("review-linked-prev", "disabled"),
                  Output("review-linked-next", "disabled"),
                  Input("review-linked-prev", "n_clicks"), Input("review-linked-next", "n_clicks"),
                  Input("review-changed", "data"), State("review-linked-page", "data"), State("review-lang", "data"))
    @refusals_shown(lambda exc: (refusal(exc), "", dash.no_update, True, True))
    def linked(_prev: int | None, _next: int | None, _changed: int | None, page: int | None,
               lang: str) -> tuple[list[Any], str, int, bool, bool]:
        actor = _acting(engine, clock)
        step = {"review-linked-prev": -1, "review-linked-next": 1}.get(str(ctx.triggered_id), 0)
        page = max(1, (page or 1) + step)
        with reading(engine) as conn:
            rows, more = linked_records(conn, actor, page)
            if not rows and page > 1:  # the list shrank under this page (a re-match applied splits): the first
                page = 1
                rows, more = linked_records(conn, actor, page)
        shown: list[Any] = [link_item(link, lang) for link in rows] or [
            html.Li(text("review.linked_empty", lang), className="nh-empty")]
        return shown, text("review.linked_page", lang).format(page=page), page, page <= 1, not more

    @app.callback(Output("review-message", "children"), Output("review-changed", "data"),
                  Input({"type": "review-decide", "id": ALL, "same": ALL}, "n_clicks"),
                  State({"type": "review-reason", "id": ALL}, "value"), State("review-changed", "data"),
                  State("review-lang", "data"), prevent_initial_call=True)
    @refusals_shown(lambda exc: (refusal(exc), dash.no_update))
    def decided(_clicks: list[int | None], reasons: list[str | None], changed: int | None,
                lang: str) -> tuple[html.P, int]:
        actor = _acting(engine, clock)
        clicked = _clicked()
        pair_id = int(clicked["id"])
        by_id = {state["id"]["id"]: value for state, value in zip(ctx.states_list[0], reasons, strict=True)}
        done = decide(engine, actor, pair_id, bool(clicked["same"]), by_id.get(pair_id), lang)
        return _ok(done), (changed or 0) + 1

    @app.callback(Output("review-message", "children", allow_duplicate=True),
                  Output("review-changed", "data", allow_duplicate=True),
                  Input({"type": "review-split", "file": ALL, "row": ALL}, "n_clicks"),
                  State({"type": "review-split-reason", "file": ALL, "row": ALL}, "value"),
                  State("review-changed", "data"), State("review-lang", "data"), prevent_initial_call=True)
    @refusals_shown(lambda exc: (refusal(exc), dash.no_update))
    def split_off(_clicks: list[int | None], reasons: list[str | None], changed: int | None,
                  lang: str) -> tuple[html.P, int]:
        actor = _acting(engine, clock)
        clicked = _clicked()
        record = (int(clicked["file"]), int(clicked["row"]))
        by_record = {(state["id"]["file"], state["id"]["row"]): value
                     for state, value in zip(ctx.states_list[0], reasons, strict=True)}
        done = split(engine, actor, *record, by_record.get(record), lang)
        return _ok(done), (changed or 0) + 1

    return app

