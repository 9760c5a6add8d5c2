"""Feeds in and flags out, against the real database."""

import os

import pandas as pd
import pytest
from cryptography.fernet import Fernet
from openpyxl import load_workbook
from sqlalchemy import text

from benchmarks.matcher import locate_benchmark
from gis.errors import GridError, ImportRejected, NoGrids
from grids.seeding import seed_nanhai
from matching import repository
from matching.export import COLUMNS, export_flags
from matching.pipeline import import_feed, run_match, unplaced
from matching.privacy import load_vault
from tests.matching.feedfiles import valid_id, write_csv

NOW = pd.Timestamp("2026-11-25 12:00", tz="UTC")


@pytest.fixture(scope="module")
def engine(database_factory, pristine_district):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NANHAI_PERSON_KEY_SECRET", "test-secret")
        patch.setenv("NANHAI_FERNET_KEY", Fernet.generate_key().decode())
        patch.setattr("matching.pipeline.PLACE_CHUNK", 3)  # every match here is placed and compared in chunks
        yield database_factory("nanhai_match", copy_of=pristine_district)  # the seeded district, copied


def person(serial, category, lon="113.15", lat="23.03", address="", crs="WGS84", name="张小明",
           when="2026-11-24 09:00"):
    return [str(serial), name, valid_id(serial), "13812345678", address, lon, lat, crs, category, when]


