"""Living demo activity: one generated day of work in the embedded demo district (synthetic, marked so).

A newcomer who runs ``make run`` should see a district at work, not an empty
map. :func:`generate_activity` writes a synthetic department feed (people made
by :mod:`demo.feeds`, sealed by the vault) and two lists about some of them
without ID numbers (an operator's phones, the public's tip-offs: linked by the
match, the uncertain pairs left in the review queue), imports and matches them
through the real feed path, then plays the last 24 hours forward through the
domain functions only: the matcher's requests become tasks
(:func:`tasks.intake.take_requests`), the public sends leads, gates record
scans, workers and supervisors walk the tasks through the lifecycle at past
times, and the SLA clock (:func:`tasks.sla.escalate_overdue`) runs every 15
minutes of that day. Every task event therefore comes from the lifecycle, in
time order, exactly as if the day had happened.

The demo logins get work at once: the demo grid (``demo.accounts.demo_grid``)
gets a handful of scripted tasks, one in each state, assigned to demo_worker
and decided by demo_supervisor when those accounts exist.

Home observation: the match gives every person coded ``yellow-key-area`` a follow-up plan (a few travellers from
Hubei are added to the demo grid's feed so that demo_worker has follow-ups too); the demo dates each plan back
to a few days before the day, makes the day's checks (:func:`observation.schedule.make_checks`), and plays
them: most reported on time by the grid worker or by the person himself, some late, some missed (the sweep,
:func:`observation.schedule.sweep_missed`, marks them every 15 minutes and raises a home visit after two in a
row), a few with a fever (:func:`observation.checks.record_check` raises the escort task and the code
review). The demo grid's first plans follow a script: on time, a fever of 38.1 ℃, two misses, one miss, late.

Everything is marked: the feed's source is ``演示数据`` (its file name carries
the seed), manual tasks and leads say ``演示数据``, and one audit-log line
(action ``demo_activity``, subject ``seed=N``, the counts as its reason) is
written in the same transaction as the day, so a second run for the same seed
changes nothing.

>>> from gis.db import get_engine
>>> generate_activity(get_engine(), persons=2000)["already_generated"]  # doctest: +SKIP
False
"""

from __future__ import annotations

import heapq
import itertools
import json
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, Row, text

from accounts.actor import Actor
from accounts.repository import load_actor
from checkpoints.repository import record_scan
from demo.accounts import demo_grid
from demo.feeds import district_of, write_feed, write_linkage_lists
from gis.errors import ConfigurationError, Conflict
from grids.repository import load_grids
from leads.reports import LeadReport
from leads.repository import dismiss_lead, submit_report, triage_lead
from matching.pipeline import import_feed, run_match
from matching.privacy import Vault, load_vault
from matching.repository import load_places
from observation.checks import CheckReport, record_check
from observation.schedule import beijing_day, make_checks, sweep_missed
from tasks import lifecycle
from tasks.intake import take_requests
from tasks.kinds import task_kind
from tasks.repository import OPEN_SQL, NewTask, create_task, task_row, task_view, transition
from tasks.sla import escalate_overdue

T = TypeVar("T")

DEFAULT_SEED = 20200202
DEMO_SOURCE = "演示数据"
LIST_SOURCES = {"operator": f"{DEMO_SOURCE}·运营商", "tips": f"{DEMO_SOURCE}·群众举报"}
OBSERVED_SOURCE = f"{DEMO_SOURCE}·居家观察"  # travellers from Hubei living in the demo grid
OBSERVED_IN_DEMO_GRID = 12  # of them, about half arrived within the 14 days that ask for observation
MARK = "（演示数据）"
MARKER_ACTION = "demo_activity"
DEMO_LOCK = 4_242_002  # one generator at a time: the marker is checked and written under it
DAY = timedelta(hours=24)
SWEEP_EVERY = timedelta(minutes=15)
MIN_PERSONS = 200
HOUSEHOLD_SHARE = 0.05  # residents sharing a phone and a home with the one before: a phone-only list is unsure
TRAVEL_SHARE = 0.1  # rows saying where the resident came from and when: arrivals from Hubei are coded yellow
NATIVE_SHARE = 0.02  # residents with Hubei ID numbers: those who have not travelled get a verification task
Progress = Callable[[str, float], None]

# what becomes of a task; the state each one is in at "now" follows from the times drawn
FATES = {"done": 0.55, "rework": 0.08, "extend": 0.07, "decline": 0.08, "reassign": 0.04, "cancel": 0.05,
         "ignored": 0.06, "stuck": 0.07}
# what becomes of a check of the day (the demo grid's first plans follow FOLLOW_SCRIPT instead)
CHECK_FATES = {"on_time": 0.645, "early": 0.06, "late": 0.12, "missed": 0.16, "fever": 0.015}
FOLLOW_SCRIPT = (("on_time", "on_time"), ("on_time", "fever"), ("missed", "missed"), ("on_time", "missed"),
                 ("late", "on_time"))
