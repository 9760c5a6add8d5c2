"""Onboarding staff from the roster an office keeps: an Excel sheet (.xlsx) or a CSV (UTF-8, UTF-8 with BOM,
GB18030), one person a row.

Columns (Chinese headers first, English accepted; below up to 19 title rows; order free):

=============================  ==========================================================================
姓名 / name                    required
手机号 / phone                 an 11-digit mobile; needed unless 用户名 is given (a second import finds the
                               account by it); one account per phone
角色 / role                    网格员, 网格长 (or 派遣员), 指挥中心, 统计员, 管理员, or worker, supervisor,
                               commander, reporter, admin
网格编码 / grid_codes          a worker's grids, one or several, separated by ；; 、 , or spaces
村居编码 or 社区编码           a supervisor's community (or a worker's, checked against his grids)
镇街编码 / town_code           a commander's or reporter's town (empty: the whole district); checked for
                               the others
用户名 / username              optional: made from the phone when empty (``w1385678`` for a worker whose
                               phone is 138****5678)
=============================  ==========================================================================

:func:`read_roster` checks each row on its own (and repeats within the file); :func:`preview_roster` then
checks it against the database and says what importing would do to each row: ``create``, ``update``,
``unchanged`` or ``error``, each error with its row number (as Excel shows it) and field. A dry run is the
preview alone. :func:`import_roster` applies it all or nothing: one error anywhere and nothing is stored.
Each new account gets a one-time activation code; :func:`write_codes` puts them in an Excel sheet to hand
out (they are never printed for a bulk import).

>>> split_codes("440605011001001；440605011001002、 440605011001003")
('440605011001001', '440605011001002', '440605011001003')
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from accounts.activation import Activation, issue
from accounts.actor import ADMIN, COMMANDER, REPORTER, ROLE_NAMES, SUPERVISOR, WORKER, Actor
from accounts.staff import (
    USER_SELECT,
    Areas,
    Placement,
    Problem,
    audit,
    check_name,
    check_username,
    clean_text,
    create_account,
    parse_phone,
    phone_key,
    place_account,
    placement_text,
    update_profile,
)
from gis.errors import ImportRejected
from gis.spreadsheets import neutralised_row
from matching.identity import mask_name, mask_phone
from matching.privacy import Vault

HEADER_SCAN_ROWS = 20
MAX_ROWS = 20000
BEIJING = ZoneInfo("Asia/Shanghai")
FIELD_ALIASES = {
    "name": ("姓名", "名字", "人员姓名", "name", "display_name", "full_name"),
    "phone": ("手机号", "手机号码", "手机", "联系电话", "电话", "phone", "mobile", "phone_number"),
    "role": ("角色", "岗位", "职务", "role"),
    "grid_codes": ("网格编码", "网格代码", "网格", "负责网格", "grid", "grids", "grid_code", "grid_codes"),
    "community_code": ("村居编码", "社区编码", "村居代码", "社区代码", "村委会编码", "居委会编码", "community",
                       "community_code"),
    "town_code": ("镇街编码", "镇街代码", "街道编码", "镇编码", "town", "town_code"),
    "username": ("用户名", "账号", "登录名", "username", "user", "login"),
}
ROLE_ALIASES = {"网格员": WORKER, "网格长": SUPERVISOR, "派遣员": SUPERVISOR, "指挥中心": COMMANDER,
                "指挥员": COMMANDER, "统计员": REPORTER, "管理员": ADMIN, "administrator": ADMIN,
                **{role: role for role in (WORKER, SUPERVISOR, COMMANDER, REPORTER, ADMIN)}}
USERNAME_PREFIX = {WORKER: "w", SUPERVISOR: "s", COMMANDER: "c", REPORTER: "r", ADMIN: "a"}
CODE_SEPARATORS = re.compile(r"[；;、,，/|\s]+")
OUTCOMES = ("create", "update", "unchanged", "error")


def _header_key(value: object) -> str:
    key = re.sub(r"[（(].*?[)）]", "", clean_text(value))
    return re.sub(r"[\s*＊:：]", "", key).lower()


ALIAS_INDEX = {_header_key(alias): name for name, aliases in FIELD_ALIASES.items() for alias in aliases}


@dataclass
class RosterRow:
    """One row of the roster, its fields cleaned, with what is wrong with it on its own."""

    row: int
    name: str
    phone: str | None
    role: str
    grid_codes: tuple[str, ...]
    community_code: str | None
    town_code: str | None
    username: str | None
    problems: list[Problem] = field(default_factory=list)


@dataclass
class Outcome:
    """What importing does to one row: ``action`` one of OUTCOMES, the account it makes or changes, the
    changes or the problems."""

    row: int
    action: str
    username: str
    role: str
    display_name: str
    phone_masked: str | None
    scope: str
    changes: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    user: Any = None  # the stored account it updates (a row of USER_SELECT)
    placement: Placement | None = None
    phone: str | None = None

    @property
    def name_masked(self) -> str:
        return mask_name(self.display_name)

    def notes(self) -> str:
        """The changes or problems in one line."""
        return "；".join(str(p) for p in self.problems) if self.problems else "；".join(self.changes)


@dataclass
class IssuedCode:
    """An activation code issued by an import, with what the sheet to hand out says of its account."""

    row: int
    display_name: str
    role: str
    scope: str
    activation: Activation


@dataclass
class RosterResult:
    outcomes: list[Outcome]
    codes: list[IssuedCode]

    def counts(self) -> dict[str, int]:
        return {action: sum(o.action == action for o in self.outcomes) for action in OUTCOMES}


# -- reading the file ----------------------------------------------------------------------------------------------
def _cell_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def _decode(raw: bytes, name: str) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportRejected(f"{name}: 无法识别文件编码（应为 UTF-8 或 GB18030）/ cannot decode the file: use UTF-8 or "
                         "GB18030")


def read_rows(path: str | Path) -> list[tuple[int, list[str]]]:
    """Every row of the first sheet (or the CSV) with its row number as Excel shows it, as text cells."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImportRejected(f"无法读取文件 / cannot read {path}: {exc.strerror}") from exc
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        try:
            book = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
            raise ImportRejected(f"无法读取 Excel 文件 / cannot read {path.name}: {exc}") from exc
        rows = [(i, [_cell_text(v) for v in row])
                for i, row in enumerate(book.worksheets[0].iter_rows(values_only=True), start=1)]
        book.close()
        return rows
    if path.suffix.lower() not in (".csv", ".txt"):
        raise ImportRejected(f"不支持的格式 {path.suffix} / unsupported format: use .xlsx or .csv")
    reader = csv.reader(io.StringIO(_decode(raw, path.name), newline=""))
    try:
        return [(reader.line_num, cells) for cells in reader]
    except csv.Error as exc:
        raise ImportRejected(f"CSV 第 {reader.line_num} 行无法解析 / CSV line {reader.line_num}: {exc}") from exc