def scalar(engine, sql, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def bad_id(serial):
    """``valid_id(serial)`` with a wrong check digit."""
    return valid_id(serial)[:-1] + ("0" if valid_id(serial)[-1] != "0" else "1")


def test_import_accounts_for_every_row_and_twice_changes_nothing(engine, tmp_path):
    """A confirmed case whose longitude is garbled stays in the net, stored without a point and with a field
    warning (issue 21); a row whose ID number is wrong, with nothing else to link him by, is rejected."""
    unknown = person(4, "")
    unknown[2], unknown[3] = bad_id(4), ""  # no phone, and a name without birth date or address: no identity
    rows = [person(1, "密切接触者"), person(2, "返岗人员"), person(3, "确诊", lon="东经"), unknown]
    path = write_csv(tmp_path / "health.csv", rows)
    first = import_feed(engine, path, "卫健")
    assert (first.rows_read, first.rows_stored, first.rows_rejected, first.rows_warned) == (4, 3, 1, 1)
    assert first.rejections == [(6, "身份证校验位错误 / ID-card check digit wrong")]
    assert first.field_warnings == [(5, "lon, lat", "坐标无法解析 / coordinates unparseable")]
    again = import_feed(engine, path, "卫健")
    assert again.already_imported and (again.rows_stored, again.rows_rejected, again.rows_warned) == (3, 1, 1)
    assert scalar(engine, "SELECT count(*) FROM source_records") == 3
    assert scalar(engine, "SELECT count(*) FROM feed_rejections") == 1
    assert scalar(engine, "SELECT rows_read || '=' || rows_stored || '+' || rows_rejected || ' ' || rows_warned "
                          "FROM feed_files") == "4=3+1 1"
    with engine.connect() as conn:
        warned = conn.execute(text("SELECT row_number, field, reason FROM feed_field_warnings")).all()
        point = conn.execute(text("SELECT lon, lat, crs FROM source_records WHERE row_number = 5")).one()
    assert [tuple(w) for w in warned] == [(5, "lon, lat", "坐标无法解析 / coordinates unparseable")]
    assert tuple(point) == (None, None, None)


def test_no_clear_personal_data_is_stored(engine):
    clear_id, clear_phone = valid_id(1), "13812345678"
    for table, columns in (("source_records", "sealed || id_masked || name_masked || coalesce(phone_masked, '')"),
                           ("persons", "id_masked || name_masked || coalesce(phone_masked, '')")):
        hits = scalar(engine, f"SELECT count(*) FROM {table} WHERE {columns} LIKE :i OR {columns} LIKE :p "
                              f"OR {columns} LIKE '%张小明%'", i=f"%{clear_id}%", p=f"%{clear_phone}%")
        assert hits == 0, table
    with engine.connect() as conn:
        token, masked = conn.execute(text("SELECT sealed, id_masked FROM source_records ORDER BY row_number "
                                          "LIMIT 1")).one()
    assert masked == clear_id[:6] + "********" + clear_id[-4:]
    assert load_vault().open(token) == {"id_number": clear_id, "name": "张小明", "phone": clear_phone, "birth": ""}


def test_a_file_that_cannot_be_read_stores_nothing(engine, tmp_path):
    before = scalar(engine, "SELECT count(*) FROM feed_files")
    (tmp_path / "x.csv").write_bytes(b"\xff\xfe\x00garbage\x00")
    with pytest.raises(ImportRejected):
        import_feed(engine, tmp_path / "x.csv", "公安")
    assert scalar(engine, "SELECT count(*) FROM feed_files") == before


def test_match_codes_places_flags_and_requests_tasks(engine, tmp_path):
    rows = [person(11, "疑似"), person(12, "湖北返回", lon="", lat="", address="九江镇沙头社区"),
            person(13, "确诊", lon="", lat=""), person(14, "确诊", lon="121.47", lat="31.23"),
            person(15, "重点地区返回", lon="", lat="", address="沙头社区")]
    import_feed(engine, write_csv(tmp_path / "police.csv", rows), "公安")
    stats = run_match(engine, now=NOW)
    assert stats["persons"] == 8
    assert (stats["red"], stats["yellow"], stats["blue"], stats["green"]) == (5, 2, 1, 0)
    with engine.connect() as conn:
        people = {r.id_masked[-4:]: r for r in conn.execute(text(
            "SELECT p.id_masked, p.colour, p.method, p.confidence, p.unplaced_reason, g.code AS grid "
            "FROM persons p LEFT JOIN grids g ON g.id = p.grid_id")).all()}
    placed = people[valid_id(11)[-4:]]
    assert placed.method == "point" and placed.grid is not None
    community = people[valid_id(12)[-4:]]
    assert community.method == "community" and community.grid.startswith("440605121")
    assert "no location" in people[valid_id(13)[-4:]].unplaced_reason
    assert people[valid_id(3)[-4:]].colour == "red"  # his garbled point was left out: red, by what remains
    assert "outside the district" in people[valid_id(14)[-4:]].unplaced_reason
    assert "ambiguous" in people[valid_id(15)[-4:]].unplaced_reason
    assert set(unplaced(engine)["unplaced_reason"].str.split(" / ").str[1]) == {
        "no location", "outside the district", "ambiguous address"}
    assert scalar(engine, "SELECT count(*) FROM flags") == 8
    assert scalar(engine, "SELECT count(*) FROM task_requests WHERE colour IN ('red', 'yellow')") == 7
    assert scalar(engine, "SELECT count(*) FROM task_requests WHERE colour = 'blue'") == 0


def test_home_addresses_are_stored_sealed_and_opened_only_to_locate(engine):
    """The addresses the match above placed people by are stored as tokens: no row holds any of the text."""
    assert scalar(engine, "SELECT count(*) FROM source_records r WHERE r::text LIKE '%沙头%'") == 0
    with engine.connect() as conn:
        tokens = conn.execute(text("SELECT address_sealed FROM source_records WHERE address_sealed IS NOT NULL "
                                   "ORDER BY feed_file_id, row_number")).scalars().all()
    assert load_vault().open_texts(tokens) == ["九江镇沙头社区", "沙头社区"]


def test_rerunning_changes_nothing_and_a_raise_requests_a_task(engine, tmp_path):
    history = scalar(engine, "SELECT count(*) FROM risk_code_history")
    requests = scalar(engine, "SELECT count(*) FROM task_requests")
    stats = run_match(engine, now=NOW)
    assert stats["code_changes"] == 0 and stats["task_requests"] == 0
    assert scalar(engine, "SELECT count(*) FROM risk_code_history") == history
    # The blue returning worker is reported as a close contact by another department: raised to red.
    import_feed(engine, write_csv(tmp_path / "tel.csv", [person(2, "密切接触者")]), "通信")
    stats = run_match(engine, now=NOW)
    assert stats["code_changes"] == 1 and stats["task_requests"] == 1
    with engine.connect() as conn:
        row = conn.execute(text("SELECT previous_colour, colour FROM task_requests ORDER BY id DESC LIMIT 1")).one()
    assert tuple(row) == ("blue", "red")
    assert scalar(engine, "SELECT count(*) FROM task_requests") == requests + 1


def test_an_override_is_kept_in_the_history(engine):
    key = load_vault().person_key(valid_id(11))
    with engine.begin() as conn:
        # set now, by the server's clock (which is past NOW): it must expire after that
        repository.add_override(conn, key, "green", "核酸两次阴性", "demo_supervisor",
                                (pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=2)).to_pydatetime())
    run_match(engine, now=NOW)
    with engine.connect() as conn:
        code = conn.execute(text("SELECT colour, rule_id FROM persons WHERE person_key = :k"), {"k": key}).one()
        changes = conn.execute(text("SELECT previous_colour, colour FROM risk_code_history WHERE person_key = :k "
                                    "ORDER BY id"), {"k": key}).all()
    assert tuple(code) == ("green", "override") and [tuple(c) for c in changes] == [(None, "red"), ("red", "green")]
    assert scalar(engine, "SELECT count(*) FROM flags WHERE person_key = :k", k=key) == 0


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_export_flags(engine, tmp_path, suffix):
    path = tmp_path / f"flags{suffix}"
    count = export_flags(engine, path)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False) if suffix == ".csv" else None
    if frame is None:
        sheet = load_workbook(path).active
        rows = list(sheet.iter_rows(values_only=True))
        frame = pd.DataFrame(rows[1:], columns=rows[0])
    assert list(frame.columns) == COLUMNS and len(frame) == count == scalar(engine, "SELECT count(*) FROM flags")
    assert all("*" in m for m in frame["masked_id"]) and all("*" in n for n in frame["name"])
    assert frame["colour"].iloc[0] == "red"
    warned = frame["masked_id"].str.endswith(valid_id(3)[-4:])
    assert list(frame.loc[warned, "warnings"]) == ["坐标无法解析 / coordinates unparseable（卫健 第5行）"]
    assert set(frame.loc[~warned, "warnings"].fillna("")) == {""}


