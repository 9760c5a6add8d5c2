"""Retention: the personal data of people whose last code ended more than DAYS ago is removed, everywhere; the
append-only history (task events, audit log) keeps its rows, pointing at tombstones. People are made through the
real import and match, at chosen moments, on a copy of the seeded district."""

import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from PIL import Image
from sqlalchemy import text

from accounts.actor import ADMIN, Actor
from accounts.repository import record_read
from checkpoints.repository import record_scan
from gis.errors import ConfigurationError
from matching.pipeline import import_feed, run_match
from matching.privacy import load_vault
from tasks.intake import take_requests
from tasks.photos import store_photo
from tasks.repository import transition
from tests.matching.feedfiles import valid_id, write_csv

DAYS = 28
NOW = datetime.now(UTC).replace(second=0, microsecond=0)  # the purge's moment; everything else is before it
BEIJING = ZoneInfo("Asia/Shanghai")
RED = "密切接触者"  # red for 14 days (matching/rules.toml)
GREEN = "一般人员"  # no rule: green
# who is who: serial, name, (category, days before NOW) of each record
PEOPLE = {"A": (501, "李大伟", [(RED, DAYS + 1 + 14)]),  # his code ended DAYS+1 ago: purged
          "B": (502, "王小红", [(RED, DAYS - 1 + 14)]),  # ended DAYS-1 ago: kept
          "C": (503, "赵一凡", [(GREEN, DAYS + 1)]),  # never coded, last record DAYS+1 ago: purged
          "D": (504, "钱二多", [(GREEN, DAYS - 1)]),  # never coded, last record DAYS-1 ago: kept
          "E": (505, "孙三思", [(RED, 100), (GREEN, 10)]),  # code ended long ago, a newer record: kept
          "F": (506, "周四海", [(RED, 100)]),  # code ended long ago, a manual code in force: kept
          "H": (507, "吴五常", [(RED, DAYS + 1 + 14)])}  # as A, but his task is still open: kept
PURGED, KEPT = ("A", "C"), ("B", "D", "E", "F", "H")
FIRST_MATCH = NOW - timedelta(days=DAYS + 1 + 14 - 1)  # A, B and H red, their tasks made


