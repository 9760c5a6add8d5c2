"""The matcher on Spark gives the in-process matcher's answers, row for row, on a real multi-process cluster.

The cluster is Spark's ``local-cluster[2,1,1024]``: a master and two executor JVMs started by the test, each with
its own Python workers, so the shuffle of records by person and the broadcast of the rules and the locator cross
process boundaries. Java and pyspark are installed by ``make setup``; nothing here is skipped without them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import Engine, text

from demo.feeds import district_of, write_feed
from grids import repository as grid_repository
from matching import repository
from matching.pipeline import Replay, import_feed, run_match
from matching.spark import SparkRunFailed, SparkSettings, run_match_spark, session
from observation.fever import FEVER, FOLLOW_UP, store_follow_up_record
from tests.matching.feedfiles import valid_id, write_csv

# the overrides are stamped with the database's clock: the runs are a day and more ahead of it, so that one
# override has expired by then
NOW = pd.Timestamp.now(tz="UTC").floor("h") + pd.Timedelta(days=2)
FIRST = NOW - pd.Timedelta(days=5)


def _beijing(moment: pd.Timestamp) -> str:
    return f"{moment.tz_convert('Asia/Shanghai'):%Y-%m-%d %H:%M}"


BEFORE = _beijing(FIRST - pd.Timedelta(days=1))
EXPIRED = _beijing(FIRST - pd.Timedelta(days=40))
LATER = _beijing(NOW - pd.Timedelta(days=1))
# what each run stamps with the database's own clock, numbers by its own order of inserts, or draws at random
# (a new plan's self-report nonce): not an answer
RUN_COLUMNS = {"id", "created_at", "updated_at", "started_at", "finished_at", "duration_ms", "trained_at",
               "decided_at", "imported_at", "stats", "token_nonce"}
SKIPPED_TABLES = {"spatial_ref_sys", "alembic_version"}


@pytest.fixture(scope="module")
def spark():
    spark = session(SparkSettings(master="local-cluster[2,1,1024]", partitions=4))
    yield spark
    spark.stop()


@pytest.fixture(scope="module")
def awkward(database_factory, pristine_district, tmp_path_factory):
    """The district with a feed holding every awkward case, matched once (the linkage model trained then, as a
    district's first run does), then changed: a second feed, an override, a follow-up fever."""
    folder = tmp_path_factory.mktemp("spark")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NANHAI_PERSON_KEY_SECRET", "spark-test-secret")
        patch.setenv("NANHAI_FERNET_KEY", Fernet.generate_key().decode())
        engine = database_factory("nanhai_spark", copy_of=pristine_district)
        with engine.connect() as conn:
            grids = grid_repository.load_grids(conn)
            _, communities, book = repository.load_places(conn)
        book = book.merge(communities[["code", "name_short"]].rename(
            columns={"code": "community_code", "name_short": "community_name"}))
        generated = write_feed(folder / "generated.csv", 2_000, district_of(grids), book, seed=5, address_share=0.2,
                               gcj_share=0.3, now=FIRST.tz_convert("Asia/Shanghai").tz_localize(None),
                               household_share=0.05, travel_share=0.3, native_share=0.05)
        with_id_less = _without_ids(generated, folder / "id_less.csv")
        assert import_feed(engine, with_id_less, "公安").rows_stored > 1_900
        assert import_feed(engine, _hand_rows(grids, folder / "hand.csv"), "卫健").rows_stored == 9
        run_match(engine, now=FIRST)
        with engine.begin() as conn:
            keys = conn.execute(text("SELECT person_key FROM persons WHERE NOT provisional ORDER BY person_key "
                                     "LIMIT 3")).scalars().all()
            repository.add_override(conn, keys[0], "red", "人工核实 / checked by hand", "tester",
                                    (NOW + pd.Timedelta(days=3)).to_pydatetime())
            expired_by_now = pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=1)
            repository.add_override(conn, keys[1], "green", "已解除 / released", "tester",
                                    expired_by_now.to_pydatetime())
            assert store_follow_up_record(conn, keys[2], FEVER, (NOW - pd.Timedelta(hours=2)).to_pydatetime())
        assert import_feed(engine, _second_feed(folder / "second.csv"), "交通").rows_stored == 3
        yield engine