def test_the_same_file_imported_twice_at_once_is_stored_once(engine, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    path = write_csv(tmp_path / "twice.csv", [person(31, "返岗人员"), person(32, "")])
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: import_feed(engine, path, "街道办"), range(2)))
    assert sorted(r.already_imported for r in results) == [False, True]
    assert all((r.rows_read, r.rows_stored) == (2, 2) for r in results)
    assert scalar(engine, "SELECT count(*) FROM feed_files WHERE source = '街道办'") == 1


def test_a_person_whose_records_are_all_gone_leaves_with_his_flag(engine):
    gone = {load_vault().person_key(valid_id(serial)) for serial in (31, 32)}
    run_match(engine, now=NOW)
    everyone = scalar(engine, "SELECT count(*) FROM persons")
    assert scalar(engine, "SELECT count(*) FROM persons WHERE person_key = ANY(:k)", k=list(gone)) == 2
    with engine.begin() as conn:  # the file's records go with it
        conn.execute(text("DELETE FROM feed_files WHERE source = '街道办'"))
    stats = run_match(engine, now=NOW)
    assert stats["persons"] == everyone - 2 == scalar(engine, "SELECT count(*) FROM persons")
    assert scalar(engine, "SELECT count(*) FROM persons WHERE person_key = ANY(:k)", k=list(gone)) == 0
    assert scalar(engine, "SELECT count(*) FROM flags WHERE person_key = ANY(:k)", k=list(gone)) == 0
    assert run_match(engine, now=NOW)["persons"] == everyone - 2  # nobody else leaves on a rerun


