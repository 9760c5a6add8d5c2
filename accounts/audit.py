"""Reading the audit log: who logged in, who read whom and why, who imported, withdrew, changed rules,
boundaries, accounts and codes — filtered, paged, exported to Excel. Only administrators and commanders read
it, and every read is itself a line of it (``audit.read``, ``audit.export``, the filter as the reason).

The log (``audit_log``, append-only since migration 0003) names a person by his person key, never by his
ID number: a filter by person takes an ID number and looks for its key, or takes any fragment of a subject
(a username, ``feed_file:12``, a masked phone).

>>> AuditFilter(username="demo_admin", kind="login").describe()
'user=demo_admin kind=login'
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from accounts.actor import ADMIN, COMMANDER, Actor
from accounts.repository import record_read
from gis.errors import InvalidRequest
from gis.spreadsheets import neutralised_row
from matching.identity import id_number_problem, normalise_id_number
from matching.privacy import Vault

READERS = (ADMIN, COMMANDER)
BEIJING = ZoneInfo("Asia/Shanghai")
# the kinds a reader picks from: each is a prefix of the actions it covers
KINDS = ("login", "unmask", "person.lookup", "feed.", "roster.import", "rules.", "grids.apply", "user.", "code.",
         "audit.", "retention.", "linkage.", "e_pass.")
KIND_NAMES = {"login": ("登录", "Logins"), "unmask": ("查看完整信息", "Unmasks"),
              "person.lookup": ("人员查询", "Person look-ups"),
              "feed.": ("数据导入与撤回", "Feed imports, withdrawals"),
              "roster.import": ("花名册导入", "Roster imports"), "rules.": ("规则变更", "Rule changes"),
              "grids.apply": ("边界变更", "Boundary changes"), "user.": ("账号变更", "Account changes"),
              "code.": ("赋码调整与申诉", "Code overrides, appeals"), "audit.": ("审计日志查阅", "Audit log reads"),
              "retention.": ("到期数据清除", "Retention purges"),
              "linkage.": ("记录关联审核", "Linkage reviews"), "reports.": ("报表导出", "Report exports"),
              "e_pass.": ("电子通行证", "E-passes")}
PAGE_SIZE = 50
EXPORT_LIMIT = 100_000  # rows in one export (an Excel sheet holds a million; a month of a district is far less)
EXPORT_COLUMNS = (("at", "时间 / at"), ("username", "用户 / user"), ("action", "操作 / action"),
                  ("subject", "对象 / subject"), ("person", "人员（脱敏）/ person (masked)"),
                  ("reason", "理由 / reason"))


@dataclass(frozen=True)
class Language:
    """How an export reads in one language, given by the page that asks for it (the catalogs are the web
    side's): the sheet's name, the headings in :data:`EXPORT_COLUMNS`' order, and an entry as it reads."""

    sheet: str
    headings: tuple[str, ...]
    entry: Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class AuditFilter:
    """What to read: a user, a person (ID number or subject fragment), a kind (:data:`KINDS`, or any action
    prefix), days from and to (Beijing dates, both included), and a page."""

    username: str | None = None
    person: str | None = None
    kind: str | None = None
    since: date | None = None
    until: date | None = None
    page: int = 1
    page_size: int = PAGE_SIZE

    def describe(self, person_shown: str | None = None) -> str:
        """The filter in one line, as the audit log keeps it: no ID number in clear (``person_shown`` stands for
        the person filter: its key, or the fragment)."""
        parts = [f"user={self.username}" if self.username else "",
                 f"person={person_shown or self.person}" if self.person else "",
                 f"kind={self.kind}" if self.kind else "", f"from={self.since}" if self.since else "",
                 f"to={self.until}" if self.until else "", f"page={self.page}" if self.page > 1 else ""]
        return " ".join(p for p in parts if p) or "all"


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), BEIJING).astimezone(UTC)


def _like(fragment: str) -> str:
    return "%" + re.sub(r"([\\%_])", r"\\\1", fragment) + "%"