def _header(rows: list[tuple[int, list[str]]], name: str) -> tuple[int, dict[str, int]]:
    for position, (_, cells) in enumerate(rows[:HEADER_SCAN_ROWS]):
        columns: dict[str, int] = {}
        for index, cell in enumerate(cells):
            known = ALIAS_INDEX.get(_header_key(cell))
            if known and known not in columns:
                columns[known] = index
        if "name" in columns and "role" in columns:
            return position, columns
    raise ImportRejected(f"{name}: 前 {HEADER_SCAN_ROWS} 行中找不到表头（需含 姓名 与 角色）/ no header row with a "
                         f"name (姓名) and a role (角色) column in the first {HEADER_SCAN_ROWS} rows")


def split_codes(value: str) -> tuple[str, ...]:
    """Grid codes as an office writes them in one cell: separated by ；; 、 , / or spaces."""
    return tuple(dict.fromkeys(code for code in CODE_SEPARATORS.split(clean_text(value)) if code))


def parse_row(row: int, cells: dict[str, str]) -> RosterRow:
    """One row's fields, cleaned and checked on their own (formats; not yet against the database)."""
    problems: list[Problem] = []
    name = clean_text(cells.get("name"))
    problems += [p for p in [check_name(name)] if p]
    phone, problem = parse_phone(cells.get("phone"))
    problems += [problem] if problem else []
    written_role = clean_text(cells.get("role"))
    role = ROLE_ALIASES.get(written_role.lower(), "")
    if not written_role:
        problems.append(Problem("role", "角色不能为空 / the role is required"))
    elif not role:
        problems.append(Problem("role", f"未知角色「{written_role}」，可选 网格员、网格长、指挥中心、统计员、管理员 / "
                                        f"unknown role {written_role!r}"))
    grid_codes = split_codes(cells.get("grid_codes", ""))
    for code in grid_codes:
        if not re.fullmatch(r"[0-9]{15}", code):
            problems.append(Problem("grid_codes", f"网格编码 {code} 须为 15 位数字 / grid code {code} must have 15 "
                                                  "digits"))
    community_code = clean_text(cells.get("community_code")) or None
    if community_code and not re.fullmatch(r"[0-9]{12}", community_code):
        problems.append(Problem("community_code", f"村居编码 {community_code} 须为 12 位数字 / community code must "
                                                  "have 12 digits"))
    town_code = clean_text(cells.get("town_code")) or None
    if town_code and not re.fullmatch(r"[0-9]{9}", town_code):
        problems.append(Problem("town_code", f"镇街编码 {town_code} 须为 9 位数字 / town code must have 9 digits"))
    username = clean_text(cells.get("username")) or None
    if username:
        problems += [p for p in [check_username(username)] if p]
    elif phone is None and not problem:
        problems.append(Problem("phone", "手机号与用户名至少填一项 / a phone or a username is required"))
    return RosterRow(row, name, phone, role, grid_codes, community_code, town_code, username, problems)


