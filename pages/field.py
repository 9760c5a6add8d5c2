"""The grid worker's field app (``/field/``): a light installable web app for a phone on a poor network.

No Dash, no map library: one plain HTML shell (``templates/field.html``), one script and one stylesheet
(``assets/field/``), a web app manifest and a service worker scoped to /field/. The script draws the task cards
from the JSON API (``GET /api/v1/field/tasks``) and sends every tap through its outbox (one tap = one entry with
its own Idempotency-Key, retried until the server answers for good), as the Dash page did.

Offline: the service worker keeps the shell and its files (no personal data in them: the shell names nobody),
and the script keeps the last tasks it was given in localStorage, tagged with the user and his session's expiry;
it shows them offline with the outbox, drops them once the session has expired, and clears them at logout.

Static files carry a content hash in their URLs (``?v=``): they may be kept a year; the shell, the manifest and
the service worker are revalidated on every load (``no-cache`` with an ETag). Every answer is an ordinary
response body, so the app-wide compression (:mod:`web.compression`) applies to them.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
from functools import cache
from pathlib import Path

from flask import Blueprint, Response, abort, make_response, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from pages.shell import FIELD
from pages.strings import catalog, language, text
from web.context import engine, now
from web.session import page_actor

field = Blueprint("field", __name__, template_folder="templates")
FOLDER = Path(__file__).resolve().parent.parent / "assets" / "field"
# the app's files (also what the service worker keeps); the icons are drawn by `python -m pages.field icons`
FILES = ("app.js", "app.css", "icon.svg", "icon-192.png", "icon-512.png")
YEAR = 365 * 24 * 3600
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
          "worker-src 'self'; manifest-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'")


@cache
def _file(name: str) -> tuple[bytes, str]:
    """(bytes, short content hash) of one of the app's files, read once per process."""
    body = (FOLDER / name).read_bytes()
    return body, hashlib.sha256(body).hexdigest()[:12]


def asset_url(name: str) -> str:
    """The URL of one of the app's files, with its content hash: a new version is a new URL."""
    return f"{FIELD.path}{name}?v={_file(name)[1]}"


def version() -> str:
    """One hash of all the app's files and the shell's template: the service worker's cache is named after it."""
    digest = hashlib.sha256()
    for name in FILES:
        digest.update(_file(name)[1].encode())
    digest.update((Path(__file__).with_name("templates") / "field.html").read_bytes())
    digest.update(json.dumps(catalog("zh"), sort_keys=True).encode())
    digest.update(json.dumps(catalog("en"), sort_keys=True).encode())
    return digest.hexdigest()[:12]


def _revalidated(body: bytes | str, mimetype: str) -> Response:
    """An answer the browser must check again before reusing (an ETag makes that a 304 when nothing changed)."""
    response = make_response(body)
    response.mimetype = mimetype
    response.headers["Cache-Control"] = "no-cache"
    response.add_etag()
    response.make_conditional(request)  # a 304 without a body when the browser's copy is current (in place)
    return response


def client_strings(lang: str) -> dict[str, str]:
    """The field app's strings in ``lang`` (the keys without ``field.``), for the script."""
    return {key[len("field."):]: text(key, lang) for key in catalog("zh") if key.startswith("field.")}


@field.get(FIELD.path)
def shell() -> BaseResponse:
    """The app's shell, for a logged-in worker (others: the login page, or a refusal). It holds no personal data:
    the service worker keeps it for opening offline."""
    lang = language(request.cookies.get("nanhai_lang"))
    actor = page_actor(engine(), now())
    if actor is None:
        return redirect(f"/login?next={FIELD.path}", 303)
    if actor.role not in FIELD.roles:
        response = make_response(render_template("field_refused.html", t=lambda key: text(key, lang),
                                                 html_lang="en" if lang == "en" else "zh-CN"), 403)
        response.headers["Content-Security-Policy"] = POLICY
        return response
    config = {"lang": lang, "strings": client_strings(lang), "version": version()}
    page = render_template("field.html", t=lambda key: text(key, lang), html_lang="en" if lang == "en" else "zh-CN",
                           other_lang="zh" if lang == "en" else "en", asset=asset_url, config=config)
    response = _revalidated(page, "text/html")
    response.headers["Content-Security-Policy"] = POLICY
    response.headers["Vary"] = "Cookie"
    return response


@field.get(f"{FIELD.path}manifest.webmanifest")
def manifest() -> Response:
    """The web app manifest: the phone installs /field/ as 南海网格, standalone."""
    body = {"name": "南海网格", "short_name": "南海网格", "lang": "zh-CN", "start_url": FIELD.path, "scope": FIELD.path,
            "display": "standalone", "orientation": "portrait", "background_color": "#f3f5f8",
            "theme_color": "#1c7ed6", "description": "网格员任务 / grid worker's tasks",
            "icons": [{"src": asset_url("icon-192.png"), "sizes": "192x192", "type": "image/png"},
                      {"src": asset_url("icon-512.png"), "sizes": "512x512", "type": "image/png"},
                      {"src": asset_url("icon.svg"), "sizes": "any", "type": "image/svg+xml"}]}
    return _revalidated(json.dumps(body, ensure_ascii=False), "application/manifest+json")


@field.get(f"{FIELD.path}sw.js")
def service_worker() -> Response:
    """The service worker (scope /field/), told its version and the files to keep."""
    source = (FOLDER / "sw.js").read_text(encoding="utf-8")
    source = source.replace("__VERSION__", version()).replace(
        "__FILES__", json.dumps([asset_url(name) for name in FILES]))
    response = _revalidated(source, "text/javascript")
    response.headers["Service-Worker-Allowed"] = FIELD.path
    return response


@field.get(f"{FIELD.path}<name>")
def app_file(name: str) -> Response:
    """One of the app's files: kept a year when asked for by its current hash, else revalidated."""
    if name not in FILES:
        abort(404)
    body, digest = _file(name)
    mimetype = "text/javascript" if name.endswith(".js") else mimetypes.guess_type(name)[0] or "image/png"
    if request.args.get("v") != digest:
        return _revalidated(body, mimetype)
    response = make_response(body)
    response.mimetype = mimetype
    response.headers["Cache-Control"] = f"public, max-age={YEAR}, immutable"
    return response


def draw_icons(folder: Path = FOLDER) -> list[Path]:
    """Draw the app's PNG icons (192 and 512 px: a grid on the platform's blue, as ``icon.svg``) into ``folder``."""
    from PIL import Image, ImageDraw

    written = []
    for size in (192, 512):
        image = Image.new("RGB", (size, size), (28, 126, 214))
        draw = ImageDraw.Draw(image)
        margin, step, width = size * 0.22, size * 0.56 / 3, max(2, size // 40)
        for i in range(4):
            offset = margin + i * step
            draw.line([(margin, offset), (size - margin, offset)], fill=(255, 255, 255), width=width)
            draw.line([(offset, margin), (offset, size - margin)], fill=(255, 255, 255), width=width)
        centre = margin + 1.5 * step
        radius = step * 0.38
        draw.ellipse([centre - radius, centre - radius, centre + radius, centre + radius], fill=(255, 212, 59))
        path = folder / f"icon-{size}.png"
        image.save(path, optimize=True)
        written.append(path)
    return written


if __name__ == "__main__":  # python -m pages.field: redraw the PNG icons
    for drawn in draw_icons():
        print(drawn)
