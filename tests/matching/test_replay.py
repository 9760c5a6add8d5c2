"""Codes as of any time (issue 21, point 6): `gridctl match --as-of` against expiries computed by hand.

The lists of early February 2020, imported today. As of 2020-02-09 12:00 (Beijing):

- person 1, confirmed, reported 2020-02-01 09:00: red until 2020-02-01 09:00 + 10 days (the rules version saved
  on 2020-01-31 says 10 days; the version saved today, 3 days, does not count yet) = 2020-02-11 09:00;
- person 2, back from a key area, reported 2020-01-20 08:00: yellow for 14 days, expired 2020-02-03 08:00: green;
- person 3, returning worker reported 2020-02-05 10:00: blue until 2020-02-19 10:00, but an override set on
  2020-02-06 makes him yellow until 2020-02-16 00:00;
- person 4, close contact reported 2020-02-10 (after the moment): not counted — he is not in the replay at all;
- person 1's override set today does not count either.
"""

from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import text

from gis.errors import InvalidRequest
from matching.pipeline import Replay, import_feed, run_match
from matching.privacy import load_vault
from tests.matching.feedfiles import valid_id, write_csv

BEIJING = ZoneInfo("Asia/Shanghai")
HEADER = ["姓名", "身份证号码", "手机号", "经度", "纬度", "人员类别", "登记时间"]
RULES_THEN = '''default_reason = "无风险记录 / no risk record in force"

[[rule]]
id = "red-confirmed"
colour = "red"
keywords = ["确诊"]
days = 10
reason = "确诊 / confirmed"

[[rule]]
id = "yellow-key-area"
colour = "yellow"
keywords = ["重点地区"]
days = 14
reason = "重点地区 / key area"

[[rule]]
id = "blue-returning-worker"
colour = "blue"
keywords = ["返岗"]
days = 14
reason = "返岗 / returning worker"

[[rule]]
id = "red-close-contact"
colour = "red"
keywords = ["密接"]
days = 14
reason = "密接 / close contact"
'''


def at(text_: str) -> pd.Timestamp:
    return pd.Timestamp(text_, tz=BEIJING).tz_convert("UTC")


@pytest.fixture(scope="module")
def engine(database_factory, seeded_engine, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NANHAI_PERSON_KEY_SECRET", "replay-secret")
        patch.setenv("NANHAI_FERNET_KEY", Fernet.generate_key().decode())
        engine = database_factory("nanhai_replay", copy_of=seeded_engine)
        folder = tmp_path_factory.mktemp("replay")
        rows = [["甲", valid_id(1), "13800000001", "113.15", "23.03", "确诊", "2020-02-01 09:00"],
                ["乙", valid_id(2), "13800000002", "113.15", "23.03", "重点地区返回", "2020-01-20 08:00"],
                ["丙", valid_id(3), "13800000003", "113.15", "23.03", "返岗人员", "2020-02-05 10:00"],
                ["丁", valid_id(4), "13800000004", "113.15", "23.03", "密接", "2020-02-10 10:00"]]
        import_feed(engine, write_csv(folder / "feb.csv", rows, header=HEADER), "卫健局")
        vault = load_vault()
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO rule_versions (what, body, note, saved_by, saved_at) VALUES "
                              "('colour_rules', :then, '二月', 'admin', '2020-01-31 00:00+08'), "
                              "('colour_rules', :now, '今天', 'admin', now())"),
                         {"then": RULES_THEN, "now": RULES_THEN.replace("days = 10", "days = 3")})
            conn.execute(text(
                "INSERT INTO risk_overrides (person_key, colour, reason, set_by, set_at, expires_at) VALUES "
                "(:k3, 'yellow', '人工 / by hand', 'admin', '2020-02-06 12:00+08', '2020-02-16 00:00+08'), "
                "(:k1, 'green', '今天的更正 / today', 'admin', now(), now() + interval '1 day')"),
                {"k1": vault.person_key(valid_id(1)), "k3": vault.person_key(valid_id(3))})
        run_match(engine)  # today's picture
        yield engine


