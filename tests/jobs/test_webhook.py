"""The alerts reach the office's group chat: WeCom and DingTalk robots (a local receiver standing in for each) get
text messages in their format, DingTalk's signed; a failing robot gets the same message again later, nothing lost
and nothing twice; many alerts are batched; nothing personal and no robot key is ever stored or posted."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import urllib.parse
from collections import deque
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.fernet import Fernet
from procrastinate import SyncPsycopgConnector
from sqlalchemy import text

from accounts.actor import Actor
from gis.errors import ConfigurationError
from jobs import webhook
from jobs.webhook import batches, deliver_alerts, format_message, parse_webhook, post
from leads.reports import LeadReport
from leads.repository import submit_report
from matching.privacy import Vault
from tasks.alerts import Alert
from tasks.repository import NewTask, create_task

WECOM_KEY = "wecom-key-3f9a7c"
DINGTALK_TOKEN = "dingtalk-token-81bd2e"
SECRET = "SECb5e1d0c2a9"
PHONE = "13912345678"
DESCRIPTION = "陈八方家有人发烧"
quick = partial(post, timeout=2.0, retries=1, backoff=0.01)  # one quick retry, without the real back-off


class Receiver:
    """A robot on 127.0.0.1: answers each POST as told (``ok``, ``500``, ``errcode``), records what it got, and
    checks DingTalk's signature when it has a secret (a wrong one is refused as DingTalk does: errcode 310000)."""

    def __init__(self, secret: str | None = None) -> None:
        self.secret, self.answers, self.got = secret, deque[str](), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                parts = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parts.query))
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                mode = receiver.answers.popleft() if receiver.answers else "ok"
                signed = receiver.secret is None or receiver.signed(query)
                receiver.got.append({"path": parts.path, "query": query, "body": body, "mode": mode,
                                     "signed": signed, "type": self.headers["Content-Type"]})
                if mode == "500":
                    self.send_error(500)
                    return
                answer = ({"errcode": 0, "errmsg": "ok"} if mode == "ok" and signed else
                          {"errcode": 310000, "errmsg": "sign not match" if not signed else "keywords not in content"})
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def signed(self, query: dict[str, str]) -> bool:
        assert self.secret is not None
        timestamp = query.get("timestamp", "")
        digest = hmac.new(self.secret.encode(), f"{timestamp}\n{self.secret}".encode(), hashlib.sha256).digest()
        fresh = timestamp.isdigit() and abs(int(timestamp) / 1000 - datetime.now(UTC).timestamp()) < 3600
        return fresh and query.get("sign") == base64.b64encode(digest).decode()

    def accepted(self) -> list[str]:
        """The contents of the messages the robot accepted, in order."""
        return [g["body"]["text"]["content"] for g in self.got if g["mode"] == "ok" and g["signed"]]


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(secret: str | None = None) -> Receiver:
        made.append(Receiver(secret))
        return made[-1]
    yield make
    for one in made:
        one.server.shutdown()
        one.server.server_close()


@pytest.fixture(scope="module")
def engine(database_factory, work_engine):
    return database_factory("nanhai_webhook", copy_of=work_engine)


@pytest.fixture(scope="module")
def grid(engine):
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT g.id, g.code, g.name, ST_X(ST_PointOnSurface(g.geom)) AS lon, "
            "ST_Y(ST_PointOnSurface(g.geom)) AS lat FROM grids g ORDER BY g.code LIMIT 1")).one()


VAULT = Vault(b"webhook-test", Fernet.generate_key())


def report_lead(engine, at: datetime, client: str, point=None) -> int:
    """A lead report at ``at`` (placed at ``point``, else nowhere); returns the lead's id."""
    with engine.begin() as conn:
        return submit_report(conn, LeadReport(DESCRIPTION, None, point, PHONE), client, "public", VAULT, at)["id"]


def scalar(engine, statement: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(statement), params).scalar_one()


