"""Nobody falls out of the net for a field typo (issue 21, point 4), against the real database: a row whose identity
is valid is stored even when its phone, point or registration time is malformed; that field is ignored, a warning
names the row, the field and the reason, and the person is coded and located by what remains. A row without a
usable identity is still rejected."""

import pandas as pd
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from matching import repository
from matching.pipeline import import_feed, run_match
from matching.privacy import load_vault
from tests.matching.feedfiles import HEADER, valid_id, write_csv

TODAY = pd.Timestamp.now(tz="Asia/Shanghai").strftime("%Y-%m-%d 09:00")  # the rules' codes run from the report


@pytest.fixture(scope="module")
def engine(database_factory, seeded_engine):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NANHAI_PERSON_KEY_SECRET", "field-warnings-secret")
        patch.setenv("NANHAI_FERNET_KEY", Fernet.generate_key().decode())
        yield database_factory("nanhai_field_warnings", copy_of=seeded_engine)


def person(serial, category, phone="13812345678", address="", lon="113.15", lat="23.03", when=TODAY, name="张小明",
           id_number=None):
    return [str(serial), name, id_number or valid_id(serial), phone, address, lon, lat, "WGS84", category, when]


def wrong_check_digit(serial):
    return valid_id(serial)[:-1] + ("0" if valid_id(serial)[-1] != "0" else "1")


def key(serial):
    return load_vault().person_key(valid_id(serial))


@pytest.fixture(scope="module")
def imported(engine, tmp_path_factory):
    """The police list holds person 1 with his point; the health bureau's list reports him confirmed with a phone
    one digit short, person 2 with a point in the Atlantic but an address, person 3 with an unreadable time, and
    two rows with no usable identity (a wrong check digit and nothing else to link by; no ID number, name or
    phone at all)."""
    folder = tmp_path_factory.mktemp("feeds")
    police = import_feed(engine, write_csv(folder / "police.csv", [person(1, "")]), "公安")
    health = import_feed(engine, write_csv(folder / "health.csv", [
        person(1, "确诊", phone="1381234567", lon="", lat=""),                     # row 3
        person(2, "确诊", lon="10.0", lat="10.0", address="九江镇沙头社区"),          # row 4
        person(3, "密切接触者", when="上周三"),                                       # row 5
        person(4, "确诊", id_number=wrong_check_digit(4), phone="123"),             # row 6: rejected
        person(5, "确诊", name="", phone="", id_number=" ")]), "卫健局")             # row 7: rejected
    stats = run_match(engine)
    return police, health, stats


def test_the_rows_with_a_valid_identity_are_stored_and_warned_the_others_rejected(engine, imported):
    _police, health, _stats = imported
    assert (health.rows_read, health.rows_stored, health.rows_rejected, health.rows_warned) == (5, 3, 2, 3)
    assert health.field_warnings == [
        (3, "phone", "手机号格式错误 / phone malformed"),
        (4, "lon, lat", "坐标超出合理范围 / coordinates outside any plausible range"),
        (5, "reported_at", "登记时间无法解析 / reported_at unparseable")]
    # a rejected row lists all its reasons, its field problems too: the department fixes it at once
    assert health.rejections == [(6, "身份证校验位错误 / ID-card check digit wrong；手机号格式错误 / phone malformed"),
                                 (7, "无可用身份：须有身份证号，或手机号，或姓名加出生日期或住址 / no usable identity: "
                                     "an ID number, a phone, or a name with a date of birth or an address is needed")]
    with engine.connect() as conn:
        feed_id = conn.execute(text("SELECT id FROM feed_files WHERE source = '卫健局'")).scalar_one()
        balance = conn.execute(text("SELECT rows_read, rows_stored, rows_rejected, rows_warned FROM feed_files "
                                    "WHERE id = :f"), {"f": feed_id}).one()
        records = {r.row_number: r for r in conn.execute(text(
            "SELECT row_number, phone_masked, lon, lat, crs, reported_at, sealed FROM source_records "
            "WHERE feed_file_id = :f"), {"f": feed_id}).all()}
        phone_rows = conn.execute(text("SELECT row_number FROM source_record_phones WHERE feed_file_id = :f "
                                       "ORDER BY row_number"), {"f": feed_id}).scalars().all()
        stored = repository.feed_field_warnings(conn, feed_id)
    assert tuple(balance) == (5, 3, 2, 3)
    assert stored == [(w.row, w.field, w.reason) for w in health.field_warnings]
    assert records[3].phone_masked is None and load_vault().open(records[3].sealed)["phone"] == ""
    assert phone_rows == [4, 5], "the malformed phone is not keyed for the hotline's look-up"
    assert (records[4].lon, records[4].lat, records[4].crs) == (None, None, None)
    assert records[5].reported_at is None and records[4].reported_at is not None