def test_a_replay_gives_the_codes_of_that_moment(engine):
    vault = load_vault()
    with engine.connect() as conn:
        before = conn.execute(text("SELECT person_key, colour, expires_at FROM persons ORDER BY 1")).all()
        requests = conn.execute(text("SELECT count(*) FROM task_requests")).scalar_one()
    stats = run_match(engine, replay=Replay("二月九日中午", at("2020-02-09 12:00"), "tester"))
    assert (stats["persons"], stats["red"], stats["yellow"], stats["blue"], stats["green"]) == (3, 1, 1, 0, 1)
    with engine.connect() as conn:
        replayed = {r.person_key: r for r in conn.execute(text(
            "SELECT p.* FROM replay_persons p JOIN replays r ON r.id = p.replay_id WHERE r.name = '二月九日中午'"))}
        run = conn.execute(text("SELECT as_of, replay_id FROM match_runs ORDER BY id DESC LIMIT 1")).one()
        after = conn.execute(text("SELECT person_key, colour, expires_at FROM persons ORDER BY 1")).all()
        assert conn.execute(text("SELECT count(*) FROM task_requests")).scalar_one() == requests
    key = {n: vault.person_key(valid_id(n)) for n in (1, 2, 3, 4)}
    assert key[4] not in replayed, "registered after the moment"
    assert (replayed[key[1]].colour, replayed[key[1]].rule_id) == ("red", "red-confirmed")
    assert replayed[key[1]].expires_at == at("2020-02-11 09:00")  # the version in force then: 10 days
    assert replayed[key[2]].colour == "green"  # 2020-01-20 08:00 + 14 days passed on 2020-02-03
    assert (replayed[key[3]].colour, replayed[key[3]].expires_at) == ("yellow", at("2020-02-16 00:00"))
    assert run.as_of == at("2020-02-09 12:00") and run.replay_id is not None
    assert after == before, "an as-of run leaves today's codes alone"


def test_replays_are_named_once_and_exported(engine, tmp_path, monkeypatch):
    from gridctl import main

    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    runner = CliRunner()
    done = runner.invoke(main, ["match", "--as-of", "2020-02-12 12:00", "--name", "二月十二日"])
    assert done.exit_code == 0, done.output
    assert "today's codes unchanged" in done.output
    again = runner.invoke(main, ["match", "--as-of", "2020-02-12 12:00", "--name", "二月十二日"])
    assert again.exit_code != 0 and "exists" in again.output
    with pytest.raises(InvalidRequest, match="exists"):
        run_match(engine, replay=Replay("二月十二日", at("2020-02-12 12:00")))
    out = tmp_path / "replay.csv"
    exported = runner.invoke(main, ["replay", "export", "二月十二日", str(out)])
    assert exported.exit_code == 0, exported.output
    frame = pd.read_csv(out, encoding="utf-8-sig", dtype=str)
    # person 1's red expired on 2020-02-11 09:00; person 4, registered on the 10th, is red for 14 days; person 3
    # is still yellow by the override (until the 16th)
    assert list(frame["colour"]) == ["red", "yellow"]
    assert list(frame["expires_at"].str[:16]) == ["2020-02-24 10:00", "2020-02-16 00:00"]
    assert frame["masked_id"].str.contains(r"\*").all() and valid_id(3) not in out.read_text(encoding="utf-8-sig")
    listed = runner.invoke(main, ["replay", "list"])
    assert "二月十二日" in listed.output and "2 replays" in listed.output
    bad = runner.invoke(main, ["match", "--as-of", "上周三"])
    assert bad.exit_code != 0 and "cannot read the moment" in bad.output
    assert runner.invoke(main, ["replay", "delete", "二月十二日"]).exit_code == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM replays WHERE name = '二月十二日'")).scalar_one() == 0