def local(moment: datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def scalar(engine, statement, **params):
    with engine.connect() as conn:
        return conn.execute(text(statement), params).scalar_one()


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def env():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NANHAI_PERSON_KEY_SECRET", "retention-test-secret")
        patch.setenv("NANHAI_FERNET_KEY", Fernet.generate_key().decode())
        patch.delenv("NANHAI_RETENTION_DAYS", raising=False)
        yield patch


@pytest.fixture(scope="module")
def world(env, database_factory, seeded_engine, tmp_path_factory):
    """The people of :data:`PEOPLE`, imported and matched twice (at :data:`FIRST_MATCH` and at NOW), with what
    the platform does around them: tasks (A's and B's cancelled, H's open), a photo and a scan of A, a manual
    code and an appeal of A that ended long ago, a manual code of F still in force, an audit line naming A."""
    engine = database_factory("nanhai_retention", copy_of=seeded_engine)
    vault = load_vault()
    rows = []
    for serial, name, records in PEOPLE.values():
        for category, days_ago in records:
            rows.append([str(len(rows) + 1), name, valid_id(serial), f"138{serial:08d}", "桂城街道南桂东路1号",
                         "113.15", "23.03", "WGS84", category, local(NOW - timedelta(days=days_ago))])
    import_feed(engine, write_csv(tmp_path_factory.mktemp("feed") / "people.csv", rows), "卫健", vault=vault)
    keys = {who: vault.person_key(valid_id(serial)) for who, (serial, _name, _records) in PEOPLE.items()}
    system = Actor.system()
    with engine.begin() as conn:  # A passes a checkpoint before he is coded
        checkpoint = conn.execute(text("SELECT code FROM checkpoints ORDER BY id LIMIT 1")).scalar_one()
        scanned = NOW - timedelta(days=DAYS + 1 + 14 - 0.5)
        record_scan(conn, system, {"checkpoint": checkpoint, "person_key": keys["A"], "direction": "in",
                                   "scanned_at": scanned.isoformat()}, vault, scanned)
    run_match(engine, now=pd.Timestamp(FIRST_MATCH), vault=vault)
    with engine.begin() as conn:
        take_requests(conn, FIRST_MATCH)
        tasks = dict(conn.execute(text("SELECT person_key, id FROM tasks WHERE source = 'matcher'")).all())
        later = FIRST_MATCH + timedelta(hours=1)
        for who in ("A", "B"):
            task = conn.execute(text("SELECT version FROM tasks WHERE id = :t"), {"t": tasks[keys[who]]}).scalar_one()
            transition(conn, system, tasks[keys[who]], "cancel", task, {"reason": "已核实 / checked"}, later)
        store_photo(conn, system, tasks[keys["A"]], png(), later)
        conn.execute(text("INSERT INTO risk_overrides (person_key, colour, reason, set_by, set_at, expires_at) "
                          "VALUES (:a, 'yellow', '复核 / review', 'tester', :at, :until), "
                          "(:f, 'yellow', '复核 / review', 'tester', :now, :ahead)"),
                     {"a": keys["A"], "at": later, "until": later + timedelta(hours=1), "f": keys["F"],
                      "now": NOW - timedelta(days=1), "ahead": NOW + timedelta(days=5)})
        conn.execute(text("INSERT INTO code_appeals (person_key, colour, reason, expires_at, requested_by, "
                          "requested_at, status, decided_by, decided_at) VALUES (:a, 'green', '申诉 / appeal', :until, "
                          "'tester', :at, 'rejected', 'tester', :at)"),
                     {"a": keys["A"], "at": later, "until": later + timedelta(days=1)})
        record_read(conn, Actor(None, "auditor", ADMIN), "unmask", keys["A"], "核查 / check", None)
    run_match(engine, now=pd.Timestamp(NOW), vault=vault)
    with engine.begin() as conn:  # A's record in linkage: its link, a review pair with D's and a decision on it
        (af, ar), (df, dr) = (conn.execute(text("SELECT feed_file_id, row_number FROM source_records "
                                                "WHERE person_key = :k LIMIT 1"), {"k": keys[who]}).one()
                              for who in ("A", "D"))
        conn.execute(text("INSERT INTO record_links VALUES (:af, :ar, :a, 'new', 0.1, '', :now)"),
                     {"af": af, "ar": ar, "a": keys["A"], "now": NOW})
        pair = conn.execute(text(
            "INSERT INTO linkage_pairs (record_feed_file_id, record_row_number, other_feed_file_id, other_row_number, "
            "other_person_key, score, status) VALUES (:af, :ar, :df, :dr, :d, 0.5, 'decided') RETURNING id"),
            {"af": af, "ar": ar, "df": df, "dr": dr, "d": keys["D"]}).scalar_one()
        conn.execute(text(
            "INSERT INTO linkage_decisions (record_feed_file_id, record_row_number, other_feed_file_id, "
            "other_row_number, decision, pair_id, decided_by) VALUES (:af, :ar, :df, :dr, 'different', :p, 't')"),
            {"af": af, "ar": ar, "df": df, "dr": dr, "p": pair})
        # a rule's task holding for A (a verification, issue 22)
        conn.execute(text("INSERT INTO rule_holds VALUES (:a, 'verify-native-place', :now, '湖北省')"),
                     {"a": keys["A"], "now": NOW})
        # a home-observation plan of A's that ended long before the cutoff, with a check and an event (issue 25)
        plan = conn.execute(text(
            "INSERT INTO observation_plans (person_key, rule_id, starts_at, ends_at, check_minutes, status, "
            "closed_at, close_reason, token_nonce) VALUES (:a, 'yellow-key-area', :s, :e, '{480,1200}', 'closed', :e, "
            "'观察期满 / period over', 'n') RETURNING id"),
            {"a": keys["A"], "s": NOW - timedelta(days=DAYS + 30), "e": NOW - timedelta(days=DAYS + 16)}).scalar_one()
        conn.execute(text("INSERT INTO observation_events (plan_id, person_key, kind, at) VALUES (:p, :a, 'created', "
                          ":s)"), {"p": plan, "a": keys["A"], "s": NOW - timedelta(days=DAYS + 30)})
    return engine, keys, tasks


def personal_hits(engine, key: str) -> dict[str, int]:
    """Rows of every text, varchar and jsonb column of every table that hold ``key`` (the audit log's subjects
    apart: append-only, they keep the key that no other table resolves any more)."""
    with engine.connect() as conn:
        columns = conn.execute(text(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) "
            "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' "
            "AND c.data_type IN ('text', 'character varying', 'jsonb') "
            "AND NOT (c.table_name = 'audit_log' AND c.column_name = 'subject')")).all()
        hits = {f"{table}.{column}": conn.execute(
            text(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE :k'), {"k": f"%{key}%"}).scalar_one()
            for table, column in columns}
    return {where: count for where, count in hits.items() if count}


def history_of(engine, task_id: int) -> list[tuple]:
    """A task's events as the statistics place them: when, what, in which grid and of which kind."""
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(
            "SELECT e.seq, e.at, e.action, e.to_status, t.grid_id, t.grid_code, t.kind, t.status, t.created_at, "
            "t.cancelled_at FROM task_events e JOIN tasks t ON t.id = e.task_id WHERE e.task_id = :t ORDER BY e.seq"),
            {"t": task_id}).all()]


