"""The maps' colour schemes: one for risk, one for work, one for the H3 density, and the point and line symbols.

One source of truth for every map (the wall and the dispatch console) and for
their legends. The browser reads the same data as ``window.nanhai.palette``: a
block of ``assets/nanhai.js`` written from here by ``python -m layers.palette``
(a test fails when the two differ); ``nanhai.palette.fill(measure, values)``
there colours a grid exactly as :func:`fill` does here.

A grid's figures are ``[red, yellow, open, overdue]``
(:func:`tasks.overview.grid_figures`). A scheme colours a grid by its *hot*
figure when it has any (red persons; overdue tasks), else by its *warm* one
(yellow persons; open tasks), else it stays *quiet*: a legend of a few classes
that says in words what each colour means, where a weighted score could not.

No Dash here (the import contracts keep ``layers`` free of it): the legend's
labels are message keys with their numbers; :func:`pages.wall.legend` writes
them in the page's language.

>>> fill("risk", [0, 2, 0, 0]), fill("risk", [3, 2, 0, 0]) == RISK.hot.colours[1]
('#ffe066', True)
>>> [label for _, label, _ in legend_rows("work")][:2]
['legend.quiet.work', 'legend.overdue']
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

FIGURES = ("red", "yellow", "open", "overdue")  # the order of a grid's figures
THEMES = ("dark", "light")  # the wall is dark, the dispatch console light


@dataclass(frozen=True)
class Classes:
    """Graded classes of one figure: ``breaks`` are the classes' lower bounds (the first is where the figure starts
    to count), ``colours`` one per class; ``label`` the legend's message key (with ``{range}``)."""

    figure: str
    breaks: tuple[int, ...]
    colours: tuple[str, ...]
    label: str

    def level(self, value: int) -> int:
        """The class of ``value`` (0-based), -1 below the first break."""
        return sum(value >= b for b in self.breaks) - 1

    def ranges(self) -> list[tuple[int, int | None]]:
        """Each class's (lowest, highest) value, highest None for the last (open-ended) class."""
        return [(b, nxt - 1 if nxt is not None else None)
                for b, nxt in zip(self.breaks, (*self.breaks[1:], None), strict=True)]


@dataclass(frozen=True)
class Scheme:
    """A grid colouring: ``hot`` classes win over ``warm`` ones; a grid with neither is ``quiet`` (per theme)."""

    measure: str
    hot: Classes
    warm: Classes
    quiet: dict[str, str]
    opacity: float


QUIET = {"dark": "#22313f", "light": "#eef2f6"}

RISK = Scheme(
    "risk",
    hot=Classes("red", (1, 2, 5), ("#ff8787", "#f03e3e", "#c2255c"), "legend.red"),
    warm=Classes("yellow", (1, 3), ("#ffe066", "#fab005"), "legend.yellow"),
    quiet=QUIET, opacity=0.85)

WORK = Scheme(
    "work",
    hot=Classes("overdue", (1, 2, 5), ("#ffa94d", "#f76707", "#d9480f"), "legend.overdue"),
    warm=Classes("open", (1, 3), ("#a5d8ff", "#339af0"), "legend.open"),
    quiet=QUIET, opacity=0.85)

SCHEMES = {scheme.measure: scheme for scheme in (RISK, WORK)}

# Red and yellow persons per H3 cell; cells under the first break are not sent at all (layers.wall.SUPPRESS_BELOW).
DENSITY = Classes("persons", (5, 10, 20, 50), ("#e599f7", "#cc5de8", "#ae3ec9", "#862e9c"), "legend.density")
DENSITY_OPACITY = 0.45

