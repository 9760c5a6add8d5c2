"""Reading the audit log: filters, pages, the Excel export; each read audited; only administrators and commanders;
logins written to it."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, text

from accounts.actor import ADMIN, COMMANDER, REPORTER, SUPERVISOR, Actor
from accounts.audit import EXPORT_COLUMNS, AuditFilter, export_log, read_log
from accounts.repository import record_read
from gis.errors import InvalidRequest, PermissionDenied
from matching.privacy import load_vault
from tests.matching.feedfiles import valid_id

ADMIN_ACTOR = Actor(1, "audit_admin", ADMIN)
COMMANDER_ACTOR = Actor(2, "audit_commander", COMMANDER)
PERSON_ID = valid_id(701)


@pytest.fixture(scope="module")
def engine(database_factory, seeded_engine) -> Engine:
    """A copy of the seeded district whose audit log holds known lines: 30 look-ups by one supervisor about one
    person, two logins, an account change, and three lines on fixed days of November 2026."""
    from demo.accounts import create_demo_accounts
    from tests.conftest import DEMO_PASSWORD

    engine = database_factory("nanhai_audit", copy_of=seeded_engine)
    key = load_vault().person_key(PERSON_ID)
    supervisor = Actor(3, "audit_supervisor", SUPERVISOR)
    with engine.begin() as conn:
        create_demo_accounts(conn, DEMO_PASSWORD)
        for n in range(30):
            record_read(conn, supervisor, "person.lookup", key, f"热线来电 {n}", "c")
        record_read(conn, supervisor, "login", supervisor.username, "登录 / logged in", "c")
        record_read(conn, ADMIN_ACTOR, "login", ADMIN_ACTOR.username, "登录 / logged in", "c")
        record_read(conn, ADMIN_ACTOR, "user.disable", "worker_0001", "停用 / disabled", None)
        for day, action in (("2026-11-01 09:00+08", "feed.import"), ("2026-11-02 23:30+08", "feed.withdraw"),
                            ("2026-11-03 00:30+08", "rules.save")):
            conn.execute(text("INSERT INTO audit_log (at, user_id, username, action, subject, reason) "
                              "VALUES (CAST(:at AS timestamptz), 1, 'audit_admin', :a, 'feed_file:7', 'x')"),
                         {"at": day, "a": action})
    return engine


def read(engine: Engine, where: AuditFilter, actor: Actor = ADMIN_ACTOR) -> tuple[list[dict], int]:
    with engine.begin() as conn:
        return read_log(conn, actor, where, load_vault(), "client")


def test_a_filter_by_user_and_kind(engine):
    rows, total = read(engine, AuditFilter(username="audit_supervisor", kind="login"))
    assert total == 1 and rows[0]["action"] == "login" and rows[0]["subject"] == "audit_supervisor"
    rows, total = read(engine, AuditFilter(kind="user."))
    assert total == 1 and rows[0]["reason"] == "停用 / disabled"
    rows, total = read(engine, AuditFilter(kind="feed."))
    assert total == 2 and [r["action"] for r in rows] == ["feed.withdraw", "feed.import"], "newest first"


def test_a_filter_by_person_takes_an_id_number_or_a_fragment_of_the_subject(engine):
    rows, total = read(engine, AuditFilter(person=PERSON_ID))
    assert total == 30 and {r["action"] for r in rows} == {"person.lookup"}
    assert read(engine, AuditFilter(person=valid_id(702)))[1] == 0
    assert read(engine, AuditFilter(person="worker_0001"))[1] == 1
    assert read(engine, AuditFilter(person="feed_file:"))[1] == 3
    assert read(engine, AuditFilter(person="100%_"))[1] == 0, "LIKE's wildcards are taken literally"
    with pytest.raises(InvalidRequest, match="身份证号无效"):
        read(engine, AuditFilter(person=PERSON_ID[:17] + "0" if PERSON_ID[17] != "0" else PERSON_ID[:17] + "1"))


def test_a_filter_by_days_counts_in_beijing_time(engine):
    rows, total = read(engine, AuditFilter(since=date(2026, 11, 2), until=date(2026, 11, 2)))
    assert total == 1 and rows[0]["action"] == "feed.withdraw" and rows[0]["at"] == "2026-11-02 23:30:00"
    assert read(engine, AuditFilter(since=date(2026, 11, 1), until=date(2026, 11, 3)))[1] == 3
    assert read(engine, AuditFilter(until=date(2026, 11, 1)))[1] == 1
    with pytest.raises(InvalidRequest):
        read(engine, AuditFilter(since=date(2026, 11, 3), until=date(2026, 11, 1)))


def test_pages(engine):
    where = AuditFilter(person=PERSON_ID, page_size=12)
    pages = [read(engine, AuditFilter(person=PERSON_ID, page_size=12, page=n)) for n in (1, 2, 3, 4)]
    assert [len(rows) for rows, _total in pages] == [12, 12, 6, 0] and {t for _r, t in pages} == {30}
    reasons = [r["reason"] for rows, _ in pages for r in rows]
    assert reasons == [f"热线来电 {n}" for n in range(29, -1, -1)], "every line once, newest first"
    assert where.describe() == f"person={PERSON_ID}"  # as typed: read_log names the person by key instead
    with pytest.raises(InvalidRequest):
        read(engine, AuditFilter(page=0))


def test_reading_the_log_is_audited_without_the_id_number_in_clear(engine):
    read(engine, AuditFilter(username="audit_supervisor", person=PERSON_ID, kind="person.lookup"),
         COMMANDER_ACTOR)
    rows, _ = read(engine, AuditFilter(kind="audit.read", username="audit_commander"))
    key = load_vault().person_key(PERSON_ID)
    assert rows[0]["reason"] == f"user=audit_supervisor person={key} kind=person.lookup"
    assert rows[0]["subject"] == "audit_log"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE reason LIKE :id"),
                            {"id": f"%{PERSON_ID}%"}).scalar_one() == 0


def test_the_export_holds_every_matching_line_and_is_audited(engine):
    with engine.begin() as conn:
        body = export_log(conn, COMMANDER_ACTOR, AuditFilter(person=PERSON_ID, page=3), load_vault(), "client")
    sheet = load_workbook(io.BytesIO(body)).active
    lines = list(sheet.iter_rows(values_only=True))
    assert lines[0] == tuple(heading for _key, heading in EXPORT_COLUMNS)
    assert len(lines) == 31, "all 30 lines, whatever page was shown"
    at, user, action, subject, _person, reason = lines[1]
    assert (user, action, subject, reason) == ("audit_supervisor", "person.lookup", load_vault().person_key(PERSON_ID),
                                               "热线来电 29")
    assert datetime.strptime(at, "%Y-%m-%d %H:%M:%S")
    rows, _ = read(engine, AuditFilter(kind="audit.export"))
    assert rows[0]["username"] == "audit_commander" and rows[0]["reason"].startswith("person=")


@pytest.mark.parametrize("role", [SUPERVISOR, REPORTER, "worker"])
def test_only_administrators_and_commanders_read_the_log(engine, role):
    someone = Actor(9, f"audit_{role}", role)
    with pytest.raises(PermissionDenied):
        read(engine, AuditFilter(), someone)
    with pytest.raises(PermissionDenied), engine.begin() as conn:
        export_log(conn, someone, AuditFilter(), load_vault())


def test_a_login_is_written_to_the_log(engine):
    from app import create_app
    from tests.conftest import signed_in

    started = datetime.now(UTC)
    client = create_app(engine).server.test_client()
    signed_in(client, "demo_supervisor")
    assert client.post("/api/v1/session", json={"username": "demo_supervisor", "password": "wrong-password"}) \
        .status_code == 401
    with engine.connect() as conn:
        lines = conn.execute(text("SELECT username, action, subject, client FROM audit_log WHERE at >= :t "
                                  "AND action LIKE 'login%'"), {"t": started}).all()
    assert [tuple(line[:3]) for line in lines] == [("demo_supervisor", "login", "demo_supervisor")]
    assert lines[0].client, "the client's keyed tag, as the failures keep it"