def test_wecom_and_dingtalk_robots_get_a_text_message_dingtalk_signed(engine, grid, receiver):
    t0 = datetime(2031, 4, 1, 1, 0, tzinfo=UTC)
    wecom, dingtalk = receiver(), receiver(SECRET)
    urls = [f"wecom:{wecom.base}/cgi-bin/webhook/send?key={WECOM_KEY}",
            f"dingtalk:{dingtalk.base}/robot/send?access_token={DINGTALK_TOKEN}"]
    first = deliver_alerts(engine, urls, t0, secret=SECRET, sender=quick)  # first seen: from now on
    assert [w.outcome for w in first.webhooks] == ["nothing", "nothing"] and wecom.got == dingtalk.got == []
    lead = report_lead(engine, t0 + timedelta(minutes=1), "hook-a", (grid.lon, grid.lat))
    with engine.begin() as conn:
        task = create_task(conn, Actor.system(), NewTask("checkpoint_alert", grid.code, "卡口预警核查"),
                           t0 - timedelta(minutes=50))  # falls due at t0 + 10 minutes
    done = deliver_alerts(engine, urls, t0 + timedelta(minutes=15), secret=SECRET, sender=quick)
    assert [(w.kind, w.outcome, w.messages, w.alerts) for w in done.webhooks] == [
        ("wecom", "delivered", 1, 2), ("dingtalk", "delivered", 1, 2)]
    assert (done.messages, done.alerts, done.failed) == (2, 4, 0)
    assert wecom.got[0]["query"] == {"key": WECOM_KEY} and wecom.got[0]["type"].startswith("application/json")
    assert dingtalk.got[0]["query"]["access_token"] == DINGTALK_TOKEN and dingtalk.got[0]["signed"]
    for robot in (wecom, dingtalk):
        assert robot.got[0]["body"]["msgtype"] == "text"
        content = robot.accepted()[0]
        assert content.splitlines() == [
            "【南海区网格指挥】2 条新提醒（新线索 1，任务超时 1）",
            f"· 新线索｜{grid.name}（{grid.code}）｜04月01日 09:01｜线索 #{lead}",
            f"· 任务超时｜{grid.name}（{grid.code}）｜04月01日 09:10｜任务 #{task['id']}",
            "请登录南海区网格指挥平台，在调度页处理。"]
    again = deliver_alerts(engine, urls, t0 + timedelta(minutes=16), secret=SECRET, sender=quick)
    assert [w.outcome for w in again.webhooks] == ["nothing", "nothing"] and len(wecom.got) == len(dingtalk.got) == 1
    stored = scalar(engine, "SELECT string_agg(w.url_hash || w.host || coalesce(d.message, ''), '|') "
                            "FROM alert_webhooks w LEFT JOIN alert_deliveries d USING (url_hash)")
    for secret in (WECOM_KEY, DINGTALK_TOKEN, SECRET, PHONE, DESCRIPTION, "陈八方"):
        assert secret not in stored and secret not in json.dumps(done.as_dict()) and secret not in repr(done)


def test_a_robot_that_is_wrongly_signed_refuses_and_the_alert_waits(engine, grid, receiver):
    t0 = datetime(2031, 5, 1, 1, 0, tzinfo=UTC)
    dingtalk = receiver(SECRET)
    url = f"dingtalk:{dingtalk.base}/robot/send?access_token={DINGTALK_TOKEN}-2"
    deliver_alerts(engine, [url], t0, secret="SEC-wrong", sender=quick)
    report_lead(engine, t0 + timedelta(minutes=1), "hook-b")
    refused = deliver_alerts(engine, [url], t0 + timedelta(minutes=2), secret="SEC-wrong", sender=quick).webhooks[0]
    assert (refused.outcome, refused.error, refused.delivered_until) == ("failed", "errcode 310000: sign not match", t0)
    assert len(dingtalk.got) == 1 and not dingtalk.got[0]["signed"]  # a refusal that will not pass: no quick retry
    fixed = deliver_alerts(engine, [url], t0 + timedelta(minutes=4), secret=SECRET, sender=quick).webhooks[0]
    assert (fixed.outcome, fixed.alerts) == ("delivered", 1) and len(dingtalk.accepted()) == 1


