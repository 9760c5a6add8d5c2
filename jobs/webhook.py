"""The alerts posted to the office's group chat: a WeCom (企业微信) or DingTalk (钉钉) group robot's webhook.

Configuration (read by the worker when it starts): ``NANHAI_ALERT_WEBHOOK``, one or more robot URLs, comma-separated.
The kind comes from the host (``qyapi.weixin.qq.com``: WeCom, ``oapi.dingtalk.com``: DingTalk), or from a prefix
``wecom:`` / ``dingtalk:`` before the URL (a proxy, a test receiver). ``NANHAI_ALERT_WEBHOOK_SECRET``: the signing
secret of the DingTalk robots ("加签"), sent as DingTalk documents it: ``timestamp`` (ms) and ``sign`` =
url-encoded base64 of HMAC-SHA256(secret, "timestamp\\nsecret").

:func:`deliver_alerts` (every minute in the worker, :func:`jobs.tasks.deliver_alerts`) posts to each robot the
alerts of :func:`tasks.alerts.pending_alerts` since that robot's cursor (``alert_webhooks.delivered_until``,
migration 0019), oldest first, :data:`LINES_PER_MESSAGE` alerts a message and at most :data:`MESSAGES_PER_RUN`
messages a run (a robot takes 20 a minute). Each message is stored before it is posted (``alert_deliveries``) and
the cursor moves past its alerts only once the robot accepted it (HTTP 200 and ``errcode`` 0): a robot that fails
gets the very same message again later (after 1, 2, 4… minutes, at most :data:`RETRY_CAP`), then what came since.
So no alert is lost and none is posted twice — unless the worker dies between the robot's answer and the commit
that records it, when the message is posted again (at least once). A robot that fails or hangs costs at most its
timeouts and never holds up the other robots or the queue.

The message is Chinese (the office's chat), from the ``alerts`` gettext catalog: each alert's kind, grid name
and code, time, and task or lead number — never a person's name, ID number or phone. The robot's URL carries its
key: it is stored and reported only as a SHA-256 hash and its host.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from babel.messages.pofile import read_po
from sqlalchemy import Connection, Engine

from gis.db import sql
from gis.errors import ConfigurationError
from tasks.alerts import KINDS, Alert, pending_alerts

log = logging.getLogger(__name__)

WEBHOOK_ENV = "NANHAI_ALERT_WEBHOOK"
SECRET_ENV = "NANHAI_ALERT_WEBHOOK_SECRET"
HOSTS = {"qyapi.weixin.qq.com": "wecom", "oapi.dingtalk.com": "dingtalk"}
WebhookKind = Literal["wecom", "dingtalk"]
LINES_PER_MESSAGE = 10  # alerts listed in one message: a WeCom text holds 2048 bytes
MAX_BYTES = 2000  # a message's size at most (UTF-8): lines that do not fit are counted, not listed
MESSAGES_PER_RUN = 5  # per robot and run (every minute): a robot takes 20 a minute
TIMEOUT = 5.0  # seconds for one POST
QUICK_RETRIES = 2  # retries of a POST within a run, after BACKOFF, then twice that…
BACKOFF = 0.5  # seconds
RETRY_BASE = timedelta(minutes=1)  # a failed message is posted again after 1, 2, 4… minutes
RETRY_CAP = timedelta(minutes=30)
KEEP_SENT = timedelta(days=30)  # delivered messages kept this long (what was posted, for the record)
SETTLE = timedelta(seconds=10)  # the periodic run asks this far behind the clock: rows stamped before commit
RETRYABLE_ERRCODES = frozenset({45009, 130101, -1})  # WeCom / DingTalk "too many messages", "system busy"
LOCK_CLASS = 4_242_023  # pg advisory lock (class, hashtext(url hash)): one delivery per robot at a time
BEIJING = ZoneInfo("Asia/Shanghai")
LOCALE_DIR = Path(__file__).resolve().parents[1] / "pages" / "locale"


@dataclass(frozen=True)
class Webhook:
    """One robot: where to post, its kind, and (DingTalk) its signing secret. Its ``repr`` shows no URL."""

    url: str
    kind: WebhookKind
    secret: str | None = None

    @property
    def url_hash(self) -> str:
        """SHA-256 of the URL: how the database knows this robot without storing its key."""
        return hashlib.sha256(self.url.encode()).hexdigest()

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.url).hostname or ""

    def __repr__(self) -> str:
        return f"Webhook({self.kind}, {self.host}, {self.url_hash[:12]})"


def parse_webhook(entry: str, secret: str | None = None) -> Webhook:
    """One configured robot: ``[wecom:|dingtalk:]URL``; the kind from the prefix, else the host. ``secret`` signs
    the DingTalk robots' posts.

    >>> parse_webhook("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k").kind
    'wecom'
    >>> parse_webhook("dingtalk:http://127.0.0.1:8080/robot/send?access_token=t", "SEC1").secret
    'SEC1'
    """
    entry = entry.strip()
    prefix, _, rest = entry.partition(":")
    kind: str | None = None
    if prefix in ("wecom", "dingtalk") and not rest.startswith("//"):
        kind, entry = prefix, rest.strip()
    parts = urllib.parse.urlsplit(entry)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{WEBHOOK_ENV}：不是 http(s) 网址 / not an http(s) URL (an entry of "
                                 f"{len(entry)} characters)")
    kind = kind or HOSTS.get(parts.hostname)
    if kind is None:
        raise ConfigurationError(f"{WEBHOOK_ENV}：无法判断 {parts.hostname} 是企业微信还是钉钉机器人，请在网址前加 "
                                 f"wecom: 或 dingtalk: / cannot tell whether {parts.hostname} is a WeCom or a "
                                 "DingTalk robot: prefix its URL with wecom: or dingtalk:")
    return Webhook(entry, "wecom" if kind == "wecom" else "dingtalk", secret if kind == "dingtalk" else None)


def parse_webhooks(entries: Iterable[str], secret: str | None = None) -> list[Webhook]:
    """The robots of ``entries`` (each maybe itself comma-separated), blanks skipped, each once."""
    found: dict[str, Webhook] = {}
    for entry in entries:
        for one in entry.split(","):
            if one.strip():
                hook = parse_webhook(one, secret)
                found.setdefault(hook.url_hash, hook)
    return list(found.values())


def configured_webhooks(environ: Mapping[str, str] = os.environ) -> list[Webhook]:
    """The robots ``NANHAI_ALERT_WEBHOOK`` names (none when it is unset), signed with
    ``NANHAI_ALERT_WEBHOOK_SECRET`` when DingTalk's."""
    return parse_webhooks([environ.get(WEBHOOK_ENV, "")], environ.get(SECRET_ENV) or None)


