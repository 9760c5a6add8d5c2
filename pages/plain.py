"""Plain server-rendered pages that must work on any phone: the login page, the activation of a new account
and the public lead form.

All are forms without JavaScript (the lead form uses it only, if present,
to fill in the phone's position and to drop a pin on a small map). The login and
activation forms are protected against cross-site posting by a double-submit
token; the lead form needs no login.

The lead form gives each phone a device token (a random long-lived cookie): the
public's limit counts per device, and per address only at a much higher cap
(a village behind one shared address), see :mod:`leads.reports`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import segno
from flask import Blueprint, Response, abort, make_response, redirect, render_template, request, send_from_directory
from markupsafe import Markup
from sqlalchemy import Engine
from sqlalchemy import text as sql
from sqlalchemy.exc import OperationalError
from werkzeug.wrappers import Response as BaseResponse

from gis.db import changing, reading
from gis.errors import GridError, InvalidRequest
from gis.geojson import dumps
from layers.wall import district_bounds, outline_geojson
from leads.reports import parse_report
from leads.repository import submit_report
from pages.shell import home_for
from pages.strings import LANGUAGES, language, one_language, text
from web.context import DEVICE_COOKIE, client_tag, device_tag, device_token, engine, now, vault
from web.errors import as_refusal, retry_headers, status_of
from web.session import (
    activate_account,
    clear_session_cookie,
    end_session,
    log_in,
    page_actor,
    same_origin,
    set_session_cookie,
)

pages = Blueprint("pages", __name__, template_folder="templates")
FORM_COOKIE = "nanhai_form"


def _form_token() -> str:
    return request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(24)


def _lang() -> str:
    return language(request.cookies.get("nanhai_lang"))


def _render(template: str, status: int = 200, error: str | None = None, **context: Any) -> Response:
    """``template`` in the reader's language (``t`` is its strings; ``error``, a "中文 / English" refusal, is
    shown in that language only), with a fresh form token."""
    token, lang = _form_token(), _lang()
    response = make_response(render_template(
        template, form_token=token, t=lambda key: text(key, lang), error=one_language(error, lang),
        html_lang="en" if lang == "en" else "zh-CN", other_lang="zh" if lang == "en" else "en",
        here=request.full_path.rstrip("?"), **context), status)
    response.set_cookie(FORM_COOKIE, token, httponly=True, samesite="Strict", secure=request.is_secure)
    response.headers["Content-Security-Policy"] = "default-src 'self'; style-src 'self' 'unsafe-inline'; " \
                                                  "script-src 'self'; img-src 'self' data:; form-action 'self'"
    return response


def _bilingual(key: str) -> str:
    """A catalog string as a "中文 / English" text (``_render`` shows the reader's side)."""
    return f"{text(key, 'zh')} / {text(key, 'en')}"


def _refused(response: Response, refusal: GridError) -> Response:
    """A form's refusal page with ``Retry-After`` when the refusal passes by itself (rate limit, database away)."""
    response.headers.update(retry_headers(refusal) or {})
    return response


def _form_token_ok() -> bool:
    sent, kept = request.form.get("form_token"), request.cookies.get(FORM_COOKIE)
    return bool(sent) and sent == kept


def _safe_next(target: str | None) -> str:
    parts = urlsplit(target or "/")
    return target if target and not parts.scheme and not parts.netloc and target.startswith("/") else "/"


@pages.get("/login")
def login_page() -> Response:
    return _render("login.html", next=_safe_next(request.args.get("next")))


@pages.post("/login")
def login_submit() -> BaseResponse:
    target = _safe_next(request.form.get("next"))
    if not _form_token_ok():
        return _render("login.html", 400, next=target, error=_bilingual("plain.expired"))
    try:
        token, actor, _csrf, expires = log_in(request.form.get("username", "").strip(),
                                              request.form.get("password", ""))
    except (GridError, OperationalError) as exc:
        refusal = as_refusal(exc)
        return _refused(_render("login.html", status_of(refusal), next=target, error=str(refusal),
                                username=request.form.get("username", "")), refusal)
    return set_session_cookie(redirect(home_for(actor.role) if target == "/" else target, 303), token, expires)


@pages.get("/activate")
def activate_page() -> Response:
    """First login: a new (or reset) account sets its password with the one-time code from the administrator."""
    return _render("activate.html", username=request.args.get("username", "").strip()[:64])


@pages.post("/activate")
def activate_submit() -> BaseResponse:
    username = request.form.get("username", "").strip()
    if not _form_token_ok():
        return _render("activate.html", 400, username=username,
                       error=_bilingual("plain.expired"))
    password = request.form.get("password", "")
    if password != request.form.get("password2", ""):
        return _render("activate.html", 422, username=username, field="password2",
                       error=_bilingual("plain.passwords_differ"))
    try:
        token, actor, _csrf, expires = activate_account(username, request.form.get("code", ""), password)
    except (GridError, OperationalError) as exc:
        refusal = as_refusal(exc)
        return _refused(_render("activate.html", status_of(refusal), username=username, error=str(refusal),
                                field=refusal.field if isinstance(refusal, InvalidRequest) else None), refusal)
    return set_session_cookie(redirect(home_for(actor.role), 303), token, expires)


@pages.get("/")
def home() -> BaseResponse:
    """The start page: the logged-in user's own page (by role), else the login page."""
    actor = page_actor(engine(), now())
    return redirect(home_for(actor.role) if actor else "/login", 303)


@pages.post("/logout")
def logout() -> BaseResponse:
    """Log out from a page's menu. A cross-site form cannot do it: the SameSite=Lax cookie is not sent along,
    and a foreign ``Origin`` is refused."""
    if not same_origin():
        return make_response(text("plain.cross_site", _lang()), 403)
    with engine().begin() as conn:
        end_session(conn)
    return clear_session_cookie(redirect("/login", 303))


@pages.get("/lang/<code>")
def choose_language(code: str) -> BaseResponse:
    """Remember the reader's language (zh or en) in a cookie and go back to the page he came from."""
    response = redirect(_safe_next(request.args.get("next")), 303)
    if code in LANGUAGES:
        response.set_cookie("nanhai_lang", code, max_age=365 * 24 * 3600, samesite="Lax", secure=request.is_secure)
    return response


# -- the public lead form ------------------------------------------------------------------------------
DEVICE_MAX_AGE = 2 * 365 * 24 * 3600
LEAD_ASSETS = Path(__file__).resolve().parent.parent / "assets" / "lead"
LEAD_ASSET_NAMES = frozenset({"lead_form.js", "lead_form.css", "leaflet-1.9.4.js", "leaflet-1.9.4.css"})
OUTLINE_URL = "/leads/outline.geojson"


def _with_device(response: Response) -> Response:
    """Give a phone its device token on its first visit (kept two years; a new one only if it was lost)."""
    if device_token() is None:
        response.set_cookie(DEVICE_COOKIE, secrets.token_urlsafe(24), max_age=DEVICE_MAX_AGE, httponly=True,
                            samesite="Lax", secure=request.is_secure)
    return response


@lru_cache(maxsize=8)
def _asset_version(name: str) -> str:
    return hashlib.sha256((LEAD_ASSETS / name).read_bytes()).hexdigest()[:12]


def own_asset(folder: Path, allowed: frozenset[str], name: str, max_age: int = 3600) -> Response:
    """One of a plain page's own files from ``folder``, if it is among ``allowed`` (nothing else of ``assets/``:
    Dash serves that folder only under each Dash page's own prefix)."""
    if name not in allowed:
        abort(404)
    response = send_from_directory(folder, name, max_age=max_age)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def qr_svg(payload: str, scale: int) -> Markup:
    """``payload`` (a pass's token, a self-report link: letters, digits and . _ - / : only) as an inline SVG QR
    code, error correction M so that a printed sheet survives a crease."""
    svg = segno.make(payload, error="m", micro=False).svg_inline(scale=scale, border=4, dark="#000", omitsize=True)
    return Markup(svg)  # noqa: S704  (segno's own markup of a payload with no markup characters)


def lead_asset(name: str) -> str:
    """The URL of one of the form's own scripts or stylesheets, with its content's version (cache busting)."""
    return f"/leads/assets/{name}?v={_asset_version(name)}"


@pages.get("/leads/assets/<name>")
def lead_form_asset(name: str) -> Response:
    """The form's script, stylesheet and vendored Leaflet: served here, on the public page's own prefix (Dash
    serves ``assets/`` only under each Dash page's prefix, hence the 404 of ``/assets/nanhai.js`` here)."""
    response = own_asset(LEAD_ASSETS, LEAD_ASSET_NAMES, name, max_age=0)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable" if request.args.get("v") \
        else "no-cache"
    return response


def _outline_version(conn: Any) -> str:
    return str(conn.execute(sql(
        "SELECT (SELECT count(*) || ':' || coalesce(max(xmin::text), '') FROM towns) || '/' || "
        "(SELECT count(*) || ':' || coalesce(max(xmin::text), '') FROM communities)")).scalar_one())


@lru_cache(maxsize=4)
def _outline_bytes(db: Engine, version: str) -> bytes:
    """Town and community outlines in WGS84 (as the form's point is), each feature with its ``level``."""
    features: list[dict[str, Any]] = []
    with reading(db) as conn:
        for level in ("communities", "towns"):  # towns last: drawn over the communities
            features += [{**feature, "properties": {**feature["properties"], "level": level}}
                         for feature in outline_geojson(conn, level)["features"]]
    return dumps({"type": "FeatureCollection", "features": features}).encode("utf-8")


@pages.get(OUTLINE_URL)
def lead_outline() -> Response:
    """The district's town and community outlines for the form's map: public (names and shapes of areas,
    nothing personal), always WGS84 whatever the basemap's datum (the form sends crs=wgs84)."""
    with reading(engine()) as conn:
        version = _outline_version(conn)
    response = Response(_outline_bytes(engine(), version), mimetype="application/geo+json")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def _bounds_json() -> str:
    try:
        with reading(engine()) as conn:
            return json.dumps(district_bounds(conn))
    except OperationalError:  # the map fits the district when it can; the form works without it
        return "null"


def _lead_page(status: int = 200, **context: Any) -> Response:
    return _with_device(_render("lead_form.html", status, lead_asset=lead_asset, outline_url=OUTLINE_URL,
                                bounds_json=_bounds_json(), **context))


@pages.get("/leads/new")
def lead_form() -> Response:
    return _lead_page(values={})


@pages.post("/leads/new")
def lead_submit() -> Response:
    values = {k: request.form.get(k, "") for k in ("description", "address", "lon", "lat", "contact")}
    if not _form_token_ok():
        return _lead_page(400, values=values, error=_bilingual("plain.expired"))
    payload: dict[str, Any] = {"description": values["description"], "address": values["address"] or None,
                               "contact": values["contact"] or None, "crs": "wgs84"}
    if values["lon"] or values["lat"]:
        payload["location"] = {"lon": values["lon"], "lat": values["lat"]}
    try:
        report = parse_report(payload)
        with changing(engine()) as conn:
            lead = submit_report(conn, report, client_tag(), "public", vault(), now(), device=device_tag())
    except GridError as exc:
        return _refused(_lead_page(status_of(exc), values=values, error=str(exc),
                                   field=exc.field if isinstance(exc, InvalidRequest) else None), exc)
    return _with_device(_render("lead_thanks.html", 201, lead=lead))
