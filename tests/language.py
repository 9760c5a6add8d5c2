"""The language check of the browser tests: which visible strings of a page are in the other language.

One language at a time: an English page shows no Chinese and a Chinese page no English, except names of
places and people, usernames and codes, which a page wraps in an element of class ``nh-name``, and text
that says of itself that it is in the other language (an element with a ``lang`` attribute, such as the
language switch's "English" on a Chinese page).

The page's strings are gathered in the browser (:data:`GATHER`): visible text nodes, the ``placeholder``,
``title``, ``aria-label`` and ``data-title`` (Plotly's toolbar) attributes of visible elements, the options
of visible ``<select>`` elements, and the document's title. They are judged here, in Python, so that what
counts as foreign (:func:`foreign`) is tested without a browser.
"""

from __future__ import annotations

import re

from selenium import webdriver

# Runs in the page; arguments[0] is the page language ("zh" or "en"). Returns [[where, text], ...].
GATHER = r"""
const lang = arguments[0];
const out = [];
const SKIP = new Set(["SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE", "TEXTAREA"]);
const primary = (value) => (value || "").toLowerCase().split("-")[0];
const other = (el) => {
  // the nearest element below <html> that names its language, when it names another one
  for (let node = el; node && node !== document.documentElement; node = node.parentElement) {
    if (node.hasAttribute && node.hasAttribute("lang")) return primary(node.getAttribute("lang")) !== lang;
  }
  return false;
};
const excluded = (el) => {
  for (let node = el; node && node !== document.documentElement; node = node.parentElement) {
    if (SKIP.has(node.tagName) || (node.classList && node.classList.contains("nh-name"))) return true;
  }
  return other(el);
};
const visible = (el) => {
  if (el.checkVisibility) return el.checkVisibility({visibilityProperty: true});
  return el.getClientRects().length > 0;
};
const walker = document.createTreeWalker(document.body || document.documentElement, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const value = node.nodeValue.trim();
  const parent = node.parentElement;
  if (!value || !parent || excluded(parent) || !visible(parent)) continue;
  out.push(["text", value]);
}
for (const el of document.querySelectorAll("[placeholder],[title],[aria-label],[data-title]")) {
  if (excluded(el) || !visible(el)) continue;
  for (const name of ["placeholder", "title", "aria-label", "data-title"]) {
    const value = (el.getAttribute(name) || "").trim();
    if (value) out.push([name, value]);
  }
}
for (const select of document.querySelectorAll("select")) {
  if (excluded(select) || !visible(select)) continue;
  for (const option of select.options) {
    const value = option.text.trim();
    if (value && !excluded(option)) out.push(["option", value]);
  }
}
if (document.title.trim()) out.push(["document.title", document.title.trim()]);
const declared = primary(document.documentElement.getAttribute("lang"));
if (declared && declared !== lang) out.push(["html lang", document.documentElement.getAttribute("lang")]);
return out;
"""

CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff01-\uff5e]")
# Words a Chinese page may show as they are: acronyms, formats, units, datums and product names.
ALLOWED = frozenset(word.lower() for word in (
    "CSV", "Excel", "PDF", "ID", "QR", "km", "WGS", "GCJ", "CGCS", "API", "URL", "HTTP", "HTTPS", "JSON", "GeoJSON",
    "Shapefile", "GeoPackage", "GPKG", "Leaflet", "OpenStreetMap", "OSM", "SLA", "SMS", "PNG", "SVG", "XLSX",
    "TOML", "Plotly", "WeCom", "DingTalk", "Webhook", "GPS", "IP", "UTC", "CST", "ms", "px", "kg", "OK"))
URL_OR_MAIL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+|\S+@\S+\.\w+|(?<![\w\u4e00-\u9fff])/[\w.-]+(?:/[\w./?=&%-]*)+",
                         re.IGNORECASE)
TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.'’-]*[A-Za-z0-9]|[A-Za-z0-9]")


def english_words(value: str) -> list[str]:
    """The English words in ``value``: runs of two letters or more that are not allowed acronyms, units or
    formats, and not codes (a token with a digit, an underscore or an inner dot: 440605011001, G12, WGS84,
    a file name); links, e-mail addresses and paths are left out.

    >>> english_words("网格 440605011001（G12）导出 CSV，距离 2.6 km")
    []
    >>> english_words("待处理 Pending · Overdue")
    ['Pending', 'Overdue']
    >>> english_words("发送至 https://qyapi.weixin.qq.com/cgi-bin/webhook 的 report.xlsx")
    []
    """
    words = []
    for token in TOKEN.findall(URL_OR_MAIL.sub(" ", value)):
        if any(c.isdigit() for c in token) or "_" in token or "." in token.strip("."):
            continue
        if len(token) >= 2 and token.lower() not in ALLOWED:
            words.append(token)
    return words


def foreign(value: str, lang: str) -> bool:
    """Whether ``value``, shown on a page in ``lang``, is in the other language: Chinese characters (CJK
    punctuation and full-width forms included) on an English page, an English word on a Chinese page.

    >>> foreign("Overdue tasks", "en"), foreign("超期任务", "en"), foreign("超期（3）", "zh")
    (False, True, False)
    >>> foreign("超期 Overdue", "zh"), foreign("Tasks：3", "en")
    (True, True)
    """
    if lang == "en":
        return bool(CJK.search(value))
    return bool(english_words(value))


def foreign_text(driver: webdriver.Chrome, lang: str) -> list[str]:
    """The strings the page in ``driver`` shows that are not in ``lang`` ("zh" or "en"), each once, in page
    order; an attribute's or the title's string is prefixed with where it is (``placeholder: …``)."""
    found: list[str] = []
    for where, value in driver.execute_script(GATHER, lang):
        if where == "html lang" or foreign(value, lang):
            shown = value if where == "text" else f"{where}: {value}"
            if shown not in found:
                found.append(shown[:300])
    return found
