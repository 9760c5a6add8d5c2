"""Records without ID numbers through the real import and match (issue 21, points 1–3 and 8), on PostGIS.

The police list holds 40 people with their ID numbers. Then:

- an operator's list keyed by phone only (运营商): person 1's phone, exactly — linked automatically, and the
  list's "key area" category makes him yellow; a phone nobody has — a new, provisional person;
- a tip-off list with names and phones (群众举报): person 2 confirmed, his phone one digit short (malformed, a
  field warning) and his name right — a red code that must stay in the net; person 3's name with one character
  wrong and his phone exact;
- a list with names and dates of birth, and one with names and addresses (other departments).
"""

import numpy as np
import pandas as pd
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from matching.identity import provisional_key
from matching.linkage import UPPER
from matching.pipeline import import_feed, run_match
from matching.privacy import load_vault
from tests.matching.feedfiles import valid_id, write_csv

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
TODAY = pd.Timestamp.now(tz="Asia/Shanghai").strftime("%Y-%m-%d 09:00")


def person(n: int) -> dict:
    rng = np.random.default_rng(n)
    return {"name": SURNAMES[n % 20] + GIVEN[rng.integers(len(GIVEN))] + GIVEN[(n * 7) % len(GIVEN)],
            "id": valid_id(n, born=f"19{60 + n % 40:02d}0{1 + n % 9}1{n % 10}"),
            "phone": f"139{rng.integers(10**8):08d}", "address": f"桂城街道桂一社区{n}号"}


PEOPLE = {n: person(n) for n in range(1, 41)}


def wrong_digit(phone: str) -> str:
    return phone[:6] + str((int(phone[6]) + 5) % 10) + phone[7:]


@pytest.fixture(scope="module")
def engine(database_factory, seeded_engine, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NANHAI_PERSON_KEY_SECRET", "linking-secret")
        patch.setenv("NANHAI_FERNET_KEY", Fernet.generate_key().decode())
        engine = database_factory("nanhai_linking", copy_of=seeded_engine)
        folder = tmp_path_factory.mktemp("linking")
        police = [[p["name"], p["id"], p["phone"], p["address"], "113.15", "23.03", "户籍", TODAY]
                  for p in PEOPLE.values()]
        import_feed(engine, write_csv(folder / "police.csv", police,
                                      header=["姓名", "身份证号码", "手机号", "现住址", "经度", "纬度", "人员类别",
                                              "登记时间"]), "公安")
        operator = [[PEOPLE[1]["phone"], "重点地区返回", TODAY],   # row 3
                    ["13700000000", "重点地区返回", TODAY],       # row 4: nobody known
                    [wrong_digit(PEOPLE[7]["phone"]), "重点地区返回", TODAY],  # row 5: one digit wrong, nothing else
                    [PEOPLE[8]["phone"], "重点地区返回", TODAY]]   # row 6: exact; a reviewer will say otherwise
        feeds = {"operator": import_feed(engine, write_csv(folder / "operator.csv", operator,
                                                           header=["手机号码", "人员类别", "登记时间"]), "运营商")}
        p2, p3 = PEOPLE[2], PEOPLE[3]
        tips = [[p2["name"], p2["phone"][:-1], p2["address"], "确诊", TODAY],              # row 3
                [p3["name"][:-1] + "某", p3["phone"], "", "密接", TODAY]]                # row 4
        tips_file = write_csv(folder / "tips.csv", tips, header=["姓名", "联系电话", "住址", "类别", "登记时间"])
        feeds["tips"] = import_feed(engine, tips_file, "群众举报")
        p4, p5 = PEOPLE[4], PEOPLE[5]
        born = f"{p4['id'][6:10]}年{int(p4['id'][10:12])}月{int(p4['id'][12:14])}日"
        births = [[p4["name"], born, "返岗", TODAY]]
        feeds["births"] = import_feed(engine, write_csv(folder / "births.csv", births,
                                                        header=["姓名", "出生日期", "类别", "登记时间"]), "人社局")
        addresses = [[p5["name"], p5["address"], "返岗", TODAY]]
        feeds["addresses"] = import_feed(engine, write_csv(folder / "addresses.csv", addresses,
                                                           header=["姓名", "现住址", "类别", "登记时间"]), "街道")
        stats = run_match(engine)
        yield engine, feeds, stats


def feed_id(engine, source: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT id FROM feed_files WHERE source = :s"), {"s": source}).scalar_one()


def person_of(engine, source: str, row: int) -> tuple[str, str, str | None]:
    """The person a record is linked to: his key, colour and band."""
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT r.person_key, p.colour, l.band FROM source_records r JOIN persons p USING (person_key) "
            "LEFT JOIN record_links l ON l.feed_file_id = r.feed_file_id AND l.row_number = r.row_number "
            "WHERE r.feed_file_id = :f AND r.row_number = :r"), {"f": feed_id(engine, source), "r": row}).one()


def key(n: int) -> str:
    return load_vault().person_key(PEOPLE[n]["id"])