RESULTS = {
    "escort": ("已协同120转运至集中医学观察点", "已联系社区医生，转运至集中隔离酒店"),
    "home_visit": ("已入户测温，已告知居家观察要求", "已入户核实，发放居家观察告知书"),
    "isolation_check": ("居家隔离措施落实，门磁正常", "已上门检查，隔离人员在家，情况稳定"),
    "lead_verification": ("经核实，情况属实，已劝散并登记", "经核实，未发现相关情况"),
    "checkpoint_alert": ("已劝返并通知社区跟进", "已核实身份，护送返回居住地"),
    "area_sweep": ("已完成片区排查，未发现异常", "已排查出租屋，新登记流动人员"),
    "verification": ("已电话核实，近期未离开南海，无外出史", "已入户核实，近 14 天在本地居住，已登记"),
}
DECLINES = ("本人今日轮休，请改派", "地址不在本人负责片区", "正在处置紧急任务，无法前往")
REWORKS = ("体温记录不完整，请重新核实", "反馈过于简单，请补充处置情况", "请补充现场情况说明")
CANCELS = ("人员已由疾控转运，任务撤销", "重复任务，已合并处理", "核实为信息错误，任务撤销")
EXTENSIONS = ("居民不在家，已约定明日上门", "需协调社区医生一同前往", "片区范围大，需增派人手")
REFUSALS = ("时限内可完成，请按时处置", "情况紧急，不予延期")
LEAD_TEXTS = ("小区内有人从外地返回，未向社区报备", "楼下有人聚集打麻将，未戴口罩", "邻居连续几天发热咳嗽，未去就医",
              "有商铺未按要求测温登记", "出租屋新入住多人，来源不明", "公园内有人聚集跳广场舞")
SHOWCASE = (  # the demo grid's tasks: (hours before now, kind, title, dispatched?, [(minutes later, action)])
    (0.5, "area_sweep", "片区排查：出租屋登记核查", True, ()),
    (0.75, "area_sweep", "片区排查：商铺测温登记检查", False, ()),
    (2, "home_visit", "入户走访测温：重点地区返回人员", True, ((12, "accept"),)),
    (5, "isolation_check", "居家隔离检查：隔离第 6 天", True, ((15, "accept"), (20, "start"),
                                                          (60, "request_extension"))),
    (7, "isolation_check", "居家隔离检查：隔离第 3 天", True, ((10, "accept"), (15, "start"), (300, "handle"))),
    (6, "lead_verification", "线索核查：楼下聚集打麻将", True, ()),
    (9, "home_visit", "入户走访测温：返岗人员家属", True, ((25, "decline"),)),
    (12, "isolation_check", "居家隔离检查：已转集中隔离人员", True, ((20, "accept"), (60, "cancel"))),
    (20, "home_visit", "入户走访测温：密接人员同住者", True, ((20, "accept"), (30, "start"), (180, "handle"),
                                                   (60, "rework"), (120, "handle"), (45, "close"))),
    (23, "area_sweep", "片区排查：城中村流动人员", True, ((30, "accept"), (30, "start"), (120, "request_extension"),
                                                 (40, "grant_extension"), (600, "handle"), (90, "close"))),
)


def _quiet(step: str, fraction: float) -> None:
    return None


def _scaled(progress: Progress, low: float, high: float) -> Progress:
    return lambda step, fraction: progress(step, low + (high - low) * fraction)


def _marker(conn: Connection, seed: int) -> dict | None:
    row = conn.execute(text("SELECT reason FROM audit_log WHERE action = :a AND subject = :s ORDER BY id LIMIT 1"),
                       {"a": MARKER_ACTION, "s": f"seed={seed}"}).first()
    return None if row is None else json.loads(row.reason or "{}")


def feed_file_name(seed: int) -> str:
    """The generated feed's file name: the seed in it, so a later run recognises its own feed."""
    return f"demo_activity_seed{seed}.csv"