def test_unmasking_opens_the_record_the_masked_fields_come_from(engine, tmp_path):
    """The latest report of a person names him; an older one arriving later changes neither view."""
    from accounts.actor import COMMANDER, Actor
    from matching.person_repository import get_person, unmask_person

    def reported(source, name, phone, when):
        row = person(41, "确诊", name=name, when=when)
        row[3] = phone
        import_feed(engine, write_csv(tmp_path / f"{source}.csv", [row]), source)
        run_match(engine, now=NOW)

    key, commander = load_vault().person_key(valid_id(41)), Actor(None, "test_commander", COMMANDER)
    reported("疾控", "王小二", "13800000001", "2026-11-23 09:00")
    reported("公安二", "王小三", "13900000002", "2026-11-24 10:00")
    reported("社区", "王小四", "13700000003", "2026-11-20 10:00")
    with engine.begin() as conn:
        masked = get_person(conn, commander, key)
        clear = unmask_person(conn, commander, key, "核实", load_vault(), None)
    assert (masked["name_masked"], masked["phone_masked"]) == ("王*三", "139****0002")
    assert (clear["name"], clear["phone"]) == ("王小三", "13900000002")


def test_without_grids_a_match_says_so_and_without_records_it_leaves_nobody(database_factory, tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("NANHAI_PERSON_KEY_SECRET", "empty-secret")
    monkeypatch.setenv("NANHAI_FERNET_KEY", Fernet.generate_key().decode())
    engine = database_factory("nanhai_no_grids")
    assert run_match(engine, now=NOW)["persons"] == 0  # a new database: nothing to match, nothing to fail
    import_feed(engine, write_csv(tmp_path / "one.csv", [person(51, "确诊")]), "卫健")
    with pytest.raises(NoGrids, match="gridctl seed nanhai"):
        run_match(engine, now=NOW)
    with pytest.raises(NoGrids):
        locate_benchmark(engine, 10)
    assert scalar(engine, "SELECT count(*) FROM persons") == 0
    seed_nanhai(engine)
    assert run_match(engine, now=NOW)["red"] == 1
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM feed_files"))
    stats = run_match(engine, now=NOW)  # every record gone: everyone leaves, with his flag
    assert (stats["persons"], stats["red"]) == (0, 0)
    assert scalar(engine, "SELECT count(*) FROM persons") == scalar(engine, "SELECT count(*) FROM flags") == 0


@pytest.mark.parametrize("workers", [1, 2])  # chunks sealed here, or in two forked processes
def test_import_in_chunks_stores_every_record_with_its_own_key_and_token(database_factory, tmp_path, monkeypatch,
                                                                         workers):
    monkeypatch.setenv("NANHAI_PERSON_KEY_SECRET", "chunk-secret")
    monkeypatch.setenv("NANHAI_FERNET_KEY", Fernet.generate_key().decode())
    monkeypatch.setattr("matching.pipeline.SEAL_CHUNK", 2)
    engine = database_factory(f"nanhai_chunks_{workers}")
    seed_nanhai(engine)
    people = list(zip(range(11, 18), "赵钱孙李周吴郑", strict=True))
    rows = [person(serial, "", name=name) for serial, name in people]
    rows[3][2], rows[3][3] = bad_id(14), ""  # file line 6 (title, header, then the rows) is rejected: no identity
    rows[5][3] = "1381234567"  # line 8 is stored without its phone, one digit short
    seen: list[float] = []
    result = import_feed(engine, write_csv(tmp_path / "chunks.csv", rows), "公安",
                         progress=lambda step, fraction: seen.append(fraction), workers=workers)
    assert (result.rows_read, result.rows_stored, result.rows_rejected, result.rows_warned) == (7, 6, 1, 1)
    assert result.field_warnings == [(8, "phone", "手机号格式错误 / phone malformed")]
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 5  # a step per chunk of two
    vault = load_vault()
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT row_number, person_key, sealed, id_masked, name_masked "
                                   "FROM source_records ORDER BY row_number")).all()
    expected = [(line, serial, name) for line, (serial, name) in enumerate(people, start=3) if line != 6]
    assert [r.row_number for r in stored] == [line for line, _, _ in expected]
    for record, (_, serial, name) in zip(stored, expected, strict=True):
        assert record.person_key == vault.person_key(valid_id(serial))
        phone = "" if record.row_number == 8 else "13812345678"
        assert vault.open(record.sealed) == {"id_number": valid_id(serial), "name": name, "phone": phone,
                                             "birth": ""}  # identified: his date of birth is his ID number's
        assert record.id_masked == valid_id(serial)[:6] + "********" + valid_id(serial)[-4:]
        assert record.name_masked == name  # one character: nothing to hide behind a star