def read_roster(path: str | Path) -> list[RosterRow]:
    """The roster's rows (blank ones left out), each checked on its own and for repeats within the file:
    a phone or a username that an earlier row has already is an error of the later row."""
    path = Path(path)
    rows = read_rows(path)
    start, columns = _header(rows, path.name)
    parsed: list[RosterRow] = []
    for number, cells in rows[start + 1:]:
        values = {name: cells[index] if index < len(cells) else "" for name, index in columns.items()}
        if not any(clean_text(v) for v in values.values()):
            continue
        parsed.append(parse_row(number, values))
    if not parsed:
        raise ImportRejected(f"{path.name}: 表头下没有人员 / no staff below the header")
    if len(parsed) > MAX_ROWS:
        raise ImportRejected(f"{path.name}: 超过 {MAX_ROWS} 行，请分批导入 / more than {MAX_ROWS} rows: split the file")
    phones: dict[str, int] = {}
    usernames: dict[str, int] = {}
    for row in parsed:
        if row.phone:
            if row.phone in phones:
                row.problems.append(Problem("phone", f"手机号与第 {phones[row.phone]} 行重复 / the phone repeats row "
                                                     f"{phones[row.phone]}"))
            phones.setdefault(row.phone, row.row)
        if row.username:
            key = row.username.lower()
            if key in usernames:
                row.problems.append(Problem("username", f"用户名与第 {usernames[key]} 行重复 / the username repeats "
                                                        f"row {usernames[key]}"))
            usernames.setdefault(key, row.row)
    return parsed


