"""Request inputs no view should ever see: checked once, before any view or Dash callback runs.

PostgreSQL text cannot hold a NUL, and a lone UTF-16 surrogate cannot be encoded at all; either, deep inside
a view, used to end as a 500 with a traceback. A JSON body nested deeper than any real request exhausts the
parser's recursion. Each is refused here as 422 JSON naming where it was found: the path, a query parameter,
a form field, or the JSON body.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Flask, Response, request

from gis.errors import InvalidRequest
from web.errors import error_response

MAX_JSON_DEPTH = 512  # a Dash callback's state nests a few levels per component; no request nears this
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _bad_text(text: str) -> str | None:
    """Why ``text`` may not be stored: a NUL, or a lone surrogate (None: it may)."""
    if "\x00" in text:
        return "含空字符（NUL）/ holds a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "含无效的 Unicode 代理字符 / holds a lone Unicode surrogate"
    return None


def _json_problem(value: Any, depth: int = 0) -> str | None:
    if depth > MAX_JSON_DEPTH:
        return f"嵌套超过 {MAX_JSON_DEPTH} 层 / nested deeper than {MAX_JSON_DEPTH} levels"
    if isinstance(value, str):
        return _bad_text(value)
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        why = (_bad_text(key) if isinstance(key, str) else None) or _json_problem(item, depth + 1)
        if why:
            return why
    return None


def _json_needs_a_look(raw: bytes) -> bool:
    """Whether a JSON text may hold an escaped NUL or surrogate, or nest deeply: most bodies (browsers send
    Chinese unescaped, a phone's update is a few fields) are passed on without being parsed twice."""
    return b"\\u0000" in raw or SURROGATE_ESCAPE.search(raw) is not None or \
        raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH


def check_inputs() -> Response | None:
    """Refuse this request (422 JSON) when its path, query, form or JSON body holds what no view may see."""
    try:
        for where, text in (("path", request.path), *((f"query {k}", v) for k, v in request.args.items(multi=True))):
            why = _bad_text(text) or _bad_text(where)
            if why:
                raise InvalidRequest(f"{where}: {why}", where.split(" ")[-1])
        if request.mimetype == "application/x-www-form-urlencoded":
            for name, value in request.form.items(multi=True):
                why = _bad_text(value) or _bad_text(name)
                if why:
                    raise InvalidRequest(f"{name}: {why}", name)
        if request.is_json and request.content_length:
            raw = request.get_data(cache=True)
            if not _json_needs_a_look(raw):
                return None
            try:
                body = json.loads(raw)
            except RecursionError:
                raise InvalidRequest(f"JSON 嵌套过深 / the JSON nests too deep (over {MAX_JSON_DEPTH} levels)",
                                     "body") from None
            except ValueError:
                return None  # the view's own parsing says what is wrong with it
            why = _json_problem(body)
            if why:
                raise InvalidRequest(f"JSON: {why}", "body")
    except InvalidRequest as exc:
        return error_response(exc)
    return None


def install(server: Flask) -> None:
    """Check every request of ``server`` before its view (call once per app, before the views' own hooks)."""
    server.before_request(check_inputs)