def _without_ids(path, out):
    """The generated feed with its last tenth made second records of earlier people, without ID numbers."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    rng = np.random.default_rng(3)
    tail = np.arange(len(frame) - len(frame) // 10, len(frame))
    people = rng.choice(len(frame) - len(tail), size=len(tail), replace=False)
    for column in ("姓名", "手机号", "现住址", "经度", "纬度", "坐标系"):
        frame.loc[tail, column] = frame[column].to_numpy()[people]
    frame.loc[tail, "身份证号码"] = ""
    frame.to_csv(out, index=False)
    return out


def _hand_rows(grids, path):
    """Every coordinate system, a point on the edge two grids share, one outside the district, an address only,
    an address nobody knows, a record old enough to have expired."""
    first, second = grids.geometry.values[0], None
    for geom in grids.geometry.values[1:]:
        if first.touches(geom) or first.intersects(geom):
            second = geom
            break
    assert second is not None
    edge = shapely.intersection(first.boundary, second.boundary)
    on_edge = edge.interpolate(0.5, normalized=True)
    inside = first.representative_point()
    rows = [
        [1, "陈一", valid_id(901), "13800000001", "", f"{inside.x:.6f}", f"{inside.y:.6f}", "WGS84", "确诊", BEFORE],
        [2, "陈二", valid_id(902), "13800000002", "", f"{inside.x + 0.0052:.6f}", f"{inside.y - 0.0025:.6f}", "GCJ02",
         "密切接触者", BEFORE],
        [3, "陈三", valid_id(903), "13800000003", "", f"{inside.x + 0.0117:.6f}", f"{inside.y + 0.0035:.6f}", "BD09",
         "疑似", BEFORE],
        [4, "陈四", valid_id(904), "13800000004", "", f"{inside.x:.6f}", f"{inside.y:.6f}", "CGCS2000", "湖北返乡",
         BEFORE],
        [5, "陈五", valid_id(905), "13800000005", "", f"{on_edge.x:.12f}", f"{on_edge.y:.12f}", "WGS84", "确诊",
         BEFORE],
        [6, "陈六", valid_id(906), "13800000006", "", "116.397", "39.909", "WGS84", "确诊", BEFORE],
        [7, "陈七", valid_id(907), "13800000007", "广东省佛山市南海区桂城街道南海大道北1号", "", "", "", "密切接触者",
         BEFORE],
        [8, "陈八", valid_id(908), "13800000008", "火星路无名小区", "", "", "", "确诊", BEFORE],
        [9, "陈九", valid_id(909), "13800000009", "", f"{inside.x:.6f}", f"{inside.y:.6f}", "WGS84", "密切接触者",
         EXPIRED],
    ]
    return write_csv(path, [[str(c) for c in row] for row in rows])


def _second_feed(path):
    """A later list: one person's code rises, a new person, one given again by a phone-only operator (no ID)."""
    rows = [[1, "陈九", valid_id(909), "13800000009", "", "", "", "", "确诊", LATER],
            [2, "林十", valid_id(910), "13800000010", "广东省佛山市南海区桂城街道南海大道北1号", "", "", "", "疑似",
             LATER],
            [3, "陈一", "", "13800000001", "", "", "", "", "确诊", LATER]]
    return write_csv(path, [[str(c) for c in row] for row in rows])


def _tables(engine: Engine) -> dict[str, pd.DataFrame]:
    """Every table of the database, its run columns left out, sorted by all the others."""
    with engine.connect() as conn:
        names = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")).scalars()
        frames = {}
        for name in names:
            if name in SKIPPED_TABLES:
                continue
            frame = pd.read_sql(text(f'SELECT * FROM "{name}"'), conn)
            frame = frame.drop(columns=[c for c in frame.columns if c in RUN_COLUMNS]).astype(str)
            frames[name] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return frames


def test_spark_gives_the_same_answers_as_the_in_process_matcher(database_factory, awkward, spark):
    in_process = database_factory("nanhai_spark_in_process", copy_of=awkward)
    on_spark = database_factory("nanhai_spark_cluster", copy_of=awkward)
    ours = run_match(in_process, now=NOW)
    steps: list[tuple[str, float]] = []
    theirs = run_match_spark(on_spark, now=NOW, spark=spark, progress=lambda step, f: steps.append((step, f)))
    expected, got = _tables(in_process), _tables(on_spark)
    assert theirs["spark_partitions"] == 4 and theirs["spark_shuffle_bytes"] > 100_000  # the records crossed over
    assert {k: v for k, v in theirs.items() if not k.startswith("spark_")} == ours
    assert ours["persons"] > 1_800 and ours["red"] and ours["yellow"] and ours["unplaced_flags"] >= 2
    assert ours["unidentified_records"] > 150 and ours["linked_auto"] > 0
    assert any("集群" in step for step, _ in steps) and steps[-1] == ("完成 / done", 1.0)
    assert expected.keys() == got.keys()
    checked = 0
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(got[name], frame, obj=name)
        checked += len(frame)
    assert checked > 10_000
    with in_process.connect() as conn:  # the awkward cases were there to be compared
        methods = set(conn.execute(text("SELECT DISTINCT method FROM persons WHERE method IS NOT NULL")).scalars())
        reasons = conn.execute(text("SELECT count(*) FROM persons WHERE unplaced_reason IS NOT NULL")).scalar()
        rules = set(conn.execute(text("SELECT DISTINCT rule_id FROM persons")).scalars())
        fevers = conn.execute(text("SELECT count(*) FROM source_records WHERE source = :s"), {"s": FOLLOW_UP}).scalar()
    assert "point" in methods and len(methods) >= 2 and reasons >= 2 and fevers == 1
    assert {"override", "red-follow-up-fever"} <= rules