# Points and lines, per theme: drawn above the grid fill (see layers.wall's panes). Sizes are at 1920 px wide;
# the wall scales them with its width (nanhai.wall.scale).
SYMBOLS = {
    "checkpoint": {"dark": {"color": "#0b1622", "fillColor": "#f8f9fa", "radius": 3, "weight": 1},
                   "light": {"color": "#ffffff", "fillColor": "#1864ab", "radius": 3.5, "weight": 1}},
    "town": {"dark": {"color": "#e3eef8", "weight": 2.4}, "light": {"color": "#243b53", "weight": 2.4}},
    "community": {"dark": {"color": "#8fa9c2", "weight": 0.9, "dashArray": "4 3"},
                  "light": {"color": "#627d98", "weight": 1.2, "dashArray": "4 3"}},
}
MEASURES = ("risk", "work", "density", "checkpoint", "town", "community")  # every measure and symbol with a legend

JS_FILE = Path(__file__).resolve().parent.parent / "assets" / "nanhai.js"
JS_BLOCK = re.compile(r"(/\* palette: BEGIN[^\n]*\n)(.*?)(/\* palette: END \*/)", re.S)


def fill(measure: str, values: list[int] | None, theme: str = "dark") -> str:
    """The fill colour of a grid with figures ``values`` ([red, yellow, open, overdue]) coloured by ``measure``."""
    scheme = SCHEMES[measure]
    values = values or [0, 0, 0, 0]
    for classes in (scheme.hot, scheme.warm):
        level = classes.level(values[FIGURES.index(classes.figure)])
        if level >= 0:
            return classes.colours[level]
    return scheme.quiet[theme]


def legend_rows(measure: str, theme: str = "dark") -> list[tuple[dict, str, dict]]:
    """The legend of ``measure`` (a scheme, ``density``, or a symbol), top to bottom: (swatch style, message key,
    the key's arguments). A swatch style has ``kind`` (``fill``, ``line`` or ``point``) and its colours."""
    if measure in SCHEMES:
        scheme = SCHEMES[measure]
        quiet = {"kind": "fill", "color": scheme.quiet[theme]}
        rows: list[tuple[dict, str, dict]] = [(quiet, f"legend.quiet.{measure}", {})]
        for classes in (scheme.hot, scheme.warm):
            rows += [({"kind": "fill", "color": colour}, classes.label, {"low": low, "high": high})
                     for colour, (low, high) in zip(classes.colours, classes.ranges(), strict=True)]
        return rows
    if measure == "density":
        return [({"kind": "fill", "color": colour, "opacity": DENSITY_OPACITY}, DENSITY.label,
                 {"low": low, "high": high})
                for colour, (low, high) in zip(DENSITY.colours, DENSITY.ranges(), strict=True)]
    if measure in SYMBOLS:
        kind = "point" if measure == "checkpoint" else "line"
        return [({"kind": kind, **SYMBOLS[measure][theme]}, f"legend.{measure}", {})]
    raise ValueError(f"no legend for {measure}")


def browser_palette() -> dict:
    """What ``window.nanhai.palette`` holds: the schemes, the density classes and the symbols."""
    return {"figures": list(FIGURES), "schemes": {m: asdict(s) for m, s in SCHEMES.items()},
            "density": {**asdict(DENSITY), "opacity": DENSITY_OPACITY}, "symbols": SYMBOLS}


def js_block() -> str:
    """The palette as the JavaScript statement ``assets/nanhai.js`` carries between its palette markers."""
    return f"window.nanhai.palette = {json.dumps(browser_palette(), sort_keys=True)};\n"


def js_in_file(path: Path = JS_FILE) -> str | None:
    """The palette statement currently in ``path`` (None when the markers are missing)."""
    found = JS_BLOCK.search(path.read_text(encoding="utf-8"))
    return found.group(2) if found else None


def write_js(path: Path = JS_FILE) -> bool:
    """Rewrite the palette block of ``path`` from this module; True when it changed."""
    source = path.read_text(encoding="utf-8")
    if not JS_BLOCK.search(source):
        raise ValueError(f"{path} has no palette markers")
    updated = JS_BLOCK.sub(lambda m: m.group(1) + js_block() + m.group(3), source)
    if updated != source:
        path.write_text(updated, encoding="utf-8")
    return updated != source


if __name__ == "__main__":  # python -m layers.palette: after changing a colour here
    sys.stdout.write("assets/nanhai.js palette " + ("rewritten\n" if write_js() else "already current\n"))
