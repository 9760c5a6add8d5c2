"""The string catalogs: every key in both languages, and every key the code asks for by name in the catalogs."""

from __future__ import annotations

import ast
from pathlib import Path

from pages.strings import catalog, graph_config, missing_translations, one_language, text

ROOT = Path(__file__).resolve().parents[2]


def _sources() -> list[Path]:
    """The product's Python files (not the tests, not the virtual environment or other hidden folders)."""
    tops = [top for top in ROOT.iterdir() if top.is_dir() and not top.name.startswith(".") and top.name != "tests"
            and (top / "__init__.py").exists()]
    return [*ROOT.glob("*.py"), *(path for top in tops for path in top.rglob("*.py"))]


def asked_keys() -> dict[str, list[str]]:
    """Every literal key passed to ``pages.strings.text`` (under whatever name it is imported), with where."""
    asked: dict[str, list[str]] = {}
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        names = {alias.asname or alias.name for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module == "pages.strings"
                 for alias in node.names if alias.name == "text"}
        local = path.parent.name == "pages" and path.name == "strings.py"
        if not names and not local:
            continue
        names |= {"text"} if local else set()
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                asked.setdefault(node.args[0].value, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return asked


def test_every_key_is_in_both_languages():
    assert missing_translations() == {"zh": [], "en": []}
    assert set(catalog("zh")) == set(catalog("en"))


def test_every_key_the_code_asks_for_is_in_the_catalogs():
    asked = asked_keys()
    assert len(asked) > 100  # the scan finds the pages' keys (it is not vacuously empty)
    missing = {key: where for key, where in asked.items() if key not in catalog("zh")}
    assert missing == {}


def test_one_language_picks_the_side_of_a_stored_text():
    assert one_language("超出网格 / outside the grid", "en") == "outside the grid"
    assert one_language("超出网格 / outside the grid", "zh") == "超出网格"
    assert one_language("只有中文", "en") == "只有中文"
    assert one_language(None, "en") is None
    assert text("app.title", "fr") == text("app.title", "zh")


def test_the_charts_toolbar_is_in_the_page_language():
    assert graph_config("zh")["locale"] == "zh-CN" and graph_config("en")["locale"] == "en"
    assert graph_config("en")["displaylogo"] is False
    assert "sendChartToCloud" in graph_config("zh")["modeBarButtonsToRemove"]  # no upload to Plotly's cloud
    assert (ROOT / "assets" / "plotly-locale-zh-cn.js").read_text(encoding="utf-8").count("'zh-CN'") >= 1
