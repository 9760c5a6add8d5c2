"""The desk's alerts: a new lead, a merged report, an overdue task and an extension request each appear once, in
their window and in scope only, and an alert names no one."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from accounts.actor import Actor
from leads.reports import LeadReport
from leads.repository import submit_report
from matching.privacy import Vault
from tasks.alerts import Alert, pending_alerts
from tasks.repository import NewTask, create_task, transition

T0 = datetime(2031, 3, 1, 2, 0, tzinfo=UTC)  # after every other test's moments: nothing of theirs falls in a window
PHONE = "13912345678"
DESCRIPTION = "陈八方家楼下有外地返乡人员聚集"
ADDRESS = "桂城街道南海大道88号"


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


@pytest.fixture
def conn(work_engine):
    """A connection whose every write is rolled back at the end."""
    with work_engine.connect() as connection, connection.begin() as transaction:
        yield connection
        transaction.rollback()


@pytest.fixture
def world(conn):
    """Two leads (one with a merged report) and an unplaced one, an overdue task and an extension request."""
    grid = conn.execute(text(
        "SELECT g.id, g.code, g.name, ST_X(ST_PointOnSurface(g.geom)) AS lon, ST_Y(ST_PointOnSurface(g.geom)) AS lat "
        "FROM grids g JOIN user_grids ug ON ug.grid_id = g.id JOIN users u ON u.id = ug.user_id "
        "WHERE u.username = 'demo_worker'")).one()
    worker_id = conn.execute(text("SELECT id FROM users WHERE username = 'demo_worker'")).scalar_one()
    worker = Actor(worker_id, "demo_worker", "worker", grid_ids=frozenset({grid.id}))
    vault = Vault(b"alerts-test", Fernet.generate_key())
    report = LeadReport(DESCRIPTION, ADDRESS, (grid.lon, grid.lat), PHONE)
    first = submit_report(conn, report, "client-a", "public", vault, minutes(1))
    merged = submit_report(conn, report, "client-b", "public", vault, minutes(2))
    unplaced = submit_report(conn, LeadReport("有人发烧", None, None, None), "client-c", "public", vault, minutes(3))
    assert merged["merged"] and merged["id"] == first["id"] and not unplaced["placed"]
    checkpoint = create_task(conn, Actor.system(), NewTask("checkpoint_alert", grid.code, "卡口预警核查",
                                                           assignee_id=worker_id), T0)  # due after 60 minutes
    visit = create_task(conn, Actor.system(), NewTask("home_visit", grid.code, "上门走访", assignee_id=worker_id), T0)
    asked = transition(conn, worker, visit["id"], "request_extension", visit["version"],
                       {"until": minutes(24 * 60).isoformat(), "reason": "住户不在家"}, minutes(4))
    return {"grid": grid, "worker": worker, "lead": first["id"], "unplaced": unplaced["id"],
            "overdue": checkpoint, "visit": asked["task"]}


def test_each_event_appears_once_in_its_window_newest_first(conn, world):
    grid = world["grid"]
    alerts = pending_alerts(conn, None, T0, minutes(90))
    assert [(a.kind, a.at, a.lead_id, a.task_id) for a in alerts] == [
        ("overdue", minutes(60), None, world["overdue"]["id"]),
        ("extension", minutes(4), None, world["visit"]["id"]),
        ("lead", minutes(3), world["unplaced"], None),
        ("lead", minutes(2), world["lead"], None),  # the report merged into the lead
        ("lead", minutes(1), world["lead"], None),  # the report that made it
    ]
    assert all(a.grid_code == grid.code and a.grid_name == grid.name for a in alerts if a.lead_id != world["unplaced"])
    assert [(a.grid_code, a.grid_name) for a in alerts if a.lead_id == world["unplaced"]] == [("", None)]
    # asked again from where the last answer stopped, nothing repeats and nothing is skipped
    cuts = [T0, minutes(1), minutes(2.5), minutes(4), minutes(59.99), minutes(60), minutes(90)]
    pieces = [a for since, now in zip(cuts, cuts[1:], strict=False) for a in pending_alerts(conn, None, since, now)]
    assert sorted(pieces, key=lambda a: a.at) == sorted(alerts, key=lambda a: a.at)
    assert pending_alerts(conn, None, minutes(60), minutes(120)) == []
    assert pending_alerts(conn, None, T0 - timedelta(hours=1), T0) == []


def test_only_the_grids_in_scope_are_alerted(conn, world):
    grid = world["grid"]
    other = conn.execute(text("SELECT id FROM grids WHERE id <> :g ORDER BY code LIMIT 3"),
                         {"g": grid.id}).scalars().all()
    mine = pending_alerts(conn, [grid.id, *other], T0, minutes(90))
    assert {a.kind for a in mine} == {"lead", "overdue", "extension"} and len(mine) == 4
    assert world["unplaced"] not in {a.lead_id for a in mine}, "an unplaced lead is the whole district's"
    assert pending_alerts(conn, list(other), T0, minutes(90)) == []
    assert pending_alerts(conn, [], T0, minutes(90)) == []


def test_a_task_no_longer_overdue_or_an_extension_decided_is_no_longer_alerted(conn, world):
    supervisor = Actor(None, "demo_supervisor", "supervisor", grid_ids=frozenset({world["grid"].id}))
    overdue, visit = world["overdue"], world["visit"]
    transition(conn, supervisor, overdue["id"], "cancel", overdue["version"], {"reason": "重复任务"}, minutes(30))
    refused = transition(conn, supervisor, visit["id"], "refuse_extension", visit["version"], {"reason": "不予延期"},
                         minutes(5))["task"]
    assert {a.kind for a in pending_alerts(conn, None, T0, minutes(90))} == {"lead"}
    again = transition(conn, world["worker"], visit["id"], "request_extension", refused["version"],
                       {"until": minutes(25 * 60).isoformat(), "reason": "仍联系不上"}, minutes(6))["task"]
    asked = [a for a in pending_alerts(conn, None, T0, minutes(90)) if a.kind == "extension"]
    assert [(a.at, a.task_id) for a in asked] == [(minutes(6), visit["id"])], "the request waiting, not the refused one"
    transition(conn, supervisor, visit["id"], "grant_extension", again["version"], {}, minutes(7))
    assert [a for a in pending_alerts(conn, None, T0, minutes(90)) if a.kind == "extension"] == []


def test_an_alert_names_no_one(conn, world):
    assert [f.name for f in dataclasses.fields(Alert)] == ["kind", "at", "grid_code", "grid_name", "task_id",
                                                            "lead_id"]
    names = conn.execute(text("SELECT string_agg(display_name, '|') FROM users")).scalar_one().split("|")
    shown = repr(pending_alerts(conn, None, T0, minutes(90)))
    for personal in (PHONE, PHONE[-4:], DESCRIPTION, ADDRESS, "陈八方", "demo_worker", *names):
        assert personal not in shown