def table_counts(engine) -> dict[str, int]:
    tables = ("persons", "flags", "source_records", "source_record_phones", "risk_code_history", "risk_overrides",
              "code_appeals", "task_requests", "tasks", "task_events", "task_photos", "scans", "audit_log")
    with engine.connect() as conn:
        return {table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() for table in tables}


def test_the_days_come_from_the_argument_the_environment_or_28(monkeypatch):
    from matching.retention import DEFAULT_DAYS, retention_days

    monkeypatch.delenv("NANHAI_RETENTION_DAYS", raising=False)
    assert DEFAULT_DAYS == 28 and retention_days() == 28 and retention_days(3) == 3
    monkeypatch.setenv("NANHAI_RETENTION_DAYS", "40")
    assert retention_days() == 40 and retention_days(5) == 5
    for wrong in ("0", "-3", "many", "4000"):
        monkeypatch.setenv("NANHAI_RETENTION_DAYS", wrong)
        with pytest.raises(ConfigurationError, match="NANHAI_RETENTION_DAYS"):
            retention_days()
    with pytest.raises(ConfigurationError):
        retention_days(0)


def test_the_world_is_as_planned(world):
    engine, keys, tasks = world
    with engine.connect() as conn:
        colours = dict(conn.execute(text("SELECT person_key, colour FROM persons")).all())
        history = conn.execute(text("SELECT colour, expires_at FROM risk_code_history WHERE person_key = :a "
                                    "ORDER BY id"), {"a": keys["A"]}).all()
        statuses = {who: conn.execute(text("SELECT status FROM tasks WHERE id = :t"), {"t": tasks[keys[who]]})
                    .scalar_one() for who in ("A", "B", "H")}
    assert {who: colours[keys[who]] for who in PEOPLE} == {**dict.fromkeys(PEOPLE, "green"), "F": "yellow"}
    assert [colour for colour, _ in history] == ["red", "green"]
    assert history[0][1] == NOW - timedelta(days=DAYS + 1)  # A's code ended DAYS+1 days ago
    assert statuses["A"] == statuses["B"] == "cancelled" and statuses["H"] != "cancelled"
    assert all(personal_hits(engine, keys[who]) for who in PEOPLE)