def generate_activity(engine: Engine, seed: int = DEFAULT_SEED, persons: int = 20000, now: datetime | None = None,
                      progress: Progress = _quiet) -> dict:
    """Generate a synthetic day of work for the demo district, once per seed; returns what was made.

    The answer holds ``already_generated`` (True: an earlier run for this seed
    was found and nothing changed; its counts are returned) and counts:
    persons by colour, flags, tasks by status, task events, escalations,
    leads, reports, scans, checkpoint alerts and demo_worker's tasks.
    Deterministic for a seed and a starting database (``now`` is rounded down
    to the minute; the day ends there).
    """
    if persons < MIN_PERSONS:
        raise ConfigurationError(f"--persons 至少 {MIN_PERSONS} / persons must be at least {MIN_PERSONS}")
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(second=0, microsecond=0)
    with engine.connect() as conn:
        earlier = _marker(conn, seed)
        imported = earlier is None and conn.execute(text(
            "SELECT 1 FROM feed_files WHERE source = :s AND file_name = :f"),
            {"s": DEMO_SOURCE, "f": feed_file_name(seed)}).first() is not None
    if earlier is not None:
        return {**earlier, "already_generated": True}
    vault = load_vault()
    if not imported:  # a run cut short after its import finds its feed again and goes on from the match
        progress("生成数据文件 / writing the feed", 0.0)
        with engine.connect() as conn:
            grids = load_grids(conn)
            _, communities, book = load_places(conn)
        book = book.merge(communities[["code", "name_short"]].rename(
            columns={"code": "community_code", "name_short": "community_name"}))
        moment = pd.Timestamp(now).tz_convert("Asia/Shanghai").tz_localize(None)
        with tempfile.TemporaryDirectory() as folder:
            path = write_feed(Path(folder) / feed_file_name(seed), persons, district_of(grids), book, seed=seed,
                              now=moment, household_share=HOUSEHOLD_SHARE, travel_share=TRAVEL_SHARE,
                              native_share=NATIVE_SHARE)
            import_feed(engine, path, DEMO_SOURCE, vault=vault, progress=_scaled(progress, 0.05, 0.15))
            # lists without ID numbers (an operator's, the public's tip-offs): linked to these people by the match
            for name, list_path in write_linkage_lists(path, folder, seed=seed, now=moment).items():
                import_feed(engine, list_path, LIST_SOURCES[name], vault=vault,
                            progress=_scaled(progress, 0.15, 0.2))
            with engine.connect() as conn:
                outline = _demo_grid_outline(conn)
            observed = write_feed(Path(folder) / f"demo_observation_seed{seed}.csv", OBSERVED_IN_DEMO_GRID, outline,
                                  seed=seed + 1, now=moment, travel_share=1.0, hubei_share=1.0)
            import_feed(engine, observed, OBSERVED_SOURCE, vault=vault, progress=_scaled(progress, 0.2, 0.2))
    stats = run_match(engine, now=pd.Timestamp(now), progress=_scaled(progress, 0.2, 0.35))
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": DEMO_LOCK})
        earlier = _marker(conn, seed)
        if earlier is not None:
            return {**earlier, "already_generated": True}
        day = _Day(conn, np.random.default_rng(seed), now, vault, persons, _scaled(progress, 0.35, 1.0))
        counts = {**{k: stats[k] for k in ("persons", "red", "yellow", "blue", "green")}, **day.play()}
        conn.execute(text("INSERT INTO audit_log (at, username, action, subject, reason) "
                          "VALUES (:at, 'system', :a, :s, :r)"),
                     {"at": now, "a": MARKER_ACTION, "s": f"seed={seed}", "r": json.dumps(counts)})
    progress("完成 / done", 1.0)
    return {**counts, "already_generated": False}


def _demo_grid_outline(conn: Connection) -> Any:
    """The demo grid's polygon (where demo_worker works): a few observed travellers are placed inside it."""
    import shapely.wkb

    _, code, _, _ = demo_grid(conn)
    return shapely.wkb.loads(conn.execute(text("SELECT ST_AsBinary(geom) FROM grids WHERE code = :c"),
                                          {"c": code}).scalar_one())


