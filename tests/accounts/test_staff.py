"""The administrator's account functions: only administrators may call them; disabling a worker or taking his
grid recalls his open tasks (with an event) and auto-dispatch gives them to another worker; a town's
commander sees only his town; every change is audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from accounts import staff
from accounts.activation import activate
from accounts.actor import Actor
from accounts.repository import check_login, load_actor, open_session, session_actor
from evaluation.indicators import Period, evaluate
from gis.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from leads.repository import list_leads
from tasks.overview import wall_summary
from tasks.repository import NewTask, TaskFilter, create_task, get_task, list_tasks
from tests.accounts.conftest import ADMIN_ACTOR, NOW, new_phone

STRONG = "桂城巡查-二零二六-春"


def _add_worker(conn, vault, username, *grids):
    return staff.add_user(conn, ADMIN_ACTOR, username, "陈志伟", "worker", vault, NOW, new_phone(), grids)


CALLS = {
    "add_user": lambda c, a, v: staff.add_user(c, a, "x.role", "某某", "reporter", v, NOW),
    "get_user": lambda c, a, v: staff.get_user(c, a, "demo_worker"),
    "list_users": lambda c, a, v: staff.list_users(c, a, v),
    "disable_user": lambda c, a, v: staff.disable_user(c, a, "demo_reporter", NOW),
    "enable_user": lambda c, a, v: staff.enable_user(c, a, "demo_reporter"),
    "change_role": lambda c, a, v: staff.change_role(c, a, "demo_reporter", "commander", NOW),
    "assign_grids": lambda c, a, v: staff.assign_grids(c, a, "demo_worker", ("440605011001002",), NOW),
    "unassign_grids": lambda c, a, v: staff.unassign_grids(c, a, "demo_worker", ("440605011001001",), NOW),
    "set_duty": lambda c, a, v: staff.set_duty(c, a, "demo_worker", False),
    "reset_password": lambda c, a, v: staff.reset_password(c, a, "demo_reporter", v, NOW),
}


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("role", ["worker", "supervisor", "commander", "reporter", "system"])
def test_only_administrators_may_manage_accounts(staff_engine, vault, call, role):
    actor = Actor.system() if role == "system" else Actor(99, f"x_{role}", role)
    with staff_engine.connect() as conn, conn.begin() as transaction:
        with pytest.raises(PermissionDenied):
            CALLS[call](conn, actor, vault)
        transaction.rollback()


def test_the_administrator_may_and_every_change_is_audited(staff_engine, vault):
    with staff_engine.connect() as conn, conn.begin() as transaction:
        admin = load_actor(conn, _user_id(staff_engine, "demo_admin"))
        for name in sorted(CALLS):
            CALLS[name](conn, admin, vault)
        lines = conn.execute(text("SELECT action, username FROM audit_log WHERE username = 'demo_admin' "
                                  "AND action LIKE 'user.%' ORDER BY id")).all()
        assert [a for a, _ in lines] == ["user.create", "user.scope", "user.scope", "user.disable", "user.enable",
                                         "user.reset_password", "user.duty", "user.scope"]
        with pytest.raises(Conflict, match="own account"):
            staff.disable_user(conn, admin, "demo_admin", NOW)
        with pytest.raises(Conflict, match="own account"):
            staff.change_role(conn, admin, "demo_admin", "commander", NOW)
        transaction.rollback()


def _user_id(engine, username):
    with engine.connect() as conn:
        return conn.execute(text("SELECT id FROM users WHERE username = :u"), {"u": username}).scalar_one()


def test_adding_refuses_what_does_not_fit_and_names_the_field(staff_engine, vault):
    phone = new_phone()
    cases = [
        (dict(username="demo_worker", name="某", role="reporter"), "username", "taken"),
        (dict(username="白 空格", name="某", role="reporter"), "username", "username"),
        (dict(username="add.noname", name=" ", role="reporter"), "name", "name"),
        (dict(username="add.king", name="某", role="king"), "role", "unknown role"),
        (dict(username="add.phone", name="某", role="reporter", phone="12345"), "phone", "11-digit"),
        (dict(username="add.nogrid", name="某", role="worker"), "grid_codes", "at least one grid"),
        (dict(username="add.far", name="某", role="worker", grid_codes=("440605011001001",),
              community_code="440605011004"), "grid_codes", "not in community"),
        (dict(username="add.sup", name="某", role="supervisor"), "community_code", "community"),
        (dict(username="add.cmd", name="某", role="commander", town_code="440605999"), "town_code", "unknown town"),
        (dict(username="add.adm", name="某", role="admin", town_code="440605011"), "town_code", "whole district"),
    ]
    with staff_engine.connect() as conn, conn.begin() as transaction:
        staff.add_user(conn, ADMIN_ACTOR, "add.first", "某", "reporter", vault, NOW, phone)
        with pytest.raises(InvalidRequest, match="already belongs to add.first") as taken:
            staff.add_user(conn, ADMIN_ACTOR, "add.second", "某", "reporter", vault, NOW, phone)
        assert taken.value.field == "phone" and phone not in str(taken.value), "the phone is named masked"
        for fields, field, message in cases:
            args = {"phone": None, "grid_codes": (), "community_code": None, "town_code": None, **fields}
            with pytest.raises(InvalidRequest, match=message) as refused:
                staff.add_user(conn, ADMIN_ACTOR, args.pop("username"), args.pop("name"), args.pop("role"), vault,
                               NOW, **args)
            assert refused.value.field == field, fields
        transaction.rollback()


def test_listing_finds_by_name_username_phone_grid_role_community_and_town(staff_engine, vault):
    phone = new_phone()
    with staff_engine.connect() as conn, conn.begin() as transaction:
        staff.add_user(conn, ADMIN_ACTOR, "find.me", "司徒锦荣", "worker", vault, NOW, phone, ("440605011005001",))
        staff.add_user(conn, ADMIN_ACTOR, "find.town", "司徒秀英", "commander", vault, NOW, new_phone(),
                       town_code="440605121")

        def names(**where):
            found, total = staff.list_users(conn, ADMIN_ACTOR, vault, staff.UserFilter(**where))
            assert total == len(found)
            return [u["username"] for u in found]

        assert names(search="司徒") == ["find.me", "find.town"]
        assert names(search="FIND.m") == ["find.me"]
        assert names(search=f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}") == ["find.me"]
        assert "find.me" in names(search="440605011005001")
        assert names(search="司徒", role="commander") == ["find.town"]
        assert names(search="司徒", community="440605011005") == ["find.me"]
        assert names(search="司徒", town="440605121") == ["find.town"]
        assert names(search="司徒", status="pending_activation") == ["find.me", "find.town"]
        assert names(search="100%_") == []
        shown = staff.get_user(conn, ADMIN_ACTOR, "find.me")
        assert shown["phone_masked"] == f"{phone[:3]}****{phone[-4:]}" and phone not in str(shown)
        assert shown["status"] == "pending_activation" and shown["scope"] == "网格 440605011005001"
        assert staff.get_user(conn, ADMIN_ACTOR, "find.town")["scope"] == "镇街 440605121"
        real, total = staff.list_users(conn, ADMIN_ACTOR, vault, staff.UserFilter(include_synthetic=False, limit=5000))
        everyone = staff.list_users(conn, ADMIN_ACTOR, vault, staff.UserFilter(limit=1))[1]
        assert total == len(real) < everyone - 8000 and all(not u["synthetic"] for u in real)
        with pytest.raises(InvalidRequest):
            staff.list_users(conn, ADMIN_ACTOR, vault, staff.UserFilter(status="asleep"))
        transaction.rollback()


def test_a_disabled_users_session_is_refused_at_once_and_enabling_lets_him_back(staff_engine, vault):
    with staff_engine.connect() as conn, conn.begin() as transaction:
        issued = staff.add_user(conn, ADMIN_ACTOR, "off.soon", "某", "reporter", vault, NOW, new_phone())
        actor = activate(conn, "off.soon", issued.code, STRONG, "c", vault, NOW)
        token, _, _ = open_session(conn, actor.user_id, NOW)
        assert session_actor(conn, token, NOW) is not None
        done = staff.disable_user(conn, ADMIN_ACTOR, "off.soon", NOW)
        assert done["status"] == "disabled" and done["disabled_by"] == "test_admin"
        assert session_actor(conn, token, NOW) is None
        assert check_login(conn, "off.soon", STRONG, "c", NOW) is None
        assert staff.disable_user(conn, ADMIN_ACTOR, "off.soon", NOW)["changes"] == [], "twice changes nothing"
        assert staff.enable_user(conn, ADMIN_ACTOR, "off.soon")["status"] == "active"
        assert check_login(conn, "off.soon", STRONG, "c", NOW) is not None
        transaction.rollback()


def _tasks_for(conn, worker_id, grid_code, count, status="dispatched"):
    """``count`` tasks in ``grid_code`` given to the worker, moved on to ``status``."""
    supervisor = Actor(None, "test_supervisor", "supervisor", grid_ids=frozenset(conn.execute(text(
        "SELECT id FROM grids WHERE code LIKE :c"), {"c": grid_code[:12] + "%"}).scalars()))
    worker = load_actor(conn, worker_id)
    from tasks.repository import transition

    made = []
    for number in range(count):
        task = create_task(conn, supervisor, NewTask("area_sweep", grid_code, f"巡查 {number}",
                                                     assignee_id=worker_id), NOW)
        if status in ("accepted", "in_progress"):
            task = transition(conn, worker, task["id"], "accept", task["version"], {}, NOW)["task"]
        if status == "in_progress":
            task = transition(conn, worker, task["id"], "start", task["version"], {}, NOW)["task"]
        made.append(task)
    return made


def test_disabling_a_worker_recalls_his_open_tasks_and_auto_dispatch_reassigns_them(staff_engine, vault):
    with staff_engine.connect() as conn, conn.begin() as transaction:
        _add_worker(conn, vault, "off.worker", "440605011015001")
        worker_id = conn.execute(text("SELECT id FROM users WHERE username = 'off.worker'")).scalar_one()
        tasks = _tasks_for(conn, worker_id, "440605011015001", 2) + \
            _tasks_for(conn, worker_id, "440605011015001", 1, "in_progress")
        done = staff.disable_user(conn, ADMIN_ACTOR, "off.worker", NOW + timedelta(minutes=5))
        assert sorted(done["recalled"]) == sorted(t["id"] for t in tasks)
        for task in tasks:
            now = get_task(conn, Actor.system(), task["id"], NOW)
            assert now["status"] == "dispatched" and now["assignee_id"] not in (None, worker_id)
            recall, dispatch = now["events"][-2:]
            assert recall["action"] == "recall" and recall["actor"] == "system" and recall["to_status"] == "created"
            assert "disabled" in recall["detail"]["reason"] and recall["detail"]["previous_assignee_id"] == worker_id
            assert recall["note"] == "操作人 / by test_admin"
            assert dispatch["action"] == "dispatch" and dispatch["detail"]["auto"] is True
        grid_workers = set(conn.execute(text(
            "SELECT ug.user_id FROM user_grids ug JOIN grids g ON g.id = ug.grid_id WHERE g.code = '440605011015001'"
        )).scalars())
        assert {get_task(conn, Actor.system(), t["id"], NOW)["assignee_id"] for t in tasks} <= grid_workers
        transaction.rollback()


def test_with_nobody_else_on_duty_a_recalled_task_waits_for_a_supervisor(staff_engine, vault):
    with staff_engine.connect() as conn, conn.begin() as transaction:
        _add_worker(conn, vault, "off.alone", "440605011015002")
        worker_id = conn.execute(text("SELECT id FROM users WHERE username = 'off.alone'")).scalar_one()
        task = _tasks_for(conn, worker_id, "440605011015002", 1, "accepted")[0]
        conn.execute(text("UPDATE users SET on_duty = false WHERE role = 'worker' AND id <> :w"), {"w": worker_id})
        staff.disable_user(conn, ADMIN_ACTOR, "off.alone", NOW)
        now = get_task(conn, Actor.system(), task["id"], NOW)
        assert now["status"] == "created" and now["assignee_id"] is None
        assert [e["action"] for e in now["events"]][-1] == "recall"
        transaction.rollback()


def test_taking_a_grid_from_a_worker_recalls_only_his_tasks_there(staff_engine, vault):
    with staff_engine.connect() as conn, conn.begin() as transaction:
        _add_worker(conn, vault, "two.grids", "440605011007001", "440605011007002")
        worker_id = conn.execute(text("SELECT id FROM users WHERE username = 'two.grids'")).scalar_one()
        kept = _tasks_for(conn, worker_id, "440605011007001", 1)[0]
        taken = _tasks_for(conn, worker_id, "440605011007002", 1, "in_progress")[0]
        done = staff.unassign_grids(conn, ADMIN_ACTOR, "two.grids", ("440605011007002",), NOW)
        assert done["grid_codes"] == ["440605011007001"] and done["recalled"] == [taken["id"]]
        assert get_task(conn, Actor.system(), kept["id"], NOW)["assignee_id"] == worker_id
        moved = get_task(conn, Actor.system(), taken["id"], NOW)
        assert moved["status"] == "dispatched" and moved["assignee_id"] != worker_id
        assert moved["events"][-2]["action"] == "recall" and "taken" in moved["events"][-2]["detail"]["reason"]
        with pytest.raises(InvalidRequest, match="has no grid"):
            staff.unassign_grids(conn, ADMIN_ACTOR, "two.grids", ("440605011007002",), NOW)
        with pytest.raises(InvalidRequest, match="not in community"):
            staff.assign_grids(conn, ADMIN_ACTOR, "two.grids", ("440605011008001",), NOW)
        again = staff.assign_grids(conn, ADMIN_ACTOR, "two.grids", ("440605011007003",), NOW)
        assert again["grid_codes"] == ["440605011007001", "440605011007003"] and again["recalled"] == []
        made_supervisor = staff.change_role(conn, ADMIN_ACTOR, "two.grids", "supervisor", NOW,
                                            community_code="440605011007")
        assert made_supervisor["grid_codes"] == [] and made_supervisor["recalled"] == [kept["id"]]
        assert len(load_actor(conn, worker_id).grid_ids) == conn.execute(text(
            "SELECT count(*) FROM grids WHERE code LIKE '440605011007%'")).scalar_one()
        with pytest.raises(NotFound):
            staff.set_duty(conn, ADMIN_ACTOR, "nobody.here", True)
        transaction.rollback()


def test_a_town_commander_sees_only_his_town_and_a_district_commander_everything(staff_engine, vault):
    with staff_engine.connect() as conn, conn.begin() as transaction:
        for username, town in (("cmd.town", "440605121"), ("cmd.district", None), ("rep.town", "440605121")):
            issued = staff.add_user(conn, ADMIN_ACTOR, username, "某", "reporter" if username.startswith("rep")
                                    else "commander", vault, NOW, new_phone(), town_code=town)
            activate(conn, username, issued.code, STRONG, "c", vault, NOW)
        town_grids = set(conn.execute(text("SELECT id FROM grids WHERE code LIKE '440605121%'")).scalars())
        town = check_login(conn, "cmd.town", STRONG, "c", NOW)
        district = check_login(conn, "cmd.district", STRONG, "c", NOW)
        reporter = check_login(conn, "rep.town", STRONG, "c", NOW)
        assert town.town_id is not None and set(town.grid_ids) == town_grids and not town.sees_everything
        assert district.sees_everything and district.grid_scope() is None
        assert reporter.aggregate_scope() == sorted(town_grids)
        inside = conn.execute(text("SELECT code FROM grids WHERE code LIKE '440605121%' ORDER BY code "
                                   "LIMIT 1")).scalar_one()
        made = [create_task(conn, Actor.system(), NewTask("area_sweep", code, "范围"), NOW)
                for code in (inside, "440605011001001")]
        seen = {t["id"] for t in list_tasks(conn, town, TaskFilter(limit=1000), NOW)[0]}
        assert made[0]["id"] in seen and made[1]["id"] not in seen
        assert all(t["grid_code"].startswith("440605121") for t in list_tasks(conn, town, TaskFilter(), NOW)[0])
        with pytest.raises(NotFound):
            get_task(conn, town, made[1]["id"], NOW)
        assert get_task(conn, district, made[1]["id"], NOW)["id"] == made[1]["id"]
        assert list_leads(conn, town, None) == [] or all(lead["grid_code"].startswith("440605121")
                                                         for lead in list_leads(conn, town, None))
        period = Period(NOW - timedelta(days=1), NOW + timedelta(days=1))
        assert [r["code"] for r in evaluate(conn, town, "town", period, NOW)] == ["440605121"]
        assert [r["code"] for r in evaluate(conn, reporter, "town", period, NOW)] == ["440605121"]
        assert len(evaluate(conn, district, "town", period, NOW)) == 7
        walled = wall_summary(conn, NOW, sorted(town.grid_ids))
        assert made[0]["grid_code"] in walled["grids"] and made[1]["grid_code"] not in walled["grids"]
        assert all(code.startswith("440605121") for code in walled["grids"])
        assert walled["counters"]["open"] < wall_summary(conn, NOW)["counters"]["open"]
        # made district-wide again by the administrator
        staff.change_role(conn, ADMIN_ACTOR, "cmd.town", "commander", NOW)
        assert check_login(conn, "cmd.town", STRONG, "c", NOW).sees_everything
        transaction.rollback()