def _where(where: AuditFilter, vault: Vault) -> tuple[str, dict[str, Any], str | None]:
    """The WHERE clause and parameters of a filter, and how the person filter is named in the audit line."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    shown = None
    if where.username and where.username.strip():
        clauses.append("a.username = :user")
        params["user"] = where.username.strip()
    if where.person and where.person.strip():
        typed = where.person.strip()
        if id_number_problem(typed) is None:  # an ID number: his person key, exactly (the subject's index)
            params["key"] = vault.person_key(normalise_id_number(typed))
            clauses.append("a.subject = :key")
            shown = params["key"]
        else:
            if re.fullmatch(r"[0-9Xx ]{15,20}", typed):
                raise InvalidRequest(f"身份证号无效 / invalid ID number: {id_number_problem(typed)}", "person")
            params["fragment"] = _like(typed)
            clauses.append("a.subject ILIKE :fragment")
    if where.kind and where.kind.strip():
        kind = where.kind.strip()
        if not re.fullmatch(r"[a-z_.]{2,40}", kind):
            raise InvalidRequest(f"未知类别 {kind} / unknown kind: one of {', '.join(KINDS)}", "kind")
        params["kind"] = _like(kind)[1:]  # a prefix
        clauses.append("a.action LIKE :kind")
    if where.since and where.until and where.since > where.until:
        raise InvalidRequest("开始日期晚于结束日期 / the first day is after the last", "since")
    if where.since:
        params["since"] = _day_start(where.since)
        clauses.append("a.at >= :since")
    if where.until:
        params["until"] = _day_start(where.until + timedelta(days=1))
        clauses.append("a.at < :until")
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params, shown


SELECT = ("SELECT a.id, a.at, a.username, a.action, a.subject, a.reason, p.id_masked AS person "
          "FROM audit_log a LEFT JOIN persons p ON p.person_key = a.subject")


def action_label(action: str, lang: str = "zh") -> str:
    """An action as a reader of the log wants it: the name of its kind (:data:`KIND_NAMES`), then the action
    itself, which the filters and the export use; an action of no known kind as it is.

    >>> action_label("rules.save"), action_label("login", "en"), action_label("demo.activity")
    ('规则变更 · rules.save', 'Logins · login', 'demo.activity')
    """
    for kind in KINDS:
        if action == kind.rstrip(".") or action.startswith(kind if kind.endswith(".") else kind + "."):
            return f"{KIND_NAMES[kind][1 if lang == 'en' else 0]} · {action}"
    return action


def _view(row: Any) -> dict[str, Any]:
    return {"id": row.id, "at": row.at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"), "username": row.username,
            "action": row.action, "subject": row.subject, "person": row.person, "reason": row.reason}


def read_log(conn: Connection, actor: Actor, where: AuditFilter, vault: Vault,
             client: str | None = None) -> tuple[list[dict[str, Any]], int]:
    """One page of the entries matching ``where``, newest first, and how many match in all; audited
    (``audit.read``). Each entry: ``at`` (Beijing time), ``username``, ``action``, ``subject``, ``person`` (the
    masked ID number when the subject is a stored person's key), ``reason``."""
    actor.require_role(*READERS)
    if where.page < 1 or not 1 <= where.page_size <= 500:
        raise InvalidRequest("页码无效 / invalid page", "page")
    condition, params, shown = _where(where, vault)
    total = conn.execute(text("SELECT count(*) FROM audit_log a" + condition), params).scalar_one()
    rows = conn.execute(text(SELECT + condition + " ORDER BY a.at DESC, a.id DESC LIMIT :n OFFSET :skip"),
                        {**params, "n": where.page_size, "skip": (where.page - 1) * where.page_size})
    found = [_view(r) for r in rows]
    record_read(conn, actor, "audit.read", "audit_log", where.describe(shown), client)
    return found, int(total)


def export_log(conn: Connection, actor: Actor, where: AuditFilter, vault: Vault, client: str | None = None,
               language: Language | None = None) -> bytes:
    """Every entry matching ``where`` (the newest :data:`EXPORT_LIMIT`), newest first, as an .xlsx sheet (at,
    user, action, subject, person, reason); audited (``audit.export``). ``language``: the reader's sheet name,
    headings and the way an entry reads (the page's language); without it, both languages, as the CLI writes."""
    actor.require_role(*READERS)
    from openpyxl import Workbook

    condition, params, shown = _where(replace(where, page=1), vault)
    rows = conn.execute(text(SELECT + condition + " ORDER BY a.at DESC, a.id DESC LIMIT :n"),
                        {**params, "n": EXPORT_LIMIT})
    book = Workbook(write_only=True)
    sheet = book.create_sheet(language.sheet if language else "审计日志 audit")
    sheet.append(list(language.headings) if language else [heading for _key, heading in EXPORT_COLUMNS])
    for row in rows:
        entry = language.entry(_view(row)) if language else _view(row)
        sheet.append(neutralised_row([entry[key] for key, _heading in EXPORT_COLUMNS]))
    out = io.BytesIO()
    book.save(out)
    record_read(conn, actor, "audit.export", "audit_log", replace(where, page=1).describe(shown), client)
    return out.getvalue()