def test_a_replay_on_spark_is_the_in_process_replay(database_factory, awkward, spark):
    """``gridctl match --as-of … --engine spark``: the codes of that moment (only what was registered and overridden
    by then) into a named replay, the same rows as the in-process engine's, today's codes untouched."""
    in_process = database_factory("nanhai_spark_replay_a", copy_of=awkward)
    on_spark = database_factory("nanhai_spark_replay_b", copy_of=awkward)
    moment = FIRST + pd.Timedelta(hours=2)  # after the first feeds, before the second, the overrides and the fever
    before = _tables(on_spark)["persons"]
    ours = run_match(in_process, replay=Replay("回放", moment, "tester"))
    theirs = run_match_spark(on_spark, replay=Replay("回放", moment, "tester"), spark=spark)
    assert {k: v for k, v in theirs.items() if not k.startswith(("spark_", "replay_id"))} == \
        {k: v for k, v in ours.items() if k != "replay_id"}
    expected, got = _tables(in_process), _tables(on_spark)
    assert len(expected["replay_persons"]) > 1_800
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(got[name], frame, obj=name)
    pd.testing.assert_frame_equal(got["persons"], before, obj="today's persons")


def test_a_failed_spark_run_stores_nothing_and_says_why(database_factory, pristine_district, awkward, spark,
                                                        tmp_path):
    engine = database_factory("nanhai_spark_failed", copy_of=pristine_district)
    with engine.connect() as conn:
        grids = grid_repository.load_grids(conn)
    import_feed(engine, _hand_rows(grids, tmp_path / "hand.csv"), "卫健")
    run_match(engine, now=FIRST)  # the previous results
    with engine.begin() as conn:  # an address sealed under another key: the executor that places him cannot open it
        changed = conn.execute(text(
            "UPDATE source_records SET address_sealed = :t WHERE lon IS NULL AND address_sealed IS NOT NULL"),
            {"t": Fernet(Fernet.generate_key()).encrypt("广东省佛山市南海区桂城街道".encode()).decode()}).rowcount
    assert changed == 2
    before = _tables(engine)
    with pytest.raises(SparkRunFailed, match="InvalidToken") as failure:
        run_match_spark(engine, now=NOW, spark=spark)
    assert "上一次的赋码仍然有效" in str(failure.value)
    after = _tables(engine)
    assert before.keys() == after.keys()
    for name, frame in before.items():
        pd.testing.assert_frame_equal(after[name], frame, obj=name)


def test_gridctl_matches_on_spark_and_refuses_what_it_cannot_use(database_factory, awkward, spark, monkeypatch):
    from gridctl import main

    engine = database_factory("nanhai_spark_cli", copy_of=awkward)
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    runner = CliRunner()
    bad = runner.invoke(main, ["match", "--engine", "spark", "--conf", "spark.executor.cores"])
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.output
    stray = runner.invoke(main, ["match", "--master", "local[2]"])
    assert stray.exit_code == 2 and "--engine spark" in stray.output
    other = runner.invoke(main, ["match", "--engine", "spark", "--master", "local[2]"])
    assert other.exit_code == 1 and "local-cluster[2,1,1024]" in other.output  # one Spark context per process
    done = runner.invoke(main, ["match", "--engine", "spark", "--master", "local-cluster[2,1,1024]"])
    assert done.exit_code == 0, done.output
    assert "persons" in done.output and "tasks created" in done.output
    assert spark.sparkContext._jsc is not None, "the test module's session is left running"
    with engine.connect() as conn:
        runs = conn.execute(text("SELECT count(*) FROM match_runs")).scalar()
        coded = conn.execute(text("SELECT count(*) FROM persons WHERE colour <> 'green'")).scalar()
    assert runs == 2 and coded > 100


def test_results_are_read_ahead_in_order_and_a_failure_or_an_early_stop_ends_the_reader():
    import threading

    from matching.spark import _read_ahead

    frames = [pd.DataFrame({"n": [i]}) for i in range(5)]
    assert [f["n"].iloc[0] for f in _read_ahead(iter(frames))] == [0, 1, 2, 3, 4]

    def broken():
        yield frames[0]
        raise OSError("result file unreadable")

    with pytest.raises(OSError, match="unreadable"):
        list(_read_ahead(broken()))
    threads = threading.active_count()
    reading = _read_ahead(iter(frames))
    assert next(reading)["n"].iloc[0] == 0
    reading.close()  # the store failed: the caller stops
    assert threading.active_count() <= threads
