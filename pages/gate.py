"""The checkpoint page (``/checkpoint/``) for gate staff, and the e-pass pages behind it.

A plain Flask page over the JSON API (no Dash: it must open fast on a gate's phone or tablet): the staff member
picks one of the checkpoints in his scope, scans the e-pass QR code with the camera (jsQR 1.4.0, vendored in
``assets/vendor``) or types an ID number, and ``assets/gate.js`` posts the scan to ``POST /api/v1/gate/scans`` and
fills the screen with the verdict. Scans that cannot reach the server are queued in the browser with their time
and Idempotency-Key and sent when the network is back; the screen says they could not be checked.

- ``/checkpoint/persons/<key>``: a person's e-passes, for the staff who may issue them (issue, revoke, print);
- ``/checkpoint/passes/<id>``: the printable pass — its QR code (SVG, segno), the masked name, the issue date and
  a line saying it is not an ID document;
- ``/checkpoint/assets/<file>``: the page's own scripts and stylesheet (only those files).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, make_response, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from accounts.actor import ADMIN, COMMANDER, SUPERVISOR, WORKER, Actor
from accounts.repository import session_actor
from checkpoints import passes
from checkpoints.repository import checkpoints_in_scope
from gis.db import reading
from gis.errors import GridError
from matching.person_repository import get_person
from pages.plain import own_asset, qr_svg
from pages.strings import language, one_language, text
from web.context import engine, now, vault
from web.errors import status_of
from web.session import session_token

gate = Blueprint("gate", __name__, template_folder="templates")
BEIJING = ZoneInfo("Asia/Shanghai")
ASSETS = Path(__file__).resolve().parent.parent / "assets"
ASSET_FILES = frozenset({"gate.js", "gate.css", "vendor/jsqr-1.4.0.js"})
GATE_STAFF = (WORKER, SUPERVISOR, COMMANDER, ADMIN)  # who may record scans (the scans API's roles)
# the camera needs no CSP source (a MediaStream is not fetched); the QR code is inline SVG markup
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
          "connect-src 'self'; form-action 'self'")
STRING_KEYS = ("verdict.pass", "verdict.temporary", "verdict.refuse", "verdict.invalid", "verdict.unchecked",
               "colour.green", "colour.blue", "colour.yellow", "colour.red", "colour.none", "reason.alert",
               "reason.forged", "reason.revoked", "reason.queued", "queue",
               "camera_start", "camera_stop", "camera.denied", "camera.unavailable", "camera.scanning",
               "login_expired", "typed.empty", "error", "passes.reason_needed")


def _lang() -> str:
    return language(request.cookies.get("nanhai_lang"))


def _session() -> tuple[Actor, str] | None:
    """(actor, CSRF token) of the request's session, or None."""
    token = session_token()
    if token is None:
        return None
    with reading(engine()) as conn:
        return session_actor(conn, token, now())


def _render(template: str, status: int = 200, **context: Any) -> Response:
    lang = _lang()
    response = make_response(render_template(
        template, t=lambda key: text(key, lang), lang=lang, html_lang="en" if lang == "en" else "zh-CN",
        other_lang="zh" if lang == "en" else "en", here=request.full_path.rstrip("?"), **context), status)
    response.headers["Content-Security-Policy"] = POLICY
    response.headers["Cache-Control"] = "no-store"  # masked names and a CSRF token: not kept by a shared phone
    return response


def _refusal(status: int, message_key: str | None = None, message: str | None = None) -> Response:
    lang = _lang()
    return _render("gate_refused.html", status, message=message or text(message_key or "gate.not_for_role", lang),
                   page_config=None)


def _staff(roles: tuple[str, ...]) -> tuple[Actor, str] | BaseResponse:
    """The logged-in actor and his CSRF token; the login page (then back here) without a session, a 403 page for
    another role."""
    found = _session()
    if found is None:
        return redirect(f"/login?next={request.path}", 303)
    if found[0].role not in roles:
        return _refusal(403)
    return found


def _client_strings(lang: str) -> dict[str, str]:
    return {key: text(f"gate.{key}", lang) for key in STRING_KEYS}


@gate.get("/checkpoint/")
def checkpoint_page() -> BaseResponse:
    """The gate: pick a checkpoint in scope, scan or type, read the verdict."""
    found = _staff(GATE_STAFF)
    if not isinstance(found, tuple):
        return found
    actor, csrf = found
    with reading(engine()) as conn:
        checkpoints = checkpoints_in_scope(conn, actor)
    lang = _lang()
    config = {"csrf": csrf, "lang": lang, "strings": _client_strings(lang), "user": actor.username}
    return _render("gate.html", checkpoints=checkpoints, page_config=config, actor=actor)


def _when(moment: datetime | str | None) -> str:
    if moment is None:
        return ""
    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


@gate.get("/checkpoint/persons/<key>")
def person_passes_page(key: str) -> BaseResponse:
    """A person's e-passes: issue a new one (the one in force is revoked), revoke with a reason, print."""
    found = _staff(passes.ISSUERS)
    if not isinstance(found, tuple):
        return found
    actor, csrf = found
    lang = _lang()
    try:
        with reading(engine()) as conn:
            person = get_person(conn, actor, key)
            issued = passes.person_passes(conn, actor, key)
    except GridError as exc:
        return _refusal(status_of(exc), message=one_language(str(exc), lang))
    for item in issued:
        item["issued"], item["revoked"] = _when(item["issued_at"]), _when(item["revoked_at"])
        item["reason"] = one_language(item["reason"], lang)
    config = {"csrf": csrf, "lang": lang, "strings": _client_strings(lang), "person": key}
    return _render("pass_person.html", person=person, passes=issued, page_config=config,
                   colour=text(f"gate.colour.{person['colour'] or 'none'}", lang))


@gate.get("/checkpoint/passes/<int:pass_id>")
def pass_print_page(pass_id: int) -> BaseResponse:
    """The printable e-pass: QR code, masked name, issue date, "not an ID"; a revoked pass shows no code."""
    found = _staff(passes.ISSUERS)
    if not isinstance(found, tuple):
        return found
    actor, _csrf = found
    lang = _lang()
    try:
        with reading(engine()) as conn:
            shown = passes.printable(conn, actor, pass_id, vault())
    except GridError as exc:
        return _refusal(status_of(exc), message=one_language(str(exc), lang))
    # a revoked pass shows no code; the token is short enough for a small code at scale 6
    qr = qr_svg(shown["token"], 6) if shown["revoked_at"] is None else None
    return _render("pass_print.html", shown=shown, qr=qr, issued=_when(shown["issued_at"]),
                   revoked=_when(shown["revoked_at"]), page_config={"lang": lang})


@gate.get("/checkpoint/assets/<path:name>")
def gate_asset(name: str) -> Response:
    """The gate pages' own script, stylesheet and the vendored QR decoder (nothing else from ``assets/``)."""
    return own_asset(ASSETS, ASSET_FILES, name)
