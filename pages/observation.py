"""The self-report page of a person in home observation (``/obs/<token>``, no login), and its printable link:
issue 25.

- ``/obs/<token>``: a plain form for a phone (no JavaScript needed): the temperature and the symptoms (none, cough,
  fever, other), Chinese first with the language switch of the other public pages. A post is checked as the API
  checks it (:func:`observation.links.self_report`: the link, then at most six reports an hour, then the check it
  counts for); a forged, replaced or ended link gets a page saying so and nothing is stored. The form carries a
  double-submit token (a cookie on ``/obs/`` and a hidden field), so another site cannot post through a person's
  link. The page asks browsers not to keep it (``no-store``) and not to pass the link to another site (``same-origin``).
- ``/obs/print/<plan id>``: for the staff who see the plan: the link as a QR code (SVG, segno, as the e-pass print
  page) to print or show, the masked name and the plan's end; a button renews the link (every earlier one stops).
- ``/obs/assets/<file>``: the pages' stylesheet.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, make_response, redirect, render_template, request
from sqlalchemy import text as sql
from sqlalchemy.exc import OperationalError
from werkzeug.wrappers import Response as BaseResponse

from accounts.actor import Actor
from accounts.repository import session_actor
from gis.db import changing, reading
from gis.errors import GridError, InvalidRequest
from observation import links
from observation.checks import SYMPTOMS, parse_check
from pages.plain import own_asset, qr_svg
from pages.strings import language, one_language, text
from tasks.overview import BEIJING
from web.context import engine, now, vault
from web.errors import as_refusal, retry_headers, status_of
from web.session import same_origin, session_token

observation_page = Blueprint("observation_page", __name__, template_folder="templates")
ASSETS = Path(__file__).resolve().parent.parent / "assets" / "observation"
ASSET_FILES = frozenset({"observation.css"})
FORM_COOKIE = "nanhai_obs_form"
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
          "form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'")


def _lang() -> str:
    return language(request.cookies.get("nanhai_lang"))


def _render(template: str, status: int = 200, **context: Any) -> Response:
    """``template`` in the reader's language, not kept by the browser, its link passed on to nobody."""
    lang = _lang()
    token = request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(24)
    response = make_response(render_template(
        template, t=lambda key: text(key, lang), lang=lang, html_lang="en" if lang == "en" else "zh-CN",
        other_lang="zh" if lang == "en" else "en", here=request.path, form_token=token,
        symptoms=SYMPTOMS, **context), status)
    response.set_cookie(FORM_COOKIE, token, httponly=True, samesite="Strict", secure=request.is_secure,
                        path="/obs/")
    response.headers["Content-Security-Policy"] = POLICY
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "same-origin"  # no-referrer would make the form's Origin "null"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def _when(moment: datetime | str | None, with_date: bool = True) -> str:
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M")


def _refused(refusal: GridError, token: str, values: dict[str, Any] | None = None,
             plan: dict[str, Any] | None = None) -> Response:
    """The form again with the refusal in the reader's language (a bad field), or the page that says the link does
    not work (nothing to report through it); ``Retry-After`` on a rate limit."""
    lang = _lang()
    message = one_language(str(refusal), lang)
    if isinstance(refusal, links.InvalidLink):
        response = _render("observation_refused.html", 404 if isinstance(refusal, links.ForgedLink) else 410,
                           message=message)
    else:
        field = refusal.field if isinstance(refusal, InvalidRequest) else None
        response = _render("observation_form.html", status_of(refusal), token=token, error=message, field=field,
                           values=values or {}, plan=plan)
    response.headers.update(retry_headers(refusal) or {})
    return response


def _plan_facts(token: str) -> dict[str, Any]:
    """The days of the link's plan and its next check times (nothing about the person), for the form's heading."""
    moment = now()
    with reading(engine()) as conn:
        plan_id = links.verify_link(conn, vault(), token, moment)
        row = conn.execute(sql("SELECT starts_at, ends_at, check_minutes FROM observation_plans WHERE id = :i"),
                           {"i": plan_id}).one()
    days = max(1, round((row.ends_at - row.starts_at).total_seconds() / 86400))
    day = min(days, (moment.astimezone(BEIJING).date() - row.starts_at.astimezone(BEIJING).date()).days + 1)
    times = [f"{m // 60:02d}:{m % 60:02d}" for m in sorted(row.check_minutes or [])]
    return {"day": day, "days": days, "times": "、".join(times), "ends": _when(row.ends_at)}