def test_a_purge_cut_short_changes_nothing(world, monkeypatch):
    from matching import retention

    engine, _keys, _tasks = world
    before = table_counts(engine)

    def broken(*args, **kwargs):
        raise RuntimeError("the server went away")

    monkeypatch.setattr(retention, "record_read", broken)  # the very last write of the purge
    with pytest.raises(RuntimeError):
        retention.purge(engine, DAYS, now=NOW)
    assert table_counts(engine) == before


@pytest.fixture(scope="module")
def purged(world):
    """The first purge (at NOW, DAYS), with what the tables and A's task held before it."""
    from matching.retention import purge

    engine, keys, tasks = world
    before = table_counts(engine), history_of(engine, tasks[keys["A"]])
    report = purge(engine, DAYS, now=NOW)
    return report, before


def test_the_people_past_retention_are_purged_from_every_personal_table(world, purged):
    engine, keys, tasks = world
    report, _before = purged
    assert report.days == DAYS and report.cutoff == NOW - timedelta(days=DAYS)
    assert report.people == len(PURGED)
    assert report.removed == {"persons": 2, "flags": 0, "risk_code_history": 2, "risk_overrides": 1,
                              "code_appeals": 1, "task_requests": 1, "task_photos": 1, "source_record_phones": 2,
                              "source_records": 2, "record_links": 1, "linkage_decisions": 1, "linkage_pairs": 1,
                              "rule_holds": 1, "observation_plans": 1}
    assert report.tombstoned == {"tasks": 1, "scans": 1}
    for who in PURGED:
        assert personal_hits(engine, keys[who]) == {}, who
    with engine.connect() as conn:
        task = conn.execute(text("SELECT person_key, title, detail, ST_AsText(geom) AS point FROM tasks "
                                 "WHERE id = :t"), {"t": tasks[keys["A"]]}).one()
        scan = conn.execute(text("SELECT person_key FROM scans")).scalar_one()
    assert task.person_key is None and task.detail is None and task.point is None
    assert task.title == "红码人员转运（已清除 / purged）"  # the kind of work, not whom it was for
    assert scan == "purged"


def test_the_people_within_retention_keep_everything(world, purged):
    engine, keys, tasks = world
    with engine.connect() as conn:
        stored = set(conn.execute(text("SELECT person_key FROM persons")).scalars())
        records = set(conn.execute(text("SELECT DISTINCT person_key FROM source_records")).scalars())
        task_b = conn.execute(text("SELECT person_key, title FROM tasks WHERE id = :t"),
                              {"t": tasks[keys["B"]]}).one()
    assert stored == records == {keys[who] for who in KEPT}
    assert task_b.person_key == keys["B"] and task_b.title.startswith("红码人员转运：王")


def test_task_events_and_the_audit_log_keep_their_rows_and_places(world, purged):
    engine, keys, tasks = world
    report, (counts, events) = purged
    after = table_counts(engine)
    assert after["task_events"] == counts["task_events"] and after["tasks"] == counts["tasks"]
    assert after["audit_log"] == counts["audit_log"] + 1  # the purge's own line
    assert history_of(engine, tasks[keys["A"]]) == events and len(events) >= 2  # when, what, grid and kind stay
    with engine.connect() as conn:
        read = conn.execute(text("SELECT a.action, p.id_masked FROM audit_log a LEFT JOIN persons p "
                                 "ON p.person_key = a.subject WHERE a.subject = :a"), {"a": keys["A"]}).all()
    assert [tuple(row) for row in read] == [("unmask", None)]  # still counted, naming no one the platform holds


def test_the_purge_writes_its_counts_to_the_audit_log(world, purged):
    engine, keys, _tasks = world
    with engine.connect() as conn:
        line = conn.execute(text("SELECT username, action, subject, reason FROM audit_log "
                                 "WHERE action = 'retention.purge' ORDER BY id LIMIT 1")).one()
    assert (line.username, line.action, line.subject) == ("system", "retention.purge", f"retention:{DAYS}d")
    assert "people 2" in line.reason and "persons 2" in line.reason and "source_records 2" in line.reason
    assert "tasks 1" in line.reason and "scans 1" in line.reason
    assert not any(key in line.reason for key in keys.values())