def test_the_persons_are_coded_and_located_by_what_remains(engine, imported):
    _police, _health, stats = imported
    assert stats["persons"] == 3 and stats["red"] == 3 and stats["unplaced_flags"] == 0
    with engine.connect() as conn:
        people = {r.person_key: r for r in conn.execute(text(
            "SELECT p.person_key, p.colour, p.method, p.set_at, p.phone_masked, g.code AS grid FROM persons p "
            "LEFT JOIN grids g ON g.id = p.grid_id")).all()}
        imported_at = conn.execute(text("SELECT imported_at FROM feed_files WHERE source = '卫健局'")).scalar_one()
    first, second, third = (people[key(serial)] for serial in (1, 2, 3))
    assert (first.colour, first.method) == ("red", "point")  # the police list's point still places him
    assert first.phone_masked == "138****5678", "his newest record's phone was dropped: the police list's stands"
    assert (second.colour, second.method) == ("red", "community") and second.grid.startswith("440605121")
    assert third.colour == "red" and third.set_at == imported_at  # no readable time: the import's counts


def test_the_flags_export_names_each_persons_warnings_with_the_department_and_row(engine, imported):
    with engine.connect() as conn:
        frame = repository.flags_for_export(conn).set_index("person_key")
    assert frame.loc[key(1), "warnings"] == "手机号格式错误 / phone malformed（卫健局 第3行）"
    assert frame.loc[key(2), "warnings"] == "坐标超出合理范围 / coordinates outside any plausible range（卫健局 第4行）"
    assert frame.loc[key(3), "warnings"] == "登记时间无法解析 / reported_at unparseable（卫健局 第5行）"


def test_a_persons_warnings_from_two_files_are_joined_and_a_withdrawn_files_are_left_out(engine, imported,
                                                                                      tmp_path):
    import_feed(engine, write_csv(tmp_path / "tel.csv", [person(1, "密切接触者", when="昨天")]), "通信")
    run_match(engine)
    with engine.connect() as conn:
        joined = repository.flags_for_export(conn).set_index("person_key").loc[key(1), "warnings"]
    assert joined == ("手机号格式错误 / phone malformed（卫健局 第3行）；"
                      "登记时间无法解析 / reported_at unparseable（通信 第3行）")
    with engine.begin() as conn:
        feed_id = conn.execute(text("SELECT id FROM feed_files WHERE source = '通信'")).scalar_one()
        repository.mark_withdrawn(conn, feed_id, "test", "测试 / a test")
    with engine.connect() as conn:
        left = repository.flags_for_export(conn).set_index("person_key").loc[key(1), "warnings"]
        history = {row["source"]: row for row in repository.feed_history(conn)}
    assert left == "手机号格式错误 / phone malformed（卫健局 第3行）"
    assert history["通信"]["rows_warned"] == 1 and history["公安"]["rows_warned"] == 0


def test_header_warnings_and_field_warnings_are_kept_apart(engine, tmp_path):
    """Two ID-number columns are a warning about the file (issue 20); a short phone one about a row's field."""
    header = [*HEADER, "证件号码"]
    rows = [[*person(61, "", phone="138"), valid_id(62)]]
    result = import_feed(engine, write_csv(tmp_path / "two.csv", rows, header=header), "街道办")
    assert len(result.warnings) == 1 and "身份证号码" in result.warnings[0] and "证件号码" in result.warnings[0]
    assert result.field_warnings == [(3, "phone", "手机号格式错误 / phone malformed")] and result.rows_warned == 1
