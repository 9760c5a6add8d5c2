"""``gridctl bench replay``: the wall's after-action replay moving to random minutes of a day of 5,000 task events.

The day is made through the platform's own write paths, in time order: persons and their code changes by
:func:`matching.repository.store_match` (a first run the day before, then a run every hour of the day changing
some persons' codes), tasks by :func:`tasks.repository.create_task` and every later step by
:func:`tasks.repository.transition` (accept, start, extension asked and granted, handle, close, cancel), until
the day holds ``events`` task events. It is made once per database (an ``audit_log`` line marks it, with its
sizes: a database made with other sizes is refused, not mixed).

What is measured, on the connection a callback would use:

- **cold**: :func:`tasks.replay.wall_summary_at` for a minute of a day not loaded yet (the day is loaded: its
  start, code changes and task events), median of ``cold`` loads (the cache emptied before each);
- **warm**: the same for ``moves`` random minutes of the loaded day (median, 95th percentile, worst);
- **callback**: the replay's Dash callback posted as the browser posts it for those minutes (the whole server
  request: Flask, Dash, the session check, the figures and the panel), median, 95th percentile, worst;
- **peer**: the live :func:`tasks.overview.wall_summary` at the same minutes (median), which the live wall
  asks for on every change.

Answers: at the day's last minute, after all of its work, the replay equals the live wall (``identical``); at
``checks`` of the random minutes its counters (open, closed today, red, yellow, blue) equal a plain SQL
reconstruction from the history (``minutes_differing_from_sql`` lists any that differ).
Target (issue 23): the replay moves to any minute in ≤ 300 ms of server time.
"""

from __future__ import annotations

import heapq
import json
import secrets
import statistics
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, text

from accounts.actor import Actor
from accounts.repository import load_actor, save_user
from matching.repository import store_match
from tasks.overview import BEIJING, wall_summary
from tasks.replay import DAYS, day_bounds, wall_summary_at
from tasks.repository import NewTask, create_task, transition
from tasks.sla import escalate_overdue

BENCH_DATABASE = "nanhai_replay_bench"
BENCH_USER = "bench_replay_commander"
DAY = date(2026, 11, 30)  # the day replayed (the district's date)
MARK = "bench_replay_day"
TARGET_MS = 300.0
KINDS = ("lead_verification", "home_visit", "isolation_check", "area_sweep")
WORKING = ("accept", "start", "request_extension", "handle")
COLOURS = np.array(["red", "yellow", "blue", "green"], dtype=object)


def _percentile(values: list[float], share: float) -> float:
    return float(np.percentile(values, share * 100)) if values else 0.0


def _rules(colours: np.ndarray) -> list[str | None]:
    """The rule that coded each colour (green: none)."""
    return [None if c == "green" else "bench" for c in colours]


def _persons(rng: np.random.Generator, count: int, grids: pd.DataFrame) -> pd.DataFrame:
    """``count`` persons in the grids: 2 % red, 3 % yellow, 5 % blue, the rest green."""
    at = rng.integers(len(grids), size=count)
    colour = COLOURS[np.searchsorted(np.array([0.02, 0.05, 0.10, 1.0]), rng.random(count), side="right")]
    return pd.DataFrame({
        "person_key": [f"{i:064x}" for i in range(count)], "id_masked": "440605********0000", "name_masked": "压*",
        "phone_masked": None, "colour": colour, "reason": "压测生成 / generated for the benchmark",
        "rule_id": _rules(colour), "sources": "压测", "method": "point",
        "confidence": 1.0, "grid_id": grids["id"].to_numpy()[at], "unplaced_reason": None,
        "record_feed_file_id": np.nan, "record_row_number": np.nan, "provisional": False, "explanation": None,
        "lon": grids["lon"].to_numpy()[at], "lat": grids["lat"].to_numpy()[at]})


def _store(conn: Connection, persons: pd.DataFrame, when: datetime) -> None:
    frame = persons.assign(set_at=pd.Timestamp(when), expires_at=pd.NaT)
    frame["expires_at"] = pd.to_datetime(frame["expires_at"], utc=True)
    store_match(conn, [frame], pd.Timestamp(when))


