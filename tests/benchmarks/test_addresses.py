"""The address benchmark: its generated set has known, settled answers, and the matcher's figure on it is a floor.

3,000 addresses with a fixed seed (the benchmark itself draws 20,000): at least 99 % of those that name their
community are placed in it, none that names its town is placed in a wrong community, and the controls (a town
alone, a name found in two towns alone) are left unplaced. Speed is measured by ``gridctl bench addresses``, not here.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from benchmarks.addresses import AddressSet, GeneratedAddress, addresses_benchmark, measure
from gridctl import main
from matching import repository
from matching.addresses import NOT_RECOGNISED, AddressMatcher, Placement

COUNT, SEED = 3_000, 21


@pytest.fixture(scope="module")
def district(seeded_engine):
    with seeded_engine.connect() as conn:
        return repository.load_places(conn)


@pytest.fixture(scope="module")
def drawn(district):
    return AddressSet(*district).draw(COUNT, SEED)


@pytest.fixture(scope="module")
def figures(district, drawn):
    lines: list[str] = []
    result = measure(AddressMatcher(*district), drawn, district[2], echo=lines.append)
    return result, lines


def test_the_set_is_drawn_again_the_same_for_the_same_seed(district, drawn):
    assert AddressSet(*district).draw(COUNT, SEED) == drawn
    assert AddressSet(*district).draw(200, SEED + 1) != drawn[:200]


def test_every_address_carries_its_answer_and_every_style_is_drawn(district, drawn):
    _, communities, book = district
    known = set(zip(book["community_code"], book["text"], strict=True))
    assert {a.community_code for a in drawn} <= set(communities["code"])
    assert all((a.community_code, a.standard_text) in known for a in drawn if a.standard_text is not None)
    styles = {(dimension, value) for a in drawn for dimension, value in a.styles.items()}
    expected = {("prefix", v) for v in ("广东省佛山市南海区", "佛山市南海区", "南海区", "佛山南海", "none")}
    expected |= {("town", v) for v in ("full", "short", "former", "after", "none")}
    expected |= {("community", v) for v in ("official", "registered", "variant", "typo", "none")}
    expected |= {("street", v) for v in ("standard", "room", "estate_short", "typo", "none")}
    expected |= {("width", v) for v in ("half", "full_width", "spaces")}
    expected |= {("focus", "name in two towns"), ("focus", "named like a former town"),
                 ("control", "town alone"), ("control", "name in two towns, alone")}
    assert expected <= styles
    assert 0.95 < sum(a.names_community for a in drawn) / len(drawn) < 1


def test_the_matcher_places_the_right_community_for_at_least_99_percent(figures):
    result, lines = figures
    assert result["addresses"] == COUNT
    assert result["placed_right_share"] >= 0.99, lines
    assert result["placed_right_share"] + result["wrong_share"] + result["unplaced_share"] == pytest.approx(1)


def test_no_address_that_names_its_town_is_placed_in_a_wrong_community(figures):
    result, lines = figures
    assert result["wrong_when_town_named"] == 0, lines


def test_the_controls_are_not_guessed(figures):
    result, lines = figures
    assert result["controls"] > 0 and result["controls_placed"] == 0, lines


def test_the_failures_are_told_by_reason():
    """A matcher that knows nothing: every address unplaced, each reason counted and shown."""

    class Nothing:
        def place(self, address: str) -> Placement:
            return Placement(None, None, None, None, 0.0, NOT_RECOGNISED)

    drawn = [GeneratedAddress("桂城街道灯湖社区", "440605011020", None, True, True, {"town": "full"})]
    lines: list[str] = []
    result = measure(Nothing(), drawn, pd.DataFrame(columns=["community_code", "text", "lon", "lat"]),
                     echo=lines.append)
    assert result["unplaced_share"] == 1 and result["failures"] == {"address not recognised": 1}
    assert any("address not recognised: 1" in line for line in lines)


def test_the_command_prints_styles_reasons_and_a_json_last_line(monkeypatch, seeded_engine):
    monkeypatch.setenv("DATABASE_URL", seeded_engine.url.render_as_string(hide_password=False))
    out = CliRunner().invoke(main, ["bench", "addresses", "--count", "400", "--seed", "3"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    lines = out.output.strip().splitlines()
    result = json.loads(lines[-1])
    assert {"addresses", "placed_right_share", "wrong_share", "unplaced_share", "seconds"} <= set(result)
    assert result["addresses"] == 400 and result["seed"] == 3
    assert any("town=former" in line for line in lines) and any("community=typo" in line for line in lines)


def test_the_benchmark_function_reports_its_timing(seeded_engine):
    result = addresses_benchmark(seeded_engine, 200, 4, echo=lambda _: None)
    assert result["per_address_us"] > 0 and result["build_seconds"] >= 0 and result["addresses"] == 200