def signed_url(hook: Webhook, now_ms: int | None = None) -> str:
    """The URL to post to: a DingTalk robot with a secret gets ``timestamp`` and ``sign`` added.

    >>> signed_url(Webhook("https://oapi.dingtalk.com/robot/send?access_token=t", "dingtalk", "SEC"), 1700000000000)
    'https://oapi.dingtalk.com/robot/send?access_token=t&timestamp=1700000000000&sign=r%2B2we0q01lkZqz38LA5IPNbHN81U1leRf3Au4PSQb6Q%3D'
    """
    if hook.kind != "dingtalk" or not hook.secret:
        return hook.url
    timestamp = str(now_ms if now_ms is not None else round(time.time() * 1000))
    digest = hmac.new(hook.secret.encode(), f"{timestamp}\n{hook.secret}".encode(), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest))
    return f"{hook.url}{'&' if urllib.parse.urlsplit(hook.url).query else '?'}timestamp={timestamp}&sign={sign}"


def payload(content: str) -> bytes:
    """The JSON body both robots take for a text message."""
    return json.dumps({"msgtype": "text", "text": {"content": content}}, ensure_ascii=False).encode()


@dataclass(frozen=True)
class Posted:
    """A robot's answer: accepted, or why not (an HTTP status, the robot's errcode, a timeout: never the URL)."""

    ok: bool
    error: str | None = None
    retryable: bool = True


Sender = Callable[[Webhook, str], Posted]


