"""The operator CLI, run in-process against the test database (DATABASE_URL)."""

import json

import pytest
from click.testing import CliRunner

from gridctl import main


@pytest.fixture
def run(monkeypatch, seeded_url):
    monkeypatch.setenv("DATABASE_URL", seeded_url)
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_db_url_prints_the_configured_database(run, seeded_url):
    result = run("db", "url")
    assert result.exit_code == 0 and result.output.strip() == seeded_url


def test_db_start_with_database_url_manages_nothing(run):
    result = run("db", "start")
    assert result.exit_code == 0 and "DATABASE_URL" in result.output


def test_grids_check_passes_on_the_reference_district(run):
    result = run("grids", "check", "--json")
    report = json.loads(result.output)
    assert result.exit_code == 0 and report["errors"] == 0 and report["problems"] == []
    assert "all grids pass" in run("grids", "check").output


def test_seed_twice_says_nothing_changed(run):
    result = run("seed", "nanhai")
    assert result.exit_code == 0 and "nothing changed" in result.output and "grids 1042" in result.output


def test_a_refused_import_exits_1_and_lists_each_problem(run, tmp_path):
    import geopandas as gpd
    from shapely import box

    frame = gpd.GeoDataFrame({"code": ["bad", "440605011001001"]},
                             geometry=[box(113.0, 23.0, 113.01, 23.01), box(114.0, 23.0, 114.01, 23.01)], crs=4326)
    frame.to_file(tmp_path / "bad.geojson", driver="GeoJSON")
    result = run("grids", "import", str(tmp_path / "bad.geojson"))
    assert result.exit_code == 1
    assert "nothing was stored" in result.output
    assert "[error] #1 (bad)" in result.output and "[error] #2 (440605011001001)" in result.output


def test_unknown_crs_is_one_clear_line(run, tmp_path):
    (tmp_path / "x.geojson").write_text('{"type":"FeatureCollection","features":[]}')
    result = run("grids", "import", str(tmp_path / "x.geojson"), "--crs", "nonsense")
    assert result.exit_code == 1 and "unknown CRS 'nonsense'" in result.output and "Traceback" not in result.output


@pytest.fixture
def own_copy(database_factory, seeded_engine, monkeypatch):
    """A copy of the seeded district for a test that writes (the template of every other copy stays as seeded)."""
    engine = database_factory("nanhai_cli_feed", copy_of=seeded_engine)
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    return engine


def test_feed_import_match_override_and_export(run, tmp_path, own_copy):
    from sqlalchemy import text

    from tests.matching.feedfiles import valid_id, write_csv

    rows = [["1", "梁志伟", valid_id(901), "13800000001", "", "113.15", "23.03", "WGS84", "返岗人员", "2099-01-01"],
            ["2", "何丽华", "123", "", "", "113.15", "23.03", "WGS84", "确诊", ""]]  # no phone: nothing but the ID
    feed = write_csv(tmp_path / "feed.csv", rows)
    result = run("feed", "import", "--source", "人社局", str(feed))
    assert result.exit_code == 0
    assert "read 2 = stored 1 + rejected 1" in result.output and "row 4" in result.output
    assert "persons 1 (red 0, yellow 0, blue 1" in result.output
    assert "nothing changed" in run("feed", "import", "--source", "人社局", str(feed)).output

    result = run("codes", "override", valid_id(901), "--colour", "red", "--reason", "流调发现密接", "--by", "指挥部")
    assert result.exit_code == 0 and "persons 1 (red 1" in result.output
    with own_copy.connect() as conn:
        rule = conn.execute(text("SELECT rule_id FROM persons")).scalar_one()
    assert rule == "override"
    assert "invalid ID number" in run("codes", "override", "123", "--colour", "red", "--reason", "x", "--by",
                                      "y").output

    out = tmp_path / "flags.xlsx"
    assert run("flags", "export", str(out)).exit_code == 0 and out.stat().st_size > 0
    assert "unsupported" not in run("flags", "unplaced").output
    assert run("flags", "export", str(tmp_path / "flags.pdf")).exit_code == 1


@pytest.fixture
def warnings_copy(database_factory, seeded_engine, monkeypatch):
    """A copy of its own (a name of its own: the CLI's engine of another test's copy may still be pooled)."""
    engine = database_factory("nanhai_cli_warnings", copy_of=seeded_engine)
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    return engine


def test_feed_import_lists_field_warnings_and_the_history_and_export_carry_them(run, tmp_path, warnings_copy):
    """A confirmed case whose phone misses a digit and whose time is unreadable stays in the net (issue 21): stored
    without them, red, with his warnings in the import's output, its CSV, the history and the flags export."""
    import csv

    from tests.matching.feedfiles import valid_id, write_csv

    wrong = valid_id(904)[:-1] + ("0" if valid_id(904)[-1] != "0" else "1")
    rows = [["1", "梁志伟", valid_id(903), "1380000000", "", "113.15", "23.03", "WGS84", "确诊", "上周三"],
            ["2", "何丽华", wrong, "", "", "113.15", "23.03", "WGS84", "确诊", ""]]  # no phone: the ID rejects him
    feed = write_csv(tmp_path / "feed.csv", rows)
    rejected, warned = tmp_path / "rejected.csv", tmp_path / "warned.csv"
    result = run("feed", "import", "--source", "卫健局", str(feed), "--rejections", str(rejected),
                 "--warnings", str(warned))
    assert result.exit_code == 0, result.output
    assert "row 3 字段警告 / field warning (phone): 手机号格式错误 / phone malformed" in result.output
    assert "row 3 字段警告 / field warning (reported_at): 登记时间无法解析 / reported_at unparseable" in result.output
    assert "row 4: 身份证校验位错误 / ID-card check digit wrong" in result.output
    assert "read 2 = stored 1 + rejected 1, rows with field warnings: 1" in result.output
    assert "persons 1 (red 1" in result.output
    with warned.open(encoding="utf-8-sig") as sheet:
        assert list(csv.reader(sheet)) == [["row", "field", "reason"],
                                           ["3", "phone", "手机号格式错误 / phone malformed"],
                                           ["3", "reported_at", "登记时间无法解析 / reported_at unparseable"]]
    with rejected.open(encoding="utf-8-sig") as sheet:
        assert list(csv.reader(sheet)) == [["row", "reasons"], ["4", "身份证校验位错误 / ID-card check digit wrong"]]

    listed = run("feed", "history").output
    assert "2 = 1 + 1（字段警告 1 行 / field warnings: 1）" in listed

    out = tmp_path / "flags.csv"
    assert run("flags", "export", str(out)).exit_code == 0
    with out.open(encoding="utf-8-sig") as sheet:
        flags = list(csv.DictReader(sheet))
    assert len(flags) == 1 and flags[0]["colour"] == "red"
    assert flags[0]["warnings"] == ("手机号格式错误 / phone malformed（卫健局 第3行）；"
                                    "登记时间无法解析 / reported_at unparseable（卫健局 第3行）")