class _Day:
    """The day being played: a queue of stories (generators that act, then yield how long until the next step)."""

    def __init__(self, conn: Connection, rng: np.random.Generator, now: datetime, vault: Vault, persons: int,
                 progress: Progress) -> None:
        self.conn, self.rng, self.now, self.vault, self.size, self.progress = conn, rng, now, vault, persons, progress
        self.start = now - DAY
        self.clock = self.start
        self.queue: list[tuple[datetime, int, Iterator[timedelta]]] = []
        self.order = itertools.count()
        self.tasks: set[int] = set()
        self.leads: set[int] = set()
        self.counts: Counter[str] = Counter()
        self.actors: dict[int, Actor] = {}
        self._load()

    # -- what the district holds ------------------------------------------------------------------------------
    def _load(self) -> None:
        conn = self.conn
        self.grids = {r.id: r for r in conn.execute(text(
            "SELECT id, code, community_id, ST_X(ST_PointOnSurface(geom)) AS lon, "
            "ST_Y(ST_PointOnSurface(geom)) AS lat FROM grids ORDER BY id"))}
        self.grid_ids = {g.code: g.id for g in self.grids.values()}
        self.workers: dict[int, list[int]] = defaultdict(list)
        self.usernames: dict[int, str] = {}
        for row in conn.execute(text(
                "SELECT u.id, u.username, ug.grid_id FROM users u JOIN user_grids ug ON ug.user_id = u.id "
                "WHERE u.role = 'worker' AND u.active AND u.on_duty ORDER BY ug.grid_id, u.username")):
            self.workers[row.grid_id].append(row.id)
            self.usernames[row.id] = row.username
        self.supervisors: dict[int, int] = {}
        for row in conn.execute(text(
                "SELECT id, community_id FROM users WHERE role = 'supervisor' AND active AND community_id IS NOT NULL "
                "ORDER BY username = 'demo_supervisor' DESC, username")):
            self.supervisors.setdefault(row.community_id, row.id)
        self.checkpoints = conn.execute(text(
            "SELECT c.code, c.grid_id, g.community_id FROM checkpoints c JOIN grids g ON g.id = c.grid_id "
            "ORDER BY c.code")).all()
        people = conn.execute(text(
            "SELECT p.person_key, p.colour, p.grid_id, p.name_masked, ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat "
            "FROM persons p WHERE p.grid_id IS NOT NULL ORDER BY p.person_key")).all()
        self.people = people
        self.residents: dict[int, list[int]] = defaultdict(list)  # community → green and blue persons
        self.risky = [i for i, p in enumerate(people) if p.colour in ("red", "yellow")]
        for i, p in enumerate(people):
            if p.colour in ("green", "blue"):
                self.residents[self.grids[p.grid_id].community_id].append(i)
        demo = conn.execute(text(
            "SELECT u.id, g.id AS grid_id, g.code FROM users u JOIN user_grids ug ON ug.user_id = u.id "
            "JOIN grids g ON g.id = ug.grid_id WHERE u.username = 'demo_worker' AND u.role = 'worker' AND u.active "
            "ORDER BY g.code LIMIT 1")).first()
        if demo is not None:
            self.demo_worker, self.demo_grid_id, self.demo_grid_code = demo
        else:  # no demo accounts: the same grid's first worker stands in
            self.demo_grid_id, self.demo_grid_code, _, _ = demo_grid(conn)
            workers = self.workers.get(self.demo_grid_id)
            self.demo_worker = workers[0] if workers else None
        self.demo_people = [p for p in people if p.grid_id == self.demo_grid_id and p.colour in ("yellow", "blue")]
        self.book = conn.execute(text(
            "SELECT c.name_short || a.text AS address, ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat FROM addresses a "
            "JOIN communities c ON c.id = a.community_id ORDER BY a.id")).all()

    # -- the clock ----------------------------------------------------------------------------------------------
    def at(self, when: datetime, story: Iterator[timedelta]) -> None:
        """Run ``story`` from ``when`` on; anything after the end of the day does not happen (yet)."""
        if when <= self.now:
            heapq.heappush(self.queue, (when, next(self.order), story))

    def play(self) -> dict:
        """Schedule the day, play it in time order, and count what it left."""
        self._schedule()
        played = 0
        while self.queue:
            when, _, story = heapq.heappop(self.queue)
            self.clock = when
            try:
                delay = next(story)
            except StopIteration:
                continue
            self.at(when + delay, story)
            played += 1
            if played % 250 == 0:
                self.progress("演示的一天 / playing the day", (when - self.start) / DAY)
        return self._tally()

    def _minutes(self, low: float, high: float) -> timedelta:
        return timedelta(minutes=float(self.rng.uniform(low, high)))

    def _pick(self, items: Sequence[T]) -> T:
        return items[int(self.rng.integers(len(items)))]

    def _schedule(self) -> None:
        self.at(self.start, self._sweeps())
        self._schedule_intake()
        for _ in range(max(2, self.size // 4000)):
            grid = self._pick(list(self.grids))
            self.at(self.start + self._minutes(0, 23 * 60), self._manual("area_sweep", grid, "片区排查：重点场所巡查"))
        yellow = [i for i in self.risky if self.people[i].colour == "yellow"]
        for i in self.rng.permutation(yellow)[:max(2, self.size // 2000)]:
            person = self.people[int(i)]
            self.at(self.start + self._minutes(60, 22 * 60), self._manual(
                "isolation_check", person.grid_id, f"居家隔离检查：{person.name_masked}", person))
        self._schedule_leads()
        self._schedule_scans()
        self._schedule_follow_ups()
        if self.demo_worker is not None:
            for hours, kind, title, dispatched, steps in SHOWCASE:
                self.at(self.now - timedelta(hours=hours), self._showcase(kind, title, dispatched, steps))

    def _sweeps(self) -> Iterator[timedelta]:
        """The server's sweeper: escalate overdue work every 15 minutes of the day, the last time at its end."""
        while True:
            escalate_overdue(self.conn, self.clock)
            yield SWEEP_EVERY

    # -- actors ---------------------------------------------------------------------------------------------------
    def _worker(self, user_id: int) -> Actor:
        return Actor(user_id, self.usernames.get(user_id) or self._username(user_id), "worker")

    def _username(self, user_id: int) -> str:
        name = self.conn.execute(text("SELECT username FROM users WHERE id = :id"), {"id": user_id}).scalar_one()
        self.usernames[user_id] = name
        return name

    def _supervisor(self, grid_code: str) -> Actor:
        """The supervisor of the grid's community (demo_supervisor for the demo community), else the system."""
        user_id = self.supervisors.get(self.grids[self.grid_ids[grid_code]].community_id)
        if user_id is None:
            return Actor.system()
        if user_id not in self.actors:
            self.actors[user_id] = load_actor(self.conn, user_id)
        return self.actors[user_id]

    def _other_worker(self, task: dict, besides: int | None) -> int | None:
        others = [w for w in self.workers[self.grid_ids[task["grid_code"]]] if w != besides]
        return self._pick(others) if others else None

    # -- tasks ----------------------------------------------------------------------------------------------------
    def _act(self, task: dict, action: str, **payload: Any) -> dict:
        """Do ``action`` on ``task`` as its worker or its supervisor, at the day's clock, through the lifecycle."""
        if lifecycle.ACTIONS[action].roles == lifecycle.WORKING:
            actor = self._worker(task["assignee_id"])
        else:
            actor = self._supervisor(task["grid_code"])
        payload = {**self._payload(task, action), **payload}
        return transition(self.conn, actor, task["id"], action, task["version"], payload, self.clock)["task"]

    def _payload(self, task: dict, action: str) -> dict:
        if action == "decline":
            return {"reason": self._pick(DECLINES)}
        if action == "rework":
            return {"reason": self._pick(REWORKS)}
        if action == "cancel":
            return {"reason": self._pick(CANCELS)}
        if action == "refuse_extension":
            return {"reason": self._pick(REFUSALS)}
        if action == "request_extension":
            due = datetime.fromisoformat(task["due_at"])
            until = due + timedelta(minutes=task["sla_minutes"] * float(self.rng.uniform(0.5, 1.5)))
            return {"until": until.replace(second=0, microsecond=0).isoformat(), "reason": self._pick(EXTENSIONS)}
        if action == "handle":
            return self._report(task)
        if action == "close":
            return {"note": "核查属实，同意结案"}
        return {}

    def _report(self, task: dict) -> dict:
        """A worker's feedback: result, temperature, and the phone's GPS point a few metres from the task."""
        place = task["location"] or {"lon": self.grids[self.grid_ids[task["grid_code"]]].lon,
                                     "lat": self.grids[self.grid_ids[task["grid_code"]]].lat}
        jitter = self.rng.normal(0.0, 0.0002, 2)
        report: dict[str, Any] = {
            "result": self._pick(RESULTS[task["kind"]]),
            "location": {"lon": round(place["lon"] + jitter[0], 6), "lat": round(place["lat"] + jitter[1], 6)}}
        if task_kind(task["kind"]).needs_temperature or task["person"] is not None:
            fever = self.rng.random() < 0.05
            report["temperature"] = round(float(self.rng.uniform(37.6, 38.6) if fever
                                                else self.rng.normal(36.5, 0.25)), 1)
            if fever:
                report["note"] = "体温偏高，已报告社区卫生服务中心"
        return report

    def _created(self, task: dict) -> dict:
        self.tasks.add(task["id"])
        return task

    def _work(self, task: dict) -> Iterator[timedelta]:
        """An ordinary task's day: a fate drawn, then each step after a plausible while (or never, by the end)."""
        fate = str(self.rng.choice(list(FATES), p=np.array(list(FATES.values())) / sum(FATES.values())))
        sla = timedelta(minutes=task["sla_minutes"])
        if task["status"] == "created":
            yield self._minutes(10, 90)
            try:
                task = self._act(task, "dispatch", assignee_id=None)
            except Conflict:  # still nobody on duty near it: it waits for a supervisor
                return
        if fate == "cancel":
            yield self._minutes(20, 240)
            self._act(task, "cancel")
            return
        if fate == "ignored":  # never answered: it runs overdue and is escalated
            return
        if fate == "reassign":
            yield self._minutes(30, 120)
            other = self._other_worker(task, task["assignee_id"])
            if other is not None:
                task = self._act(task, "reassign", assignee_id=other)
        yield self._minutes(3, 40)
        if fate == "decline":
            decliner = task["assignee_id"]
            task = self._act(task, "decline")
            yield self._minutes(15, 150)
            try:
                task = self._act(task, "dispatch", assignee_id=self._other_worker(task, decliner))
            except Conflict:  # nobody else on duty: it stays declined, waiting for the supervisor
                return
            yield self._minutes(3, 40)
        task = self._act(task, "accept")
        yield self._minutes(5, 60)
        task = self._act(task, "start")
        if fate == "stuck":
            return
        if fate == "extend":
            yield sla * float(self.rng.uniform(0.2, 0.6))
            task = self._act(task, "request_extension")
            yield self._minutes(10, 90)
            task = self._act(task, "grant_extension" if self.rng.random() < 0.8 else "refuse_extension")
        yield sla * float(self.rng.uniform(0.1, 0.7) if self.rng.random() < 0.8 else self.rng.uniform(0.9, 1.5))
        task = self._act(task, "handle")
        yield self._minutes(10, 180)
        if fate == "rework":
            task = self._act(task, "rework")
            yield self._minutes(30, 150)
            task = self._act(task, "handle")
            yield self._minutes(10, 90)
        self._act(task, "close")

    def _schedule_intake(self) -> None:
        """The matcher's pending requests, taken by the sweeper in 10-minute rounds, more by day than by night."""
        pending = self.conn.execute(text("SELECT count(*) FROM task_requests WHERE status = 'pending'")).scalar_one()
        slots = [self.start + timedelta(minutes=10 * i) for i in range(1, 24 * 6)]
        weights = np.array([3.0 if 7 <= (s + timedelta(hours=8)).hour < 22 else 1.0 for s in slots])
        for slot, count in zip(slots, self.rng.multinomial(pending, weights / weights.sum()), strict=True):
            if count:
                self.at(slot, self._intake(int(count)))

    def _intake(self, count: int) -> Iterator[timedelta]:
        ids = self.conn.execute(text("SELECT id FROM task_requests WHERE status = 'pending' ORDER BY id LIMIT :n"),
                                {"n": count}).scalars().all()
        take_requests(self.conn, self.clock, limit=count)
        made = self.conn.execute(text("SELECT task_id FROM task_requests WHERE id = ANY(:ids) AND task_id IS NOT NULL "
                                      "ORDER BY id"), {"ids": ids}).scalars().all()
        for task_id in made:
            self.at(self.clock, self._work(self._created(self._load_task(task_id))))
        yield from ()

    def _load_task(self, task_id: int) -> dict:
        return task_view(task_row(self.conn, Actor.system(), task_id, self.clock))

    def _manual(self, kind: str, grid_id: int, title: str, person: Row[Any] | None = None) -> Iterator[timedelta]:
        """A supervisor's own task (a third of them left to dispatch by hand a little later)."""
        grid = self.grids[grid_id]
        supervisor = self._supervisor(grid.code)
        task = self._created(create_task(self.conn, supervisor, NewTask(
            kind=kind, grid_code=grid.code, title=title, detail=f"网格长布置{MARK}",
            person_key=person.person_key if person else None,
            point=(person.lon, person.lat) if person else None, dispatch=self.rng.random() > 1 / 3), self.clock))
        yield from self._work(task)

    def _showcase(self, kind: str, title: str, dispatched: bool,
                  steps: Iterable[tuple[float, str]]) -> Iterator[timedelta]:
        """A scripted task of the demo grid, assigned to demo_worker: the demo logins see every state at once."""
        supervisor = self._supervisor(self.demo_grid_code)
        person = None
        if kind in ("home_visit", "isolation_check") and self.demo_people:
            person = self.demo_people[self.counts["showcase_people"] % len(self.demo_people)]
            self.counts["showcase_people"] += 1
        task = self._created(create_task(self.conn, supervisor, NewTask(
            kind=kind, grid_code=self.demo_grid_code, title=title, detail=f"演示网格任务{MARK}",
            person_key=person.person_key if person else None,
            point=(person.lon, person.lat) if person else None, dispatch=dispatched,
            assignee_id=self.demo_worker), self.clock))
        for minutes, action in steps:
            yield timedelta(minutes=minutes)
            task = self._act(task, action)

    # -- leads --------------------------------------------------------------------------------------------------
    def _schedule_leads(self) -> None:
        """Public tip-offs about a few places, some reported again (merged); some triaged, one dismissed."""
        places = max(6, self.size // 1000)
        demo = self.grids[self.demo_grid_id]
        for i in range(places):
            point: tuple[float, float] | None
            if i == 0:  # an open lead in the demo grid, reported twice, for demo_supervisor to triage
                address, point, reports, fate = None, (demo.lon, demo.lat), 2, "open"
            else:
                entry = self._pick(self.book)
                style = self.rng.random()  # address and point, point only, or address only
                address = entry.address if style < 0.6 or style >= 0.85 else None
                point = (entry.lon, entry.lat) if style < 0.85 else None
                reports = int(self.rng.choice([1, 1, 2, 3, 4])) if i > 2 else 2 + int(i == 1)
                fate = "dismiss" if i == 2 else ("triage" if i == 1 or self.rng.random() < 0.25 else "open")
            first = self.start + self._minutes(0, 21 * 60)
            self.at(first, self._lead(i, address, point, reports, fate))

    def _lead(self, place: int, address: str | None, point: tuple[float, float] | None, reports: int,
              fate: str) -> Iterator[timedelta]:
        lead = None
        for n in range(reports):
            if n:
                yield self._minutes(10, 150)
            description = self._pick(LEAD_TEXTS) + MARK
            at = None
            if point is not None:
                jitter = self.rng.normal(0.0, 0.00005, 2) if n else (0.0, 0.0)
                at = (point[0] + float(jitter[0]), point[1] + float(jitter[1])) if place else point
            channel = "staff" if self.rng.random() < 0.2 else "public"
            lead = submit_report(self.conn, LeadReport(description, address, at, None),
                                 self.vault.tag("client", f"demo-{place}-{n}"), channel, self.vault, self.clock)
            self.leads.add(lead["id"])
            self.counts["lead_reports"] += 1
        if lead is None or fate == "open" or lead["status"] != "open":
            return
        yield self._minutes(10, 60)
        row = self.conn.execute(text("SELECT g.code FROM leads l JOIN grids g ON g.id = l.grid_id WHERE l.id = :id"),
                                {"id": lead["id"]}).first()
        if row is None:  # not placed in a grid: it stays open for the command centre
            return
        supervisor = self._supervisor(row.code)
        if supervisor.role == "system":
            return
        if fate == "dismiss":
            dismiss_lead(self.conn, supervisor, lead["id"])
            return
        task = self._created(triage_lead(self.conn, supervisor, lead["id"], "lead_verification", self.clock))
        yield from self._work(task)

    # -- checkpoints -----------------------------------------------------------------------------------------------
    def _schedule_scans(self) -> None:
        """Residents passing the gates over the last 12 hours; a few red or yellow ones raise alerts."""
        if not self.checkpoints or not self.people:
            return
        by_community = defaultdict(list)
        for checkpoint in self.checkpoints:
            by_community[checkpoint.community_id].append(checkpoint)
        window = 12 * 60
        for _ in range(self.size // 10):
            checkpoint = self._pick(self.checkpoints)
            locals_ = self.residents.get(checkpoint.community_id)
            person = self.people[self._pick(locals_)] if locals_ else self._pick(self.people)
            if person.colour in ("red", "yellow"):
                continue
            self.at(self.now - self._minutes(0, window), self._scan(checkpoint, person))
        if not self.risky:
            return
        for i in self.rng.permutation(self.risky)[:max(4, self.size // 2000)]:
            person = self.people[int(i)]
            gates = by_community.get(self.grids[person.grid_id].community_id) or self.checkpoints
            self.at(self.now - self._minutes(30, window), self._scan(self._pick(gates), person))

    def _scan(self, checkpoint: Row[Any], person: Row[Any]) -> Iterator[timedelta]:
        workers = self.workers.get(checkpoint.grid_id)
        if workers:
            actor = Actor(workers[0], self.usernames[workers[0]], "worker", grid_ids=frozenset({checkpoint.grid_id}))
        else:
            actor = self._supervisor(self.grids[checkpoint.grid_id].code)
        scan = record_scan(self.conn, actor, {
            "checkpoint": checkpoint.code, "person_key": person.person_key,
            "direction": "in" if self.rng.random() < 0.5 else "out", "scanned_at": self.clock.isoformat()},
            self.vault, self.clock)
        self.counts["scans"] += 1
        if scan["task_id"] is not None and scan["task_id"] not in self.tasks:
            self.counts["checkpoint_alerts"] += 1
            yield from self._work(self._created(self._load_task(scan["task_id"])))

    # -- home observation ---------------------------------------------------------------------------------------------
    def _schedule_follow_ups(self) -> None:
        """Date the match's plans back a few days (their codes came before the day), make the day's checks and play
        each: reported on time, early, late, with a fever, or missed; the sweep runs every 15 minutes."""
        conn = self.conn
        plans = conn.execute(text(
            "SELECT p.id, p.grid_id, p.person_key FROM observation_plans p WHERE p.status = 'active' "
            "ORDER BY p.grid_id = :demo DESC, p.id"), {"demo": self.demo_grid_id}).all()
        if not plans:
            return
        for plan in plans:  # started 0 to 6 days before the day, an hour or so before its time of day
            started = self.start - timedelta(days=int(self.rng.integers(0, 7))) - self._minutes(30, 180)
            conn.execute(text("UPDATE observation_plans SET starts_at = least(starts_at, :at), created_at = :at, "
                              "updated_at = :at WHERE id = :id"), {"id": plan.id, "at": started})
            conn.execute(text("UPDATE observation_events SET at = :at WHERE plan_id = :id AND kind = 'created'"),
                         {"id": plan.id, "at": started})
        for day in sorted({beijing_day(self.start), beijing_day(self.now)}):
            make_checks(conn, day, not_before=self.start)  # none before the day: nobody could have reported them
        checks = conn.execute(text(
            "SELECT c.plan_id, c.due_at FROM observation_checks c WHERE c.plan_id = ANY(:ids) AND c.due_at <= :now "
            "ORDER BY c.plan_id, c.due_at"), {"ids": [p.id for p in plans], "now": self.now}).all()
        by_plan: dict[int, list[datetime]] = defaultdict(list)
        for check in checks:
            by_plan[check.plan_id].append(check.due_at)
        scripted = iter(FOLLOW_SCRIPT)
        fates, weights = list(CHECK_FATES), np.array(list(CHECK_FATES.values()))
        for plan in plans:
            script = next(scripted, None) if plan.grid_id == self.demo_grid_id else None
            for n, due in enumerate(by_plan.get(plan.id, [])):
                fate = script[n] if script is not None and n < len(script) else \
                    fates[int(self.rng.choice(len(fates), p=weights / weights.sum()))]
                self.counts[f"checks_{fate}"] += 1
                if fate == "missed":
                    continue
                offset = {"on_time": self._minutes(-20, 25), "early": self._minutes(-200, -60),
                          "late": self._minutes(45, 110), "fever": self._minutes(-10, 30)}[fate]
                self.at(max(self.start, due + offset), self._check_in(plan, fate))
        self.at(self.start, self._follow_up_sweeps())

    def _check_in(self, plan: Row[Any], fate: str) -> Iterator[timedelta]:
        """One report: by the grid's worker (two in three, when the grid has one), else by the person's link."""
        workers = self.workers.get(plan.grid_id) or []
        by_worker = bool(workers) and (plan.grid_id == self.demo_grid_id or self.rng.random() < 0.67)
        actor = None
        if by_worker:
            user_id = self.demo_worker if plan.grid_id == self.demo_grid_id and self.demo_worker else workers[0]
            if user_id not in self.actors:
                self.actors[user_id] = load_actor(self.conn, user_id)
            actor = self.actors[user_id]
        fever = fate == "fever"
        temperature = round(float(self.rng.uniform(38.0, 38.9)) if fever else float(self.rng.uniform(36.1, 37.1)), 1)
        if fever and plan.grid_id == self.demo_grid_id:
            temperature = 38.1
        symptoms = ("fever", "cough") if fever and self.rng.random() < 0.5 else ("fever",) if fever else ("none",)
        try:
            with self.conn.begin_nested():
                done = record_check(self.conn, plan.id, CheckReport(temperature, symptoms, None),
                                    "worker" if actor is not None else "self", self.clock, actor)
        except Conflict:  # the plan closed meanwhile (a fever's new code): nothing to count
            self.counts["check_refused"] += 1
            return
        self.counts["check_ins"] += 1
        self.tasks.update(done["task_ids"])
        yield from ()

    def _follow_up_sweeps(self) -> Iterator[timedelta]:
        """The server's follow-up sweep: checks past their grace become missed, two in a row a home visit."""
        while True:
            if sweep_missed(self.conn, self.clock)["visits"]:  # the day's tasks: the home visits raised too
                self.tasks.update(self.conn.execute(text(
                    "SELECT task_id FROM observation_events WHERE kind = 'visit_task' AND at = :at "
                    "AND task_id IS NOT NULL"), {"at": self.clock}).scalars())
            yield SWEEP_EVERY

    # -- the count ----------------------------------------------------------------------------------------------------
    def _tally(self) -> dict:
        conn, ids = self.conn, sorted(self.tasks)
        by_status: dict[str, int] = dict(conn.execute(
            text("SELECT status, count(*) FROM tasks WHERE id = ANY(:ids) GROUP BY 1"), {"ids": ids}).all())
        events: dict[str, int] = dict(conn.execute(
            text("SELECT action, count(*) FROM task_events WHERE task_id = ANY(:ids) GROUP BY 1"), {"ids": ids}).all())
        overdue = conn.execute(text(f"SELECT count(*) FROM tasks WHERE id = ANY(:ids) AND status IN {OPEN_SQL} "
                                    "AND due_at < :now"),
                               {"ids": ids, "now": self.now}).scalar_one()
        leads = conn.execute(text(
            "SELECT count(*), count(*) FILTER (WHERE report_count > 1), count(*) FILTER (WHERE status = 'triaged'), "
            "count(*) FILTER (WHERE status = 'dismissed') FROM leads WHERE id = ANY(:ids)"),
            {"ids": sorted(self.leads)}).one()
        flags = conn.execute(text("SELECT count(*) FROM flags")).scalar_one()
        mine = conn.execute(text("SELECT count(*) FROM tasks WHERE id = ANY(:ids) AND assignee_id = :w"),
                            {"ids": ids, "w": self.demo_worker}).scalar_one()
        return {"flags": flags, "tasks": len(ids), **{f"status_{s}": by_status.get(s, 0) for s in lifecycle.STATUSES},
                "overdue": overdue, "task_events": sum(events.values()), "escalations": events.get("escalate", 0),
                "reworks": events.get("rework", 0), "extensions": events.get("grant_extension", 0),
                "leads": leads[0], "lead_reports": self.counts["lead_reports"], "merged_leads": leads[1],
                "triaged_leads": leads[2], "dismissed_leads": leads[3], "scans": self.counts["scans"],
                "checkpoint_alerts": self.counts["checkpoint_alerts"], "demo_worker_tasks": mine,
                **self._follow_up_tally()}

    def _follow_up_tally(self) -> dict:
        """The follow-ups the day left: plans in force, checks by status, fevers, home visits raised."""
        conn = self.conn
        plans = conn.execute(text("SELECT count(*), count(*) FILTER (WHERE grid_id = :demo) FROM observation_plans "
                                  "WHERE status = 'active'"), {"demo": self.demo_grid_id}).one()
        checks: dict[str, int] = dict(conn.execute(text(
            "SELECT status, count(*) FROM observation_checks GROUP BY 1")).all())
        events: dict[str, int] = dict(conn.execute(text(
            "SELECT kind, count(*) FROM observation_events GROUP BY 1")).all())
        return {"observation_plans": plans[0], "demo_grid_plans": plans[1],
                **{f"checks_{s}": checks.get(s, 0) for s in ("due", "done", "missed")},
                "late_check_ins": self.counts["checks_late"], "fevers": events.get("fever", 0),
                "visit_tasks": events.get("visit_task", 0), "fever_tasks": events.get("fever_task", 0)}