@observation_page.get("/obs/<token>")
def self_report_form(token: str) -> Response:
    """The person's form: his temperature and symptoms; a link that does not work says so."""
    try:
        plan = _plan_facts(token)
    except (GridError, OperationalError) as exc:
        return _refused(as_refusal(exc), token)
    return _render("observation_form.html", token=token, plan=plan, values={}, error=None, field=None)


def _form_ok() -> bool:
    sent, kept = request.form.get("form_token", ""), request.cookies.get(FORM_COOKIE, "")
    return bool(sent) and hmac.compare_digest(sent.encode(), kept.encode()) and same_origin()


@observation_page.post("/obs/<token>")
def self_report_submit(token: str) -> Response:
    """Record the person's report (as ``POST /api/v1/observation/self-reports``) and thank him; a refusal names the
    field and keeps what he typed."""
    raw = request.form.get("temperature", "").strip()
    chosen = [s for s in request.form.getlist("symptoms") if s]
    values = {"temperature": raw, "symptoms": chosen}
    try:
        plan = _plan_facts(token)  # a link that does not work says so first, whatever the form holds
    except (GridError, OperationalError) as exc:
        return _refused(as_refusal(exc), token, values)
    if not _form_ok():
        return _refused(InvalidRequest(f"{text('obs.expired', 'zh')} / {text('obs.expired', 'en')}",
                                       "form_token"), token, values, plan)
    payload: dict[str, Any] = {"symptoms": chosen}
    if raw:
        try:
            payload["temperature"] = float(raw.replace("，", ".").replace(",", "."))  # rounded by parse_check
        except ValueError:
            payload["temperature"] = raw  # named by the check's own refusal
    try:
        report = parse_check(payload)
        with changing(engine()) as conn:
            recorded = links.self_report(conn, vault(), token, report, now())
    except (GridError, OperationalError) as exc:
        return _refused(as_refusal(exc), token, values, plan)
    return _render("observation_thanks.html", 201, token=token, due=_when(recorded["due_at"]),
                   at=_when(recorded["reported_at"]), late=recorded["late"],
                   temperature=report.temperature)


# -- the printable link, for the staff -------------------------------------------------------------------------
def _staff() -> tuple[Actor, str] | None:
    token = session_token()
    if token is None:
        return None
    with reading(engine()) as conn:
        return session_actor(conn, token, now())


def _staff_refusal(status: int, message: str) -> Response:
    return _render("observation_refused.html", status, message=message)


@observation_page.get("/obs/print/<int:plan_id>")
def print_link(plan_id: int) -> BaseResponse:
    """The plan's link as a QR code to print or show the person, with a button to renew it."""
    found = _staff()
    if found is None:
        return redirect(f"/login?next={request.path}", 303)
    actor, csrf = found
    lang = _lang()
    try:
        with reading(engine()) as conn:
            shown = links.current_link(conn, actor, plan_id, vault(), now())
    except GridError as exc:
        return _staff_refusal(status_of(exc), one_language(str(exc), lang) or "")
    url = request.host_url.rstrip("/") + shown["path"]
    qr = qr_svg(url, 5)
    return _render("observation_print.html", shown=shown, url=url, qr=qr, csrf=csrf, ends=_when(shown["ends_at"]),
                   renewed=request.args.get("renewed") == "1")


@observation_page.post("/obs/print/<int:plan_id>")
def renew_printed_link(plan_id: int) -> BaseResponse:
    """Renew the plan's link from the print page (the session's CSRF token in the form): the old one stops."""
    found = _staff()
    if found is None:
        return redirect(f"/login?next={request.path}", 303)
    actor, csrf = found
    sent = request.form.get("csrf_token", "")
    lang = _lang()
    if not same_origin() or not hmac.compare_digest(sent.encode(), csrf.encode()):
        return _staff_refusal(403, text("obs.expired", lang))
    try:
        with changing(engine()) as conn:
            links.renew_link(conn, actor, plan_id, now())
    except GridError as exc:
        return _staff_refusal(status_of(exc), one_language(str(exc), lang) or "")
    return redirect(f"/obs/print/{plan_id}?renewed=1", 303)


@observation_page.get("/obs/assets/<name>")
def observation_asset(name: str) -> Response:
    """The pages' own stylesheet (nothing else from ``assets/``)."""
    return own_asset(ASSETS, ASSET_FILES, name)