def _codes(engine: Engine, rng: np.random.Generator, persons: int, changes: int, start: datetime,
           matches: int) -> int:
    """The persons, coded the day before, then ``matches`` matches spread over the day changing ``changes`` codes
    in all; returns the code changes written during the day."""
    with engine.connect() as conn:
        grids = pd.read_sql(text("SELECT id, ST_X(ST_PointOnSurface(geom)) AS lon, "
                                 "ST_Y(ST_PointOnSurface(geom)) AS lat FROM grids ORDER BY code"), conn)
    people = _persons(rng, persons, grids)
    with engine.begin() as conn:
        _store(conn, people, start - timedelta(hours=12))
    written = 0
    for run in range(matches):
        picked = rng.choice(persons, size=min(persons, max(1, changes // matches)), replace=False)
        current = people.loc[picked, "colour"].to_numpy()
        shifted = np.array([COLOURS[(np.flatnonzero(COLOURS == c)[0] + 1 + rng.integers(3)) % 4] for c in current],
                           dtype=object)
        people.loc[picked, "colour"] = shifted
        people.loc[picked, "rule_id"] = _rules(shifted)
        with engine.begin() as conn:
            _store(conn, people, start + timedelta(hours=24 * (run + float(rng.uniform(0.1, 0.9))) / matches))
            written += len(picked)
    return written


def _steps(rng: np.random.Generator) -> list[tuple[float, str]]:
    """One task's later steps after its creation (minutes after, action): a plausible life within hours."""
    fate = rng.random()
    if fate < 0.06:
        return [(float(rng.uniform(20, 240)), "cancel")]
    gaps = [float(rng.uniform(3, 40)), float(rng.uniform(5, 60))]
    actions = ["accept", "start"]
    if fate < 0.16:
        gaps += [float(rng.uniform(20, 90)), float(rng.uniform(10, 60))]
        actions += ["request_extension", "grant_extension"]
    if fate < 0.85:  # the rest stay at work (some overdue by the evening)
        gaps += [float(rng.uniform(20, 200)), float(rng.uniform(10, 180))]
        actions += ["handle", "close"]
    return list(zip(np.cumsum(gaps).tolist(), actions, strict=True))


def _work(engine: Engine, rng: np.random.Generator, events: int, start: datetime,
          echo: Callable[[str], None]) -> int:
    """Tasks arriving through the day (from the evening before: some are open when it begins), each walked
    through its life, and the SLA sweep every 15 minutes, all in time order, until the day holds ``events``
    task events; returns how many it holds."""
    with engine.connect() as conn:
        codes = conn.execute(text("SELECT g.code FROM grids g WHERE EXISTS (SELECT 1 FROM user_grids ug "
                                  "JOIN users u ON u.id = ug.user_id WHERE ug.grid_id = g.id AND u.role = 'worker' "
                                  "AND u.active AND u.on_duty) ORDER BY g.code")).scalars().all()
    end = start + timedelta(days=1)
    # (when, order, what, task id): what is "arrive", "sweep" or an action of the task's plan
    queue: list[tuple[datetime, int, str, int]] = [(start - timedelta(hours=4), 0, "arrive", 0),
                                                  (start, 1, "sweep", 0)]
    order = 2
    tasks: dict[int, dict] = {}
    plans: dict[int, list[tuple[float, str]]] = {}
    actors: dict[int, Actor] = {}
    made = 0

    def later(when: datetime, what: str, task_id: int = 0) -> None:
        nonlocal order
        order += 1
        if when < end:
            heapq.heappush(queue, (when, order, what, task_id))

    with engine.begin() as conn:
        while queue and made < events:
            when, _, what, task_id = heapq.heappop(queue)
            counted = when >= start
            if what == "sweep":
                made += escalate_overdue(conn, when) if counted else 0
                later(when + timedelta(minutes=15), "sweep")
            elif what == "arrive":  # a new task every few minutes, more by day than by night
                task = create_task(conn, Actor.system(), NewTask(str(rng.choice(KINDS)), str(rng.choice(codes)),
                                                                 "压测任务"), when)
                made += (2 if task["status"] == "dispatched" else 1) if counted else 0
                tasks[task["id"]] = task
                # with nobody on duty the task waits for a supervisor, who cancels it
                plans[task["id"]] = _steps(rng) if task["status"] == "dispatched" else [(30.0, "cancel")]
                later(when + timedelta(minutes=plans[task["id"]][0][0]), "step", task["id"])
                hour = (when - start).total_seconds() // 3600
                later(when + timedelta(minutes=float(rng.exponential(1.0 if 8 <= hour < 22 else 3.0))), "arrive")
                if len(tasks) % 250 == 0:
                    echo(f"  任务 / tasks {len(tasks)}, 当日事件 / events of the day {made}")
            else:
                offset, action = plans[task_id].pop(0)
                task = tasks[task_id]
                actor = Actor.system()
                if action in WORKING:
                    if task["assignee_id"] not in actors:
                        actors[task["assignee_id"]] = load_actor(conn, task["assignee_id"])
                    actor = actors[task["assignee_id"]]
                payload: dict = {"reason": "压测"} if action in ("cancel", "request_extension") else {}
                if action == "request_extension":
                    payload["until"] = (datetime.fromisoformat(task["due_at"]) + timedelta(hours=4)).isoformat()
                elif action == "handle":
                    payload.update(result="已处置（压测）", temperature=36.5)
                tasks[task_id] = transition(conn, actor, task_id, action, task["version"], payload, when)["task"]
                made += 1 if counted else 0
                if plans[task_id]:
                    later(when + timedelta(minutes=plans[task_id][0][0] - offset), "step", task_id)
        return int(conn.execute(text("SELECT count(*) FROM task_events WHERE at >= :s AND at < :e"),
                                {"s": start, "e": end}).scalar_one())


def make_day(engine: Engine, events: int = 5000, persons: int = 20000, code_changes: int = 1000, seed: int = 2026,
             day: date = DAY, matches: int = 24, echo: Callable[[str], None] = print) -> dict:
    """Write the benchmark's day into ``engine`` (a seeded district) once; returns its sizes."""
    sizes = {"events": events, "persons": persons, "code_changes": code_changes, "seed": seed, "day": day.isoformat(),
             "matches": matches}
    with engine.connect() as conn:
        earlier = conn.execute(text("SELECT reason FROM audit_log WHERE action = :a ORDER BY id DESC LIMIT 1"),
                               {"a": MARK}).scalar()
    if earlier is not None:
        made = json.loads(earlier)
        if {k: made.get(k) for k in sizes} != sizes:
            raise RuntimeError(f"the database holds a day made with other sizes: {earlier}")
        return made
    rng = np.random.default_rng(seed)
    start = datetime.combine(day, datetime.min.time(), BEIJING)
    echo(f"生成人员与赋码 / persons and code changes ({persons:,} persons)")
    changed = _codes(engine, rng, persons, code_changes, start, matches)
    echo(f"生成任务事件 / task events of the day ({events:,})")
    made = _work(engine, rng, events, start, echo)
    record = {**sizes, "events_made": made, "code_changes_made": changed}
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_log (at, username, action, subject, reason) "
                          "VALUES (now(), 'bench', :a, :s, :r)"), {"a": MARK, "s": day.isoformat(),
                                                                     "r": json.dumps(record)})
    return record


def _reference(conn: Connection, moment: datetime, start: datetime) -> dict:
    """Counters at ``moment`` the plain way, one SQL statement each, straight from the history: each task's
    status after its latest event, each person's colour after his latest code change (every person of the
    benchmark has one), closures since the day began."""
    open_, closed = conn.execute(text(
        "SELECT count(*) FILTER (WHERE s.to_status NOT IN ('closed', 'cancelled')), "
        "(SELECT count(*) FROM task_events WHERE action = 'close' AND at >= :start AND at <= :m) "
        "FROM (SELECT DISTINCT ON (task_id) to_status FROM task_events WHERE at <= :m "
        "ORDER BY task_id, at DESC, seq DESC) s"), {"m": moment, "start": start}).one()
    colours: dict[str, int] = dict(conn.execute(text(
        "SELECT s.colour, count(*) FROM (SELECT DISTINCT ON (h.person_key) h.colour FROM risk_code_history h "
        "JOIN persons p ON p.person_key = h.person_key WHERE h.changed_at <= :m "
        "ORDER BY h.person_key, h.changed_at DESC, h.id DESC) s GROUP BY s.colour"), {"m": moment}).all())
    return {"open": open_, "closed_today": closed, "red": colours.get("red", 0), "yellow": colours.get("yellow", 0),
            "blue": colours.get("blue", 0)}


def _replayed(conn: Connection, moment: datetime) -> dict:
    counters = wall_summary_at(conn, moment)["counters"]
    return {k: counters[k] for k in ("open", "closed_today", "red", "yellow", "blue")}


def _callback_payload(output: str, day: str, minute: int) -> dict:
    outputs = [dict(zip(("id", "property"), o.split(".", 1), strict=True)) for o in output.strip(".").split("...")]
    return {"output": output, "outputs": outputs, "changedPropIds": ["wall-replay-minute.value"],
            "inputs": [{"id": "wall-replay-minute", "property": "value", "value": minute},
                       {"id": "wall-replay-day", "property": "value", "value": day},
                       {"id": "wall-replay-live", "property": "n_clicks", "value": 0}],
            "state": [{"id": "wall-url", "property": "search", "value": ""},
                      {"id": "wall-lang", "property": "data", "value": "zh"}]}


def _time_callback(engine: Engine, day: date, minutes: list[int]) -> list[float]:
    """The replay callback's server time for the app's first request, then for each minute, posted as the
    browser posts it (the day is loaded by then)."""
    from app import create_app

    password = secrets.token_urlsafe(12)
    with engine.begin() as conn:
        save_user(conn, BENCH_USER, "commander", password, "回放压测指挥员")
    client = create_app(engine).server.test_client()
    login = client.post("/api/v1/session", json={"username": BENCH_USER, "password": password})
    if login.status_code != 201:
        raise RuntimeError(f"cannot log in the bench account: {login.status_code}")
    output = next((d["output"] for d in client.get("/wall/_dash-dependencies").get_json()
                   if "wall-replay-at.data" in d["output"]), None)
    if output is None:
        raise RuntimeError("the wall has no replay callback (pages/wall.py does not host pages/wall_replay.py)")
    url = "/wall/_dash-update-component"
    started = time.perf_counter()
    client.post(url, json=_callback_payload(output, day.isoformat(), minutes[0]))
    times = [(time.perf_counter() - started) * 1000]  # the app's first request (warming up): reported apart
    for minute in minutes:
        started = time.perf_counter()
        answer = client.post(url, json=_callback_payload(output, day.isoformat(), minute))
        times.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200 or "wall-as-of" not in answer.get_json()["response"]:
            body = answer.get_data(as_text=True)[:200]
            raise RuntimeError(f"the replay callback failed: {answer.status_code} {body}")
    return times


def replay_benchmark(engine: Engine, events: int = 5000, persons: int = 20000, code_changes: int = 1000,
                     moves: int = 200, cold: int = 3, seed: int = 2026, day: date = DAY, matches: int = 24,
                     checks: int = 10,
                     echo: Callable[[str], None] = print) -> dict:
    """Make the day (once) and time the replay on it; returns the figures (times in ms)."""
    made = make_day(engine, events, persons, code_changes, seed, day, matches, echo)
    start, _ = day_bounds(datetime.combine(day, datetime.min.time(), BEIJING))
    rng = np.random.default_rng(seed + 1)
    minutes = [int(m) for m in rng.integers(0, 24 * 60, size=moves)]
    moments = [start + timedelta(minutes=m) for m in minutes]
    echo(f"冷启动 / cold: first minute of the day × {cold}")
    colds = []
    with engine.connect() as conn:
        for i in range(cold):
            DAYS.clear()
            began = time.perf_counter()
            wall_summary_at(conn, moments[i % len(moments)])
            colds.append((time.perf_counter() - began) * 1000)
            conn.rollback()
        echo(f"热移动 / warm: {moves} random minutes, then the live wall at the same minutes")
        warm, peer = [], []
        for moment in moments:
            began = time.perf_counter()
            wall_summary_at(conn, moment)
            warm.append((time.perf_counter() - began) * 1000)
            began = time.perf_counter()
            wall_summary(conn, moment)
            peer.append((time.perf_counter() - began) * 1000)
        differ = [m.isoformat() for m in moments[:checks] if _reference(conn, m, start) != _replayed(conn, m)]
        last = start + timedelta(hours=23, minutes=59)
        identical = wall_summary_at(conn, last) == wall_summary(conn, last)
        day_loaded = DAYS.day(conn, last, None)
        conn.rollback()
    echo(f"回调 / the replay callback × {moves}")
    first_callback, *callback = _time_callback(engine, day, minutes)
    result = {
        "day": day.isoformat(), "events": made.get("events_made", events),
        "code_changes": made.get("code_changes_made", code_changes), "persons": persons,
        "stretches_of_work": int(len(day_loaded.work_start)),
        "cold_ms": round(statistics.median(colds), 1), "cold_runs_ms": [round(c, 1) for c in colds],
        "warm_median_ms": round(statistics.median(warm), 2), "warm_p95_ms": round(_percentile(warm, 0.95), 2),
        "warm_max_ms": round(max(warm), 2),
        "callback_first_request_ms": round(first_callback, 1),
        "callback_median_ms": round(statistics.median(callback), 2),
        "callback_p95_ms": round(_percentile(callback, 0.95), 2), "callback_max_ms": round(max(callback), 2),
        "peer_live_wall_summary_median_ms": round(statistics.median(peer), 2),
        "warm_vs_peer": round(statistics.median(warm) / statistics.median(peer), 3),
        "identical_to_live_at_day_end": identical, "minutes_checked_against_sql": min(checks, len(moments)),
        "minutes_differing_from_sql": differ, "target_ms": TARGET_MS,
    }
    echo(f"冷 / cold {result['cold_ms']} ms, 热 / warm median {result['warm_median_ms']} ms "
         f"(p95 {result['warm_p95_ms']}), 回调 / callback median {result['callback_median_ms']} ms "
         f"(max {result['callback_max_ms']}), 实时墙 / live wall_summary "
         f"{result['peer_live_wall_summary_median_ms']} ms")
    return result
