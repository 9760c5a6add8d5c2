"""Every string the pages show comes from the gettext catalogs in ``pages/locale``; :func:`text` picks one.

The catalogs are one ``.po`` file per page (a gettext *domain*) and language,
``pages/locale/<zh|en>/LC_MESSAGES/<domain>.po``, read with Babel. A message's
``msgid`` is the key the code asks for (``wall.title``), not the Chinese text:
a key stays put when the wording changes, and both languages are translations
of it, so a string missing from one language is found by
:func:`missing_translations` (a test) rather than shown as a key.

>>> text("wall.title", "en")
'Nanhai grid command centre'
>>> text("wall.title")
'南海区网格指挥中心'
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

from web.language import LANGUAGES, one_side

__all__ = ["LANGUAGES", "catalog", "graph_config", "has_text", "language", "missing_translations", "one_language",
           "text"]
LOCALE_DIR = Path(__file__).with_name("locale")


@cache
def catalog(lang: str) -> dict[str, str]:
    """Every message of ``lang``, over all domains (read once per process). The same key in two domains is a
    mistake, refused, as one of them would silently win."""
    messages: dict[str, str] = {}
    for path in sorted((LOCALE_DIR / lang / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            entries = read_po(handle, locale=None, domain=path.stem)
        for message in entries:
            if not message.id:  # the header
                continue
            key = str(message.id)
            if key in messages:
                raise ValueError(f"message {key} defined twice ({lang}, second in {path.name})")
            messages[key] = str(message.string)
    return messages


def text(key: str, lang: str = "zh") -> str:
    """The string ``key`` in ``lang`` (Chinese when the language is unknown); an unknown key is a KeyError."""
    return catalog("en" if lang == "en" else "zh")[key]


def has_text(key: str) -> bool:
    """Whether ``key`` is in the catalogs (for tables that name an optional string per value)."""
    return key in catalog("zh")


def missing_translations() -> dict[str, list[str]]:
    """Per language, the keys the other language has and it lacks, or has empty."""
    zh, en = catalog("zh"), catalog("en")
    return {"zh": sorted(k for k in en if not zh.get(k)), "en": sorted(k for k in zh if not en.get(k))}


def one_language(bilingual: str | None, lang: str = "zh") -> str | None:
    """One side of a stored "中文 / English" text (a code's reason or explanation), as the page's language asks;
    a text with no English side is shown whole."""
    return one_side(bilingual, lang)


def language(cookie: str | None) -> str:
    """The page language from the ``nanhai_lang`` cookie (set by /lang/<code>), else Chinese."""
    chosen = (cookie or "").lower()
    return chosen if chosen in LANGUAGES else "zh"


def graph_config(lang: str) -> dict[str, Any]:
    """A ``dcc.Graph``'s ``config`` for a page in ``lang``: Plotly's toolbar and date axes in that language (the
    Chinese locale is vendored as ``assets/plotly-locale-zh-cn.js``), no Plotly logo, and no "Share chart"
    button (plotly.js 4 offers to upload the chart's data to Plotly's cloud: the district's figures stay here).

    >>> graph_config("zh")
    {'locale': 'zh-CN', 'displaylogo': False, 'modeBarButtonsToRemove': ['sendChartToCloud']}
    """
    return {"locale": "en" if lang == "en" else "zh-CN", "displaylogo": False,
            "modeBarButtonsToRemove": ["sendChartToCloud"]}