def test_a_failing_robot_gets_the_same_message_later_nothing_lost_nothing_twice(engine, receiver):
    t0 = datetime(2031, 6, 1, 1, 0, tzinfo=UTC)
    robot = receiver()
    url = f"wecom:{robot.base}/cgi-bin/webhook/send?key={WECOM_KEY}-3"
    deliver_alerts(engine, [url], t0, sender=quick)
    first = report_lead(engine, t0 + timedelta(minutes=1), "hook-c")

    robot.answers.extend(["500", "500"])  # down: the quick retry fails too
    down = deliver_alerts(engine, [url], t0 + timedelta(minutes=2), sender=quick).webhooks[0]
    assert (down.outcome, down.error, down.delivered_until) == ("failed", "HTTP 500", t0)
    assert down.next_attempt_at == t0 + timedelta(minutes=3) and len(robot.got) == 2
    second = report_lead(engine, t0 + timedelta(minutes=2, seconds=30), "hook-c")
    waiting = deliver_alerts(engine, [url], t0 + timedelta(minutes=2, seconds=40), sender=quick).webhooks[0]
    assert waiting.outcome == "waiting" and len(robot.got) == 2, "not before its retry is due"

    robot.answers.append("errcode")  # up, but refusing (errcode != 0): no quick retry for that
    refused = deliver_alerts(engine, [url], t0 + timedelta(minutes=3), sender=quick).webhooks[0]
    assert (refused.outcome, refused.next_attempt_at) == ("failed", t0 + timedelta(minutes=5))
    assert refused.error == "errcode 310000: keywords not in content" and len(robot.got) == 3

    back = deliver_alerts(engine, [url], t0 + timedelta(minutes=5), sender=quick).webhooks[0]
    assert (back.outcome, back.messages, back.alerts) == ("delivered", 2, 2)
    posted = [g["body"]["text"]["content"] for g in robot.got]
    assert posted[0] == posted[1] == posted[2] == posted[3], "the very message that failed, posted again"
    assert [m.count(f"线索 #{first}") for m in robot.accepted()] == [1, 0]
    assert [m.count(f"线索 #{second}") for m in robot.accepted()] == [0, 1]
    assert deliver_alerts(engine, [url], t0 + timedelta(minutes=6), sender=quick).webhooks[0].outcome == "nothing"
    rows = scalar(engine, "SELECT string_agg(status || ':' || attempts, ',' ORDER BY d.id) FROM alert_deliveries d "
                          "JOIN alert_webhooks w USING (url_hash) WHERE w.url_hash = :h", h=parse_webhook(url).url_hash)
    assert rows == "sent:3,sent:1"  # three runs for the first (two quick posts in the first)


def test_a_robot_that_does_not_answer_costs_its_timeout_only(engine, receiver):
    t0 = datetime(2031, 7, 1, 1, 0, tzinfo=UTC)
    robot = receiver()
    silent = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)  # accepts, never answers
    try:
        urls = [f"wecom:http://127.0.0.1:{silent.server_port}/hook?key=k",
                f"wecom:{robot.base}/cgi-bin/webhook/send?key={WECOM_KEY}-4"]
        sender = partial(post, timeout=0.3, retries=0)
        deliver_alerts(engine, urls, t0, sender=sender)
        report_lead(engine, t0 + timedelta(minutes=1), "hook-d")
        done = deliver_alerts(engine, urls, t0 + timedelta(minutes=2), sender=sender)
    finally:
        silent.server_close()
    assert [w.outcome for w in done.webhooks] == ["failed", "delivered"]
    assert done.webhooks[0].error.startswith("连接失败 / connection failed") and len(robot.accepted()) == 1


def test_many_alerts_are_batched_within_the_robots_rate(engine, receiver):
    t0 = datetime(2031, 8, 1, 1, 0, tzinfo=UTC)
    robot = receiver()
    url = f"wecom:{robot.base}/cgi-bin/webhook/send?key={WECOM_KEY}-5"
    deliver_alerts(engine, [url], t0, sender=quick)
    leads = [report_lead(engine, t0 + timedelta(seconds=10 * (i + 1)), f"hook-e{i}") for i in range(25)]
    now = t0 + timedelta(minutes=10)
    first = deliver_alerts(engine, [url], now, sender=quick, size=10, per_run=2).webhooks[0]
    assert (first.outcome, first.messages, first.alerts) == ("partial", 2, 20)
    assert first.delivered_until == t0 + timedelta(seconds=200)  # the 20th alert's moment: the rest waits
    rest = deliver_alerts(engine, [url], now + timedelta(minutes=1), sender=quick, size=10, per_run=2).webhooks[0]
    assert (rest.outcome, rest.messages, rest.alerts, rest.delivered_until) == (
        "delivered", 1, 5, now + timedelta(minutes=1))
    messages = robot.accepted()
    assert [m.splitlines()[0] for m in messages] == ["【南海区网格指挥】10 条新提醒（新线索 10）"] * 2 + [
        "【南海区网格指挥】5 条新提醒（新线索 5）"]
    assert all(len(m.encode()) <= webhook.MAX_BYTES for m in messages)
    listed = [int(line.rsplit("#", 1)[1]) for m in messages for line in m.splitlines() if "线索 #" in line]
    assert listed == leads, "every alert once, oldest first"
    assert all("未定位到网格" in line for m in messages for line in m.splitlines() if "线索 #" in line)