# -- checking against the database ---------------------------------------------------------------------------------
def _generated_username(row: RosterRow, taken: set[str]) -> str:
    prefix = USERNAME_PREFIX.get(row.role, "u")
    base = f"{prefix}{row.phone[:3]}{row.phone[-4:]}" if row.phone else f"{prefix}{row.row}"
    candidate, number = base, 1
    while candidate.lower() in taken:
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def preview_roster(conn: Connection, actor: Actor, rows: list[RosterRow], vault: Vault) -> list[Outcome]:
    """What importing ``rows`` would do to each (administrators only); nothing is written."""
    actor.require_role(ADMIN)
    areas = Areas.load(conn)
    keys = {row.row: phone_key(vault, row.phone) for row in rows if row.phone}
    found = conn.execute(text(USER_SELECT + " WHERE u.username = ANY(:names) OR u.phone_key = ANY(:keys)"),
                         {"names": [r.username for r in rows if r.username], "keys": list(keys.values())}).all()
    by_username = {u.username: u for u in found}
    by_phone = {u.phone_key: u for u in found if u.phone_key}
    taken = {name.lower() for name in conn.execute(text(
        "SELECT username FROM users WHERE username ~ '^[wscra][0-9]{7}'")).scalars()}
    taken |= {r.username.lower() for r in rows if r.username}
    outcomes = []
    for row in rows:
        problems = list(row.problems)
        placement = None
        if row.role:
            placement, more = areas.place(row.role, row.grid_codes, row.community_code, row.town_code)
            problems += [] if any(p.field == "grid_codes" for p in problems) else more
        named = by_username.get(row.username) if row.username else None
        phoned = by_phone.get(keys[row.row]) if row.row in keys else None
        if named is not None and phoned is not None and named.id != phoned.id:
            problems.append(Problem("phone", f"手机号已属于另一账号 {phoned.username} / the phone belongs to another "
                                             f"account, {phoned.username}"))
        user = named or phoned
        if user is not None and not user.active:
            problems.append(Problem("username", f"账号 {user.username} 已停用，请先启用 / the account {user.username} "
                                                "is disabled: enable it first"))
        if user is not None and actor.user_id == user.id and row.role and row.role != user.role:
            problems.append(Problem("role", "不能更改自己的角色 / you may not change your own role"))
        if user is not None or row.username:
            username = user.username if user is not None else row.username or ""
        else:  # a name is made only for a row that can be stored
            username = "-" if problems else _generated_username(row, taken)
        taken.add(username.lower())
        scope = placement_text(row.role, row.grid_codes, row.community_code, row.town_code) if row.role else "-"
        outcome = Outcome(row.row, "error", username, row.role, row.name,
                          mask_phone(row.phone) if row.phone else (user.phone_masked if user is not None else None),
                          scope, problems=problems, user=user, placement=placement, phone=row.phone)
        if not problems:
            outcome.action, outcome.changes = _changes(row, user, placement, keys.get(row.row))
        outcomes.append(outcome)
    return outcomes


def _changes(row: RosterRow, user: Any, placement: Placement | None, key: str | None) -> tuple[str, list[str]]:
    if user is None:
        return "create", ["新账号 / new account"]
    assert placement is not None  # a row without problems has a role, so a placement
    changes = []
    if row.name != user.display_name:
        changes.append("姓名 / name")
    if key is not None and key != user.phone_key:
        changes.append("手机 / phone")
    if row.role != user.role:
        changes.append(f"角色 {user.role}→{row.role} / role")
    if (placement.community_id, placement.town_id) != (user.community_id, user.town_id):
        changes.append("范围 / scope")
    if set(placement.grid_ids) != set(user.grid_ids):
        changes.append("网格 / grids")
    if _never_activated(user):
        changes.append("发放激活码 / activation code")
    return ("update", changes) if changes else ("unchanged", [])


def _never_activated(user: Any) -> bool:
    """An account that has never had a password nor a code (a seeded one): the roster onboards it."""
    return bool(user.active and not user.has_password and not user.must_set_password)