def _dies(job):
    os._exit(1)  # as the out-of-memory killer would end a sealing process


def test_a_sealing_process_that_dies_fails_the_import_and_stores_nothing(engine, tmp_path, monkeypatch):
    monkeypatch.setattr("matching.pipeline._seal_chunk", _dies)
    path = write_csv(tmp_path / "dies.csv", [person(serial, "") for serial in range(41, 46)])
    with pytest.raises(GridError, match="nothing of this file was stored"):
        import_feed(engine, path, "卫健", workers=2)
    assert scalar(engine, "SELECT count(*) FROM feed_files WHERE file_name = 'dies.csv'") == 0
    monkeypatch.undo()
    assert import_feed(engine, path, "卫健", workers=2).rows_stored == 5  # tried again, it goes through


def test_travel_columns_are_stored_with_each_record_and_read_back_for_the_rules(engine, tmp_path):
    """Where a person came from and the day he arrived (issue 22) are stored with his record, a bad arrival day
    as missing with its warning; the match reads the day as its midnight in Nanhai, in UTC."""
    header = ["序号", "姓名", "身份证号码", "手机号", "出发地", "返回日期", "登记时间"]

    def traveller(serial, origin, arrived):
        return [str(serial), "张小明", valid_id(serial), "13812345678", origin, arrived, "2026-11-24 09:00"]

    rows = [traveller(71, "湖北省武汉市", "2020-01-19"), traveller(72, "", ""),
            traveller(73, "New York", "2020年1月20日 08:30"), traveller(74, "武汉", "2020-02-30")]
    import_feed(engine, write_csv(tmp_path / "plain.csv", [person(75, "密切接触者")]), "交通")  # no such columns
    result = import_feed(engine, write_csv(tmp_path / "travel.csv", rows, header=header), "交通")
    assert (result.rows_stored, result.rows_warned) == (4, 1)
    assert result.field_warnings == [(6, "arrival_date", "抵达日期无法解析或不合理 / arrival date unparseable or "
                                                         "impossible")]
    with engine.connect() as conn:
        feed = conn.execute(text("SELECT id FROM feed_files WHERE file_name = 'travel.csv'")).scalar_one()
        stored = conn.execute(text("SELECT origin, arrived_on::text FROM source_records WHERE feed_file_id = :f "
                                   "ORDER BY row_number"), {"f": feed}).all()
        records = repository.load_records(conn)
    assert [tuple(r) for r in stored] == [("湖北省武汉市", "2020-01-19"), (None, None), ("New York", "2020-01-20"),
                                         ("武汉", None)]
    ours = records[records["feed_file_id"] == feed].sort_values("row_number")
    assert ours["origin"].tolist()[0::2] == ["湖北省武汉市", "New York"] and ours["origin"].iloc[[1]].isna().all()
    assert ours["arrived_at"].tolist()[0::2] == [pd.Timestamp("2020-01-18 16:00", tz="UTC"),
                                                 pd.Timestamp("2020-01-19 16:00", tz="UTC")]
    assert ours["arrived_at"].iloc[[1, 3]].isna().all()
    others = records[records["feed_file_id"] != feed]  # records of feeds without the columns: none
    assert len(others) and others["origin"].isna().all() and others["arrived_at"].isna().all()
    assert str(records["arrived_at"].dtype) == "datetime64[us, UTC]"