def test_alerts_of_one_moment_stay_in_one_message_and_what_does_not_fit_is_counted():
    moment = datetime(2031, 9, 1, 1, 0, tzinfo=UTC)
    alerts = [Alert("overdue", moment, f"44060501100{i:04d}", "桂城街道某某社区第一网格", i, None) for i in range(40)]
    alerts.append(Alert("lead", moment + timedelta(minutes=1), "", None, None, 7))
    assert [len(b) for b in batches(alerts, 10)] == [40, 1]
    message = format_message(alerts[:40])
    assert len(message.encode()) <= webhook.MAX_BYTES
    lines = message.splitlines()
    listed = sum(1 for line in lines if line.startswith("· "))
    assert lines[0] == "【南海区网格指挥】40 条新提醒（任务超时 40）"
    assert f"另有 {40 - listed} 条未列出，请到调度页查看。" in lines and 5 < listed < 40
    english = format_message(alerts[40:], "en")
    assert english.splitlines()[:2] == ["[Nanhai grid command] 1 new alerts (New tip-off: 1)",
                                        "· New tip-off | not placed in a grid | 09-01 09:01 | tip-off #7"]


def test_the_robots_are_told_by_host_or_prefix_and_never_shown_with_their_key(monkeypatch):
    wecom = parse_webhook(f" https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={WECOM_KEY} ", SECRET)
    dingtalk = parse_webhook(f"https://oapi.dingtalk.com/robot/send?access_token={DINGTALK_TOKEN}", SECRET)
    assert (wecom.kind, wecom.secret, dingtalk.kind, dingtalk.secret) == ("wecom", None, "dingtalk", SECRET)
    assert parse_webhook("dingtalk:http://10.0.0.5:9000/send").kind == "dingtalk"
    assert WECOM_KEY not in repr(wecom) and DINGTALK_TOKEN not in repr(dingtalk) and SECRET not in repr(dingtalk)
    with pytest.raises(ConfigurationError, match="wecom: 或 dingtalk:"):
        parse_webhook("https://chat.example.org/hook")
    with pytest.raises(ConfigurationError, match="http"):
        parse_webhook("wecom:ftp://example.org/x")
    monkeypatch.setenv(webhook.WEBHOOK_ENV, f"{wecom.url}, {dingtalk.url},,{wecom.url}")
    monkeypatch.setenv(webhook.SECRET_ENV, SECRET)
    assert webhook.configured_webhooks() == [wecom, dingtalk]
    monkeypatch.delenv(webhook.WEBHOOK_ENV)
    assert webhook.configured_webhooks() == []


def test_the_worker_delivers_every_minute_when_robots_are_configured(engine, receiver, monkeypatch):
    from jobs.queue import ALERTS, _defer, make_app
    from jobs.worker import run_worker

    def scheduled_alerts() -> set[str]:
        return {name for name, _ in make_app(SyncPsycopgConnector()).periodic_registry.periodic_tasks} & {ALERTS}

    assert scheduled_alerts() == set()
    monkeypatch.setenv(webhook.WEBHOOK_ENV, "https://chat.example.org/hook")  # which robot? said in the log
    assert scheduled_alerts() == set()
    robot = receiver()
    url = f"wecom:{robot.base}/cgi-bin/webhook/send?key={WECOM_KEY}-6"
    monkeypatch.setenv(webhook.WEBHOOK_ENV, url)
    scheduled = [task for (name, _), task in make_app(SyncPsycopgConnector()).periodic_registry.periodic_tasks.items()
                 if name == ALERTS]
    assert len(scheduled) == 1 and scheduled[0].cron == "* * * * *" and scheduled[0].task.lock == "alerts"
    now = datetime.now(UTC)
    deliver_alerts(engine, [url], now - timedelta(minutes=5))
    lead = report_lead(engine, now - timedelta(minutes=1), "hook-f")
    database = engine.url.render_as_string(hide_password=False)
    for _ in range(2):
        with engine.begin() as conn:
            _defer(conn, ALERTS, timestamp=int(now.timestamp()))
        run_worker(database, once=True, niceness=0, install_signal_handlers=False)
    assert sum(m.count(f"线索 #{lead}") for m in robot.accepted()) == 1
    assert scalar(engine, "SELECT string_agg(status::text, ',') FROM procrastinate_jobs WHERE task_name = :t",
                  t=ALERTS) == "succeeded", "the earlier run is removed once a later one succeeded"