def test_a_second_purge_removes_nothing_more(world, purged):
    from matching.retention import purge

    engine, _keys, _tasks = world
    before = table_counts(engine)
    again = purge(engine, DAYS, now=NOW)
    assert again.people == 0
    assert set(again.removed.values()) == set(again.tombstoned.values()) == set(again.cleared.values()) == {0}
    assert table_counts(engine) == {**before, "audit_log": before["audit_log"] + 1}


def test_lead_report_contacts_are_cleared_once_the_lead_is_done_with(world, purged):
    from matching.retention import purge

    engine, _keys, _tasks = world
    old, recent = NOW - timedelta(days=DAYS + 5), NOW - timedelta(days=DAYS - 5)
    with engine.begin() as conn:
        leads = [conn.execute(text(
            "INSERT INTO leads (status, summary, report_count, first_reported_at, last_reported_at) "
            "VALUES (:s, '有人发热 / a fever', 1, :at, :at) RETURNING id"), {"s": status, "at": at}).scalar_one()
            for status, at in (("dismissed", old), ("open", old), ("dismissed", recent))]
        for lead, at in zip(leads, (old, old, recent), strict=True):
            conn.execute(text("INSERT INTO lead_reports (lead_id, received_at, description, contact_sealed, "
                              "contact_masked, client, channel) VALUES (:l, :at, 'x', 'token', '138****5678', 'c', "
                              "'web')"), {"l": lead, "at": at})
    report = purge(engine, DAYS, now=NOW)
    with engine.connect() as conn:
        contacts = [conn.execute(text("SELECT contact_sealed, contact_masked FROM lead_reports WHERE lead_id = :l"),
                                 {"l": lead}).one() for lead in leads]
    assert report.cleared == {"lead_reports": 1}
    assert [tuple(c) for c in contacts] == [(None, None), ("token", "138****5678"), ("token", "138****5678")]


@pytest.fixture
def cli(env, database_factory, seeded_engine, monkeypatch):
    engine = database_factory("nanhai_retention_cli", copy_of=seeded_engine)
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    runner = CliRunner()

    def invoke(*args):
        from gridctl import main

        return runner.invoke(main, list(args), catch_exceptions=False)

    return engine, invoke


def test_gridctl_purge_prints_what_it_removed(cli, tmp_path):
    engine, run = cli
    long_ago = local(datetime.now(UTC) - timedelta(days=60))
    rows = [["1", "郑六一", valid_id(601), "13800000601", "", "113.15", "23.03", "WGS84", GREEN, long_ago],
            ["2", "冯七七", valid_id(602), "13800000602", "", "113.15", "23.03", "WGS84", GREEN,
             local(datetime.now(UTC))]]
    assert run("feed", "import", "--source", "公安", str(write_csv(tmp_path / "f.csv", rows))).exit_code == 0
    first = run("purge", "--older-than", "30")
    assert first.exit_code == 0, first.output
    lines = first.output.splitlines()
    assert "30" in lines[0] and "1" in lines[0]  # the days, the people
    assert any(line.split() == ["persons", "1"] for line in lines)
    assert any(line.split() == ["source_records", "1"] for line in lines)
    assert scalar(engine, "SELECT count(*) FROM persons") == 1
    second = run("purge", "--older-than", "30")
    assert second.exit_code == 0 and any(line.split() == ["persons", "0"] for line in second.output.splitlines())
    assert run("purge", "--older-than", "0").exit_code == 2  # click refuses it: at least one day
    assert scalar(engine, "SELECT count(*) FROM audit_log WHERE action = 'retention.purge' "
                          "AND username LIKE 'gridctl:%'") == 2