def test_lists_without_id_numbers_are_stored_whole(engine):
    _engine, feeds, _stats = engine
    for name, count in (("operator", 4), ("tips", 2), ("births", 1), ("addresses", 1)):
        imported = feeds[name]
        assert (imported.rows_read, imported.rows_stored, imported.rows_rejected) == (count, count, 0), name
    assert [(w.row, w.field) for w in feeds["tips"].field_warnings] == [(3, "phone")]


def test_a_phone_only_record_links_to_the_person_the_police_list_holds(engine):
    engine, _feeds, _stats = engine
    assert person_of(engine, "运营商", 3) == (key(1), "yellow", "auto")


def test_an_unknown_phone_becomes_a_provisional_person(engine):
    engine, _feeds, _stats = engine
    own = provisional_key(feed_id(engine, "运营商"), 4)
    assert person_of(engine, "运营商", 4) == (own, "yellow", "new")
    with engine.connect() as conn:
        provisional, id_masked = conn.execute(text("SELECT provisional, id_masked FROM persons WHERE person_key = :k"),
                                              {"k": own}).one()
    assert provisional and id_masked == "—"


def test_a_confirmed_case_with_a_malformed_phone_stays_in_the_net(engine):
    """His phone is one digit short (ignored, warned); his name and address link him: red, flagged, placed."""
    engine, _feeds, _stats = engine
    linked, colour, band = person_of(engine, "群众举报", 3)
    assert colour == "red" and band in ("auto", "review", "new")
    with engine.connect() as conn:
        flag = conn.execute(text("SELECT colour, grid_id FROM flags WHERE person_key = :k"), {"k": linked}).one()
    assert flag.colour == "red" and flag.grid_id is not None
    if band == "auto":
        assert linked == key(2)


def test_name_with_birth_date_and_name_with_address_link(engine):
    engine, _feeds, _stats = engine
    assert person_of(engine, "人社局", 3) == (key(4), "blue", "auto")
    assert person_of(engine, "街道", 3) == (key(5), "blue", "auto")


def test_every_link_records_its_score_and_agreeing_fields(engine):
    engine, _feeds, stats = engine
    with engine.connect() as conn:
        links = conn.execute(text("SELECT band, score, agreeing FROM record_links ORDER BY feed_file_id, "
                                  "row_number")).all()
    assert stats["unidentified_records"] == len(links) == 8
    auto = [link for link in links if link.band == "auto"]
    assert auto and all(link.score >= UPPER and link.agreeing for link in auto)
    assert "phone" in auto[0].agreeing


def test_reviewers_decisions_hold_at_every_later_match_and_a_split_takes_the_history(engine):
    """A reviewer says the record of the unknown phone is person 6 ("same": decided), and splits person 8's exact
    phone off him: both hold over two re-matches; the split-off person keeps person 8's code history."""
    from accounts.actor import ADMIN, Actor
    from matching.review_repository import split_record

    engine, _feeds, _stats = engine
    operator = feed_id(engine, "运营商")
    admin = Actor(None, "reviewer", ADMIN)
    assert person_of(engine, "运营商", 6) == (key(8), "yellow", "auto")
    with engine.begin() as conn:
        police_of_6 = conn.execute(text("SELECT record_feed_file_id, record_row_number FROM persons "
                                        "WHERE person_key = :k"), {"k": key(6)}).one()
        conn.execute(text(
            "INSERT INTO linkage_decisions (record_feed_file_id, record_row_number, other_feed_file_id, "
            "other_row_number, decision, decided_by, reason) VALUES (:f, 4, :of, :orow, 'same', 'reviewer', '核实')"),
            {"f": operator, "of": police_of_6[0], "orow": police_of_6[1]})
        split = split_record(conn, admin, operator, 6, "电话属于其家人 / the phone is his relative's")
        history_of_8 = conn.execute(text("SELECT count(*) FROM risk_code_history WHERE person_key = :k"),
                                    {"k": key(8)}).scalar_one()
    assert split["split_key"] == provisional_key(operator, 6) and history_of_8 >= 1
    for _ in range(2):
        run_match(engine)
        assert person_of(engine, "运营商", 4) == (key(6), "yellow", "decided")
        apart, colour, band = person_of(engine, "运营商", 6)
        assert apart == provisional_key(operator, 6) and colour == "yellow" and band in ("new", "review")
        assert person_of(engine, "公安", 10)[1] == "green"  # person 8 (police row 10) no longer carries it
    with engine.connect() as conn:
        reasons = conn.execute(text("SELECT reason FROM risk_code_history WHERE person_key = :k ORDER BY id"),
                               {"k": provisional_key(operator, 6)}).scalars().all()
    assert reasons and reasons[0].startswith("（拆分前 / before the split）")


def test_gridctl_match_says_how_the_records_without_id_numbers_were_linked(engine, monkeypatch):
    from click.testing import CliRunner

    from gridctl import main

    engine, _feeds, _stats = engine
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    done = CliRunner().invoke(main, ["match"])
    assert done.exit_code == 0, done.output
    assert "records without ID numbers 8:" in done.output and "linked automatically" in done.output
