"""The two languages of the platform's messages, beneath the API and the pages: Chinese (the default) and English.

Refusals (:class:`gis.errors.GridError`) and stored reasons are written "中文 / English" in the code and in the
database (the command line shows both); :func:`one_side` shows one side, the one the reader chose (the pages'
``nanhai_lang`` cookie) or asked for (the JSON API's ``Accept-Language``). Flask-Babel's locale selector is
:func:`request_language`, installed by :func:`install`; :func:`reply_language` reads the locale it chose.

>>> one_side("请先登录 / please log in", "en")
'please log in'
>>> one_side("请先登录 / please log in", "zh")
'请先登录'
>>> one_side("超出网格（2.6 km）", "en")
'超出网格（2.6 km）'
"""

from __future__ import annotations

import re

from flask import Flask, current_app, has_request_context, request
from flask_babel import Babel, get_locale

LANGUAGES = ("zh", "en")
DEFAULT = "zh"
COOKIE = "nanhai_lang"
API_PREFIX = "/api/"
SIDES = re.compile(r"(?:\s+|(?<=[）」』】》]))/\s+")  # between the Chinese side and the English one


def one_side(bilingual: str | None, lang: str = DEFAULT) -> str | None:
    """One side of a "中文 / English" text, as ``lang`` asks; a text with no English side is shown whole.

    The first " / " splits the two sides (also "）/ ", as a Chinese side ending in a bracket is written). A text
    of several bilingual parts joined by " · " (a feed import's summary) or ": " (a field's name, then what is
    wrong with it) is split part by part:

    >>> one_side("上传内容过大（最多 5 MB）/ the upload is too large", "en")
    'the upload is too large'
    >>> one_side("卫健 · a.csv · 读取 4 = 入库 4 / read = stored · 警告 0 行 / warnings: 0", "en")
    '卫健 · a.csv · read = stored · warnings: 0'
    >>> field = "用户名 / username: 格式不符 / malformed"
    >>> one_side(field, "zh"), one_side(field, "en")
    ('用户名: 格式不符', 'username: malformed')
    """
    if not bilingual:
        return bilingual
    splits = SIDES.findall(bilingual)
    if not splits:
        return bilingual
    if len(splits) > 1:
        for joint in (" · ", "; ", "；", ": "):
            parts = bilingual.split(joint)
            if len(parts) > 1 and all(len(SIDES.findall(part)) <= 1 for part in parts):
                return joint.join(one_side(part, lang) or "" for part in parts)
    zh, en = SIDES.split(bilingual, maxsplit=1)
    return en if lang == "en" else zh.rstrip()


def request_language() -> str:
    """The language of this request: for the JSON API the best match of ``Accept-Language`` among zh and en
    (a program says what it reads), for the pages the reader's choice (the ``nanhai_lang`` cookie set by
    /lang/<code>); Chinese when neither says."""
    if request.path.startswith(API_PREFIX):
        return str(request.accept_languages.best_match(LANGUAGES, default=DEFAULT))
    chosen = (request.cookies.get(COOKIE) or "").lower()
    return chosen if chosen in LANGUAGES else DEFAULT


def install(server: Flask) -> None:
    """Flask-Babel on ``server``, choosing each request's locale with :func:`request_language`."""
    if "babel" not in server.extensions:
        Babel(server, locale_selector=request_language)


def reply_language() -> str:
    """The language to answer this request in (see :func:`request_language`), Chinese outside a request."""
    if not has_request_context():
        return DEFAULT
    if "babel" not in current_app.extensions:  # an app put together without install() (a test's bare app)
        return request_language()
    locale = get_locale()
    return locale.language if locale is not None and locale.language in LANGUAGES else DEFAULT
