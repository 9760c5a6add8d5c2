"""The maps' colour schemes: one source for the browser and the legends, classes that leave no value out."""

import pytest

from layers.palette import DENSITY, FIGURES, MEASURES, SCHEMES, SYMBOLS, fill, js_block, js_in_file, legend_rows
from layers.wall import SUPPRESS_BELOW


def test_the_browser_reads_the_same_palette():
    assert js_in_file() == js_block(), "run `python -m layers.palette` after changing a colour"


@pytest.mark.parametrize("measure", sorted(SCHEMES))
def test_each_scheme_grades_its_figures_without_gaps(measure):
    scheme = SCHEMES[measure]
    for classes in (scheme.hot, scheme.warm):
        assert classes.figure in FIGURES and len(classes.colours) == len(classes.breaks)
        assert list(classes.breaks) == sorted(set(classes.breaks)) and classes.breaks[0] == 1
        ranges = classes.ranges()
        following = zip(ranges, ranges[1:], strict=False)
        assert all(high is not None and high + 1 == nxt for (_, high), (nxt, _) in following)
        assert ranges[-1][1] is None
    colours = [c for classes in (scheme.hot, scheme.warm) for c in classes.colours] + list(scheme.quiet.values())
    assert len(set(colours)) == len(colours), "every class its own colour"


def test_the_hot_figure_wins_then_the_warm_one_then_quiet():
    assert fill("risk", [0, 0, 5, 5]) == SCHEMES["risk"].quiet["dark"]
    assert fill("risk", [0, 1, 0, 0]) == SCHEMES["risk"].warm.colours[0]
    assert fill("risk", [0, 40, 0, 0]) == SCHEMES["risk"].warm.colours[-1]
    assert fill("risk", [1, 40, 0, 0]) == SCHEMES["risk"].hot.colours[0]
    assert fill("risk", [3, 0, 0, 0]) == SCHEMES["risk"].hot.colours[1]
    assert fill("work", [9, 9, 2, 0]) == SCHEMES["work"].warm.colours[0]
    assert fill("work", [0, 0, 9, 7]) == SCHEMES["work"].hot.colours[-1]
    assert fill("work", None, "light") == SCHEMES["work"].quiet["light"]


def test_the_density_starts_where_small_counts_stop_being_hidden():
    assert DENSITY.breaks[0] == SUPPRESS_BELOW


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_every_measure_and_symbol_has_legend_rows(theme):
    for measure in MEASURES:
        rows = legend_rows(measure, theme)
        assert rows and all(style["kind"] in ("fill", "line", "point") for style, _, _ in rows)
    assert len(legend_rows("risk", theme)) == 1 + 3 + 2
    assert legend_rows("checkpoint", theme)[0][0]["fillColor"] == SYMBOLS["checkpoint"][theme]["fillColor"]
    with pytest.raises(ValueError):
        legend_rows("nothing")