def rejection(outcomes: list[Outcome], name: str) -> ImportRejected:
    """The refusal of a roster with errors: every problem with its row number and field."""
    problems = [RosterProblem(o.row, p) for o in outcomes for p in o.problems]
    rows = len({p.row for p in problems})
    return ImportRejected(f"{name}: {rows} 行有错误，未作任何更改 / {rows} rows have errors: nothing was stored",
                          problems)


@dataclass(frozen=True)
class RosterProblem:
    """A problem of a roster row, as :class:`ImportRejected` lists them (``severity``, ``feature``, ``reason``)."""

    row: int
    problem: Problem
    severity: str = "error"

    @property
    def feature(self) -> str:
        return f"第 {self.row} 行 / row {self.row}"

    @property
    def reason(self) -> str:
        return str(self.problem)


def import_roster(conn: Connection, actor: Actor, rows: list[RosterRow], vault: Vault, now: datetime,
                  source: str = "roster") -> RosterResult:
    """Apply the roster in the caller's transaction, all or nothing (administrators only).

    Raises :class:`ImportRejected` with every problem when any row has one: the caller's transaction then
    stores nothing. New accounts get activation codes (returned, never stored in clear), and so do existing
    ones that never had a password (the seeded staff); other updated accounts keep theirs, their grids
    becoming the roster's (a worker's open tasks in grids he loses are recalled).
    """
    actor.require_role(ADMIN)
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('nanhai.roster'))"))  # one import at a time
    outcomes = preview_roster(conn, actor, rows, vault)
    if any(o.action == "error" for o in outcomes):
        raise rejection(outcomes, source)
    codes = []
    for outcome in outcomes:
        why = f"{source} 第 {outcome.row} 行 / row {outcome.row}: "
        if outcome.action == "create":
            assert outcome.placement is not None
            activation = create_account(conn, actor, outcome.username, outcome.display_name, outcome.role,
                                        outcome.phone, outcome.placement, vault, now, why)
            codes.append(IssuedCode(outcome.row, outcome.display_name, outcome.role, outcome.scope, activation))
        elif outcome.action == "update":
            assert outcome.placement is not None
            update_profile(conn, actor, outcome.user, outcome.display_name, outcome.phone, vault, why)
            place_account(conn, actor, outcome.user, outcome.role, outcome.placement, now, why)
            if _never_activated(outcome.user):
                activation = issue(conn, outcome.user.id, outcome.username, vault, now)
                codes.append(IssuedCode(outcome.row, outcome.display_name, outcome.role, outcome.scope, activation))
    result = RosterResult(outcomes, codes)
    counts = result.counts()
    audit(conn, actor, "roster.import", source, f"新建 {counts['create']}，更新 {counts['update']}，未变 "
          f"{counts['unchanged']} / created {counts['create']}, updated {counts['update']}, unchanged "
          f"{counts['unchanged']}")
    return result


# -- the sheet of codes to hand out ------------------------------------------------------------------------------
def write_codes(path: str | Path, codes: list[IssuedCode], base_url: str = "") -> int:
    """Write the activation codes to an Excel sheet for handing out (one row per new account); returns rows.

    The sheet holds one-time secrets: hand each code only to its owner, then destroy the file.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook has its one sheet
    sheet.title = "激活码"
    sheet.append(["行号 row", "用户名 username", "姓名 name", "角色 role", "范围 scope", "激活码 activation code",
                  "有效期至 expires (北京时间)", "激活网址 where"])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for issued in codes:
        sheet.append(neutralised_row([issued.row, issued.activation.username, issued.display_name,
                                      ROLE_NAMES[issued.role], issued.scope, issued.activation.code,
                                      issued.activation.expires_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M"),
                                      f"{base_url}/activate"]))
    for column, width in zip("ABCDEFGH", (8, 16, 10, 10, 36, 18, 20, 24), strict=True):
        sheet.column_dimensions[column].width = width
    book.save(Path(path))
    return len(codes)
