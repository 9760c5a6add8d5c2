"""Issue 22 end to end against the real database: a travel list codes by arrival, a native of a key area with no
travel record gets one verification task in his grid, the export explains each, and a replay follows the clock."""

import pandas as pd
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from matching.export import export_flags
from matching.pipeline import Replay, import_feed, run_match
from matching.privacy import load_vault
from matching.replay_repository import replay_rows
from tasks.intake import take_requests
from tests.matching.feedfiles import HEADER, valid_id, write_csv

NOW = pd.Timestamp.now(tz="UTC").floor("min")
TODAY = NOW.tz_convert("Asia/Shanghai").date()
TRAVEL_HEADER = [*HEADER, "出发地", "抵达日期"]


def day(days_ago: int) -> str:
    return (pd.Timestamp(TODAY) - pd.Timedelta(days=days_ago)).strftime("%Y-%m-%d")


def row(serial: int, category: str = "", origin: str = "", arrived: str = "", region: str = "440605") -> list[str]:
    return [str(serial), "张小明", valid_id(serial, region=region), "13812345678", "", "113.15", "23.03", "WGS84",
            category, (NOW - pd.Timedelta(hours=2)).tz_convert("Asia/Shanghai").strftime("%Y-%m-%d %H:%M"),
            origin, arrived]


def key(serial: int, region: str = "440605") -> str:
    return load_vault().person_key(valid_id(serial, region=region))


@pytest.fixture(scope="module")
def engine(database_factory, seeded_engine):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NANHAI_PERSON_KEY_SECRET", "test-secret")
        patch.setenv("NANHAI_FERNET_KEY", Fernet.generate_key().decode())
        yield database_factory("nanhai_rule_requests", copy_of=seeded_engine)


def rows_of(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def test_arrival_codes_verification_once_and_the_export_explains(engine, tmp_path):
    travel = write_csv(tmp_path / "travel.csv", [
        row(1, origin="湖北省宜昌市", arrived=day(3)),        # back three days ago: yellow until arrival + 14
        row(2, origin="湖北省宜昌市", arrived=day(20)),       # twenty days ago: green
        row(3, region="420506"),                              # a native of 宜昌 with no travel record
        row(4)], header=TRAVEL_HEADER)
    imported = import_feed(engine, travel, "交通")
    assert (imported.rows_stored, imported.rows_rejected, imported.rows_warned) == (4, 0, 0)
    stats = run_match(engine, now=NOW)
    assert stats["rule_task_requests"] == 1 and stats["yellow"] == 1 and stats["green"] == 3
    persons = {r.person_key: r for r in rows_of(engine, "SELECT person_key, colour, expires_at, explanation "
                                                        "FROM persons")}
    near = persons[key(1)]
    arrival = pd.Timestamp(day(3)).tz_localize("Asia/Shanghai")
    assert near.colour == "yellow" and pd.Timestamp(near.expires_at) == arrival + pd.Timedelta(days=14)
    assert f"自抵达日期 {day(3)} 起 14 天" in near.explanation and "湖北省宜昌市" in near.explanation
    assert persons[key(2)].colour == "green" and persons[key(3, "420506")].colour == "green"

    requests = rows_of(engine, "SELECT person_key, kind, rule_id, colour, status, explanation, grid_id "
                               "FROM task_requests WHERE rule_id IS NOT NULL")
    assert [(r.person_key, r.kind, r.rule_id, r.colour, r.status) for r in requests] == [
        (key(3, "420506"), "verification", "verify-native-place", "green", "pending")]
    assert "湖北省宜昌市" in requests[0].explanation and requests[0].grid_id is not None

    # once while the rule holds: the next match asks nothing more
    again = run_match(engine, now=NOW)
    assert again["rule_task_requests"] == 0 and again["code_changes"] == 0
    assert len(rows_of(engine, "SELECT 1 FROM task_requests WHERE rule_id IS NOT NULL")) == 1

    # the request becomes a verification task in his grid
    with engine.begin() as conn:
        made = take_requests(conn, NOW.to_pydatetime())
    assert made["tasks"] >= 1
    (task,) = rows_of(engine, "SELECT t.kind, t.title, t.detail, g.code FROM tasks t JOIN grids g ON "
                              "g.id = t.grid_id WHERE t.person_key = :k", k=key(3, "420506"))
    assert task.kind == "verification" and task.title.startswith("排查核实") and "湖北" in task.detail

    path = tmp_path / "flags.csv"
    export_flags(engine, path)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False).set_index("person_key")
    assert "自抵达日期" in frame.loc[key(1), "explanation"]
    native = frame.loc[key(3, "420506")]
    assert native["colour"] == "green" and "verify-native-place" in native["tasks"] and native["explanation"] == ""
    assert key(4) not in frame.index and key(2) not in frame.index


def test_a_travel_record_ends_the_verification_and_withdraws_what_is_pending(engine, tmp_path):
    native = row(5, region="420902")                    # 孝感
    import_feed(engine, write_csv(tmp_path / "police.csv", [native]), "公安")
    run_match(engine, now=NOW)
    assert rows_of(engine, "SELECT status FROM task_requests WHERE person_key = :k", k=key(5, "420902")) == \
        [("pending",)]
    import_feed(engine, write_csv(tmp_path / "rail.csv", [row(5, origin="湖南省长沙市", arrived=day(2),
                                                             region="420902")], header=TRAVEL_HEADER), "铁路")
    stats = run_match(engine, now=NOW)
    assert stats["rule_task_requests"] == 0
    assert rows_of(engine, "SELECT status FROM task_requests WHERE person_key = :k", k=key(5, "420902")) == \
        [("withdrawn",)]
    assert rows_of(engine, "SELECT 1 FROM rule_holds WHERE person_key = :k", k=key(5, "420902")) == []


def test_a_replay_counts_the_days_from_arrival(engine):
    """Fifteen days after the arrival the yellow code of the first test is over; eleven days after it holds."""
    arrival = pd.Timestamp(day(3)).tz_localize("Asia/Shanghai").tz_convert("UTC")
    run_match(engine, replay=Replay("after-15-days", arrival + pd.Timedelta(days=15)))
    run_match(engine, replay=Replay("after-11-days", arrival + pd.Timedelta(days=11)))
    with engine.connect() as conn:
        late, early = replay_rows(conn, "after-15-days"), replay_rows(conn, "after-11-days")
    assert key(1) not in set(late["person_key"])
    coded = early.set_index("person_key").loc[key(1)]
    assert coded["colour"] == "yellow" and f"自抵达日期 {day(3)}" in coded["explanation"]