def _post_once(hook: Webhook, content: str, timeout: float) -> Posted:
    request = urllib.request.Request(signed_url(hook), data=payload(content), method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - http(s) only, checked above
            body = answer.read(64 * 1024)
    except urllib.error.HTTPError as exc:
        return Posted(False, f"HTTP {exc.code}", exc.code >= 500 or exc.code == 429)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:  # refused, unreachable, timed out
        reason = getattr(exc, "reason", exc)
        return Posted(False, f"连接失败 / connection failed: {type(reason).__name__}")
    try:
        answer_json = json.loads(body)
        errcode = int(answer_json.get("errcode", -1))
    except (ValueError, TypeError, AttributeError):
        return Posted(False, "回复不是 JSON / the answer is not JSON")
    if errcode != 0:
        message = str(answer_json.get("errmsg", ""))[:120]
        return Posted(False, f"errcode {errcode}: {message}", errcode in RETRYABLE_ERRCODES)
    return Posted(True)


def post(hook: Webhook, content: str, *, timeout: float = TIMEOUT, retries: int = QUICK_RETRIES,
         backoff: float = BACKOFF, sleep: Callable[[float], None] = time.sleep) -> Posted:
    """POST ``content`` as a text message to ``hook``, tried again ``retries`` times (after ``backoff``, then twice
    that…) while the failure may pass (a timeout, HTTP 5xx or 429, a robot's "too many messages")."""
    for attempt in range(retries + 1):
        result = _post_once(hook, content, timeout)
        if result.ok or not result.retryable or attempt == retries:
            return result
        sleep(backoff * 2 ** attempt)
    raise AssertionError("unreachable")


@cache
def chat_strings(lang: str = "zh") -> dict[str, str]:
    """The ``alerts`` catalog of ``lang`` (pages/locale/<lang>/LC_MESSAGES/alerts.po), read with Babel as the pages
    read theirs: the jobs may not import the pages (lint-imports), so the file is read here."""
    with (LOCALE_DIR / ("en" if lang == "en" else "zh") / "LC_MESSAGES" / "alerts.po").open("rb") as handle:
        return {str(m.id): str(m.string) for m in read_po(handle, locale=None, domain="alerts") if m.id}


def _line(alert: Alert, strings: Mapping[str, str]) -> str:
    grid = (strings["alerts.chat.grid"].format(name=alert.grid_name, code=alert.grid_code) if alert.grid_name
            else alert.grid_code or strings["alerts.chat.unplaced"])
    subject = (strings["alerts.chat.task"].format(id=alert.task_id) if alert.task_id is not None
               else strings["alerts.chat.lead"].format(id=alert.lead_id))
    return strings["alerts.chat.line"].format(kind=strings[f"alerts.kind.{alert.kind}"], grid=grid, subject=subject,
                                              time=alert.at.astimezone(BEIJING).strftime(strings["alerts.chat.time"]))


def format_message(alerts: Sequence[Alert], lang: str = "zh", max_bytes: int = MAX_BYTES) -> str:
    """The chat message of ``alerts`` (oldest first): a title counting them by kind, a line each, and the lines
    that do not fit in ``max_bytes`` counted instead of listed.

    >>> from datetime import UTC
    >>> print(format_message([Alert("overdue", datetime(2026, 12, 3, 6, 5, tzinfo=UTC), "440605011001008",
    ...                             "桂城第8网格", 12, None)]))
    【南海区网格指挥】1 条新提醒（任务超时 1）
    · 任务超时｜桂城第8网格（440605011001008）｜12月03日 14:05｜任务 #12
    请登录南海区网格指挥平台，在调度页处理。
    """
    strings = chat_strings(lang)
    counts = strings["alerts.chat.separator"].join(
        strings["alerts.chat.count"].format(kind=strings[f"alerts.kind.{kind}"], count=n)
        for kind in KINDS if (n := sum(1 for a in alerts if a.kind == kind)))
    head = strings["alerts.chat.title"].format(count=len(alerts), counts=counts)
    footer = strings["alerts.chat.footer"]
    lines = [_line(alert, strings) for alert in alerts]
    for shown in range(len(lines), -1, -1):
        more = [strings["alerts.chat.more"].format(count=len(lines) - shown)] if shown < len(lines) else []
        message = "\n".join([head, *lines[:shown], *more, footer])
        if len(message.encode()) <= max_bytes:
            return message
    return "\n".join([head, strings["alerts.chat.more"].format(count=len(lines))])


def batches(alerts: Sequence[Alert], size: int = LINES_PER_MESSAGE) -> list[list[Alert]]:
    """``alerts`` (oldest first) in messages of at most ``size``, cut only between two moments, as a message's
    window ends at its last alert's moment (alerts of one moment beyond ``size`` share one message)."""
    found: list[list[Alert]] = []
    for alert in alerts:
        current = found[-1] if found else None
        if current is not None and (len(current) < size or current[-1].at == alert.at):
            current.append(alert)
        else:
            found.append([alert])
    return found


@dataclass(frozen=True)
class WebhookReport:
    """What one robot got in a run. ``outcome``: ``delivered`` (every message posted), ``partial`` (the run's
    share posted, the rest next run), ``nothing`` (no alert), ``failed`` (a message refused: posted again after
    ``next_attempt_at``), ``waiting`` (a failed message not yet due again), ``busy`` (another run has it)."""

    kind: str
    host: str
    url_hash: str
    outcome: str
    messages: int = 0
    alerts: int = 0
    error: str | None = None
    delivered_until: datetime | None = None
    next_attempt_at: datetime | None = None


@dataclass(frozen=True)
class DeliveryReport:
    """A run of :func:`deliver_alerts` over every robot."""

    webhooks: tuple[WebhookReport, ...]

    @property
    def messages(self) -> int:
        return sum(w.messages for w in self.webhooks)

    @property
    def alerts(self) -> int:
        return sum(w.alerts for w in self.webhooks)

    @property
    def failed(self) -> int:
        return sum(1 for w in self.webhooks if w.outcome == "failed")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (a job's result, ``--json``): no URL in it."""
        return {"messages": self.messages, "alerts": self.alerts, "failed": self.failed,
                "webhooks": [{key: value.isoformat() if isinstance(value, datetime) else value
                              for key, value in asdict(w).items()} for w in self.webhooks]}


def deliver_alerts(engine: Engine, urls: Sequence[str | Webhook], now: datetime, *, secret: str | None = None,
                   sender: Sender = post, lang: str = "zh", size: int = LINES_PER_MESSAGE,
                   per_run: int = MESSAGES_PER_RUN) -> DeliveryReport:
    """Post to each robot of ``urls`` the alerts of the whole district up to ``now`` it has not had yet (see the
    module's text); a robot seen for the first time starts from ``now`` (no flood of old news). One robot's
    failure stops nothing but its own delivery. ``sender`` posts one message (:func:`post`).

    Example: ``deliver_alerts(engine, ["wecom:http://127.0.0.1:8080/hook"], datetime.now(UTC))``.
    """
    every: dict[str, Webhook] = {}
    for url in urls:
        for hook in [url] if isinstance(url, Webhook) else parse_webhooks([url], secret):
            every.setdefault(hook.url_hash, hook)
    return DeliveryReport(tuple(_deliver_one(engine, hook, now, sender, lang, size, per_run)
                                for hook in every.values()))


def _report(hook: Webhook, outcome: str, **figures: Any) -> WebhookReport:
    return WebhookReport(hook.kind, hook.host, hook.url_hash, outcome, **figures)


def _retry_at(now: datetime, attempts: int) -> datetime:
    return now + min(RETRY_CAP, RETRY_BASE * 2 ** max(0, attempts - 1))


def _deliver_one(engine: Engine, hook: Webhook, now: datetime, sender: Sender, lang: str, size: int,
                 per_run: int) -> WebhookReport:
    with engine.connect() as conn:
        # A session lock, not a transaction's: each step below commits on its own, the message stored (pending)
        # before it is posted and its outcome right after, so no robot waits on an open transaction.
        if not conn.execute(sql("SELECT pg_try_advisory_lock(CAST(:c AS int), hashtext(:h))"),
                            {"c": LOCK_CLASS, "h": hook.url_hash}).scalar_one():
            conn.rollback()
            return _report(hook, "busy")
        conn.commit()
        try:
            return _deliver_locked(conn, hook, now, sender, lang, size, per_run)
        finally:
            conn.rollback()
            conn.execute(sql("SELECT pg_advisory_unlock(CAST(:c AS int), hashtext(:h))"),
                         {"c": LOCK_CLASS, "h": hook.url_hash})
            conn.commit()


def _deliver_locked(conn: Connection, hook: Webhook, now: datetime, sender: Sender, lang: str, size: int,
                    per_run: int) -> WebhookReport:
    with conn.begin():
        conn.execute(sql("INSERT INTO alert_webhooks (url_hash, kind, host, delivered_until) "
                         "VALUES (:h, :kind, :host, :now) ON CONFLICT (url_hash) DO NOTHING"),
                     {"h": hook.url_hash, "kind": hook.kind, "host": hook.host, "now": now})
        cursor = conn.execute(sql("SELECT delivered_until FROM alert_webhooks WHERE url_hash = :h"),
                              {"h": hook.url_hash}).scalar_one()
        owed = conn.execute(sql(
            "SELECT id, window_to, alerts, message, attempts, next_attempt_at FROM alert_deliveries "
            "WHERE url_hash = :h AND status <> 'sent' ORDER BY id"), {"h": hook.url_hash}).all()
        conn.execute(sql("DELETE FROM alert_deliveries WHERE url_hash = :h AND status = 'sent' AND sent_at < :old"),
                     {"h": hook.url_hash, "old": now - KEEP_SENT})
    if owed and owed[0].next_attempt_at is not None and owed[0].next_attempt_at > now:
        return _report(hook, "waiting", error=None, delivered_until=cursor,
                       next_attempt_at=owed[0].next_attempt_at)
    messages = alerts_sent = 0
    for delivery in owed:  # what a failed run left: the same messages, in order, before anything new
        failed = _attempt(conn, hook, sender, delivery.id, delivery.message, delivery.window_to, delivery.attempts,
                          now)
        if failed is not None:
            return _report(hook, "failed", messages=messages, alerts=alerts_sent, error=failed.error,
                           delivered_until=cursor, next_attempt_at=_retry_at(now, delivery.attempts + 1))
        cursor, messages, alerts_sent = delivery.window_to, messages + 1, alerts_sent + delivery.alerts
    if now <= cursor:
        return _report(hook, "delivered" if messages else "nothing", messages=messages, alerts=alerts_sent,
                       delivered_until=cursor)
    with conn.begin():
        found = sorted(pending_alerts(conn, None, cursor, now),
                       key=lambda a: (a.at, KINDS.index(a.kind) if a.kind in KINDS else 9, a.task_id or a.lead_id or 0))
    chunks = batches(found, size)
    for number, chunk in enumerate(chunks):
        if messages >= per_run:  # the robot's rate limit: the rest waits for the next run, the cursor before it
            return _report(hook, "partial", messages=messages, alerts=alerts_sent, delivered_until=cursor)
        window_to = now if number == len(chunks) - 1 else chunk[-1].at
        message = format_message(chunk, lang)
        with conn.begin():
            delivery_id = conn.execute(sql(
                "INSERT INTO alert_deliveries (url_hash, window_from, window_to, alerts, message, status, "
                "created_at) VALUES (:h, :from, :to, :n, :message, 'pending', :now) RETURNING id"),
                {"h": hook.url_hash, "from": cursor, "to": window_to, "n": len(chunk), "message": message,
                 "now": now}).scalar_one()
        failed = _attempt(conn, hook, sender, delivery_id, message, window_to, 0, now)
        if failed is not None:
            return _report(hook, "failed", messages=messages, alerts=alerts_sent, error=failed.error,
                           delivered_until=cursor, next_attempt_at=_retry_at(now, 1))
        cursor, messages, alerts_sent = window_to, messages + 1, alerts_sent + len(chunk)
    if not chunks:  # nothing happened up to now: the cursor moves on, so the next window is short
        with conn.begin():
            conn.execute(sql("UPDATE alert_webhooks SET delivered_until = :now WHERE url_hash = :h "
                             "AND delivered_until < :now"), {"h": hook.url_hash, "now": now})
        cursor = now
    return _report(hook, "delivered" if messages else "nothing", messages=messages, alerts=alerts_sent,
                   delivered_until=cursor)


def _attempt(conn: Connection, hook: Webhook, sender: Sender, delivery_id: int, message: str, window_to: datetime,
             attempts: int, now: datetime) -> Posted | None:
    """Post one stored message and record the outcome (sent: the robot's cursor moves to its window's end);
    returns the failure, or None."""
    try:
        result = sender(hook, message)
    except Exception as exc:  # noqa: BLE001 - a sender's bug must not lose the message: it is retried
        result = Posted(False, f"内部错误 / internal error: {type(exc).__name__}")
    with conn.begin():
        if result.ok:
            conn.execute(sql("UPDATE alert_deliveries SET status = 'sent', attempts = attempts + 1, sent_at = :now, "
                             "last_attempt_at = :now, next_attempt_at = NULL, error = NULL WHERE id = :id"),
                         {"id": delivery_id, "now": now})
            conn.execute(sql("UPDATE alert_webhooks SET delivered_until = :to WHERE url_hash = :h"),
                         {"h": hook.url_hash, "to": window_to})
            return None
        conn.execute(sql("UPDATE alert_deliveries SET status = 'failed', attempts = attempts + 1, error = :error, "
                         "last_attempt_at = :now, next_attempt_at = :retry WHERE id = :id"),
                     {"id": delivery_id, "now": now, "error": result.error, "retry": _retry_at(now, attempts + 1)})
    log.warning("alert webhook %r failed (attempt %d): %s", hook, attempts + 1, result.error)
    return result
