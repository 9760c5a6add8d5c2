"""Staff accounts as the administrator manages them: add, find, disable and enable, role and scope, grids,
duty, password resets. Every function here is the administrator's alone — the actor is checked here, not
by the caller — and every change is written to the audit log (``user.*`` lines: who, whose account, what
changed; a phone only masked).

Where an account answers (its *placement*): a worker his grids (all in one community), a supervisor his
community (every grid of it), a commander or reporter the whole district or one town, an administrator
the whole district. Phones are personal data and kept as residents' phones are: a keyed hash to find an
account by phone (one account per phone), a Fernet token, and the masked form for display.

A new or reset account gets a one-time activation code (:mod:`accounts.activation`). Disabling a worker,
or taking grids from him, ends his sessions at once (disabling) and sends his open tasks (of those grids)
back to dispatch with a ``recall`` event; auto-dispatch then gives them to another worker on duty
(:func:`tasks.repository.recall_tasks`).

>>> placement_text(WORKER, ("440605011001001", "440605011001002"), None, None)
'网格 440605011001001、440605011001002'
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from accounts.activation import Activation, issue
from accounts.actor import ADMIN, COMMANDER, REPORTER, ROLE_NAMES, SUPERVISOR, SYSTEM, WORKER, Actor
from accounts.repository import record_read
from gis.errors import Conflict, InvalidRequest, NotFound
from matching.identity import MOBILE, mask_phone, normalise_phone
from matching.privacy import Vault
from tasks.repository import OPEN_SQL, recall_tasks

ROLES = (WORKER, SUPERVISOR, COMMANDER, REPORTER, ADMIN)
TOWN_ROLES = (COMMANDER, REPORTER)  # may answer for one town instead of the whole district
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$")
NAME_LIMIT = 50
FIELD_NAMES = {"username": "用户名", "name": "姓名", "phone": "手机号", "role": "角色", "grid_codes": "网格编码",
               "community_code": "村居编码", "town_code": "镇街编码"}
STATUSES = ("active", "pending_activation", "no_password", "disabled")
DISABLED_REASON = "网格员账号已停用 / the worker's account was disabled"
UNASSIGNED_REASON = "网格已从网格员名下移除 / the grid was taken from the worker"
ROLE_CHANGED_REASON = "账号已不再是网格员 / the account is no longer a worker's"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an account's data: the field (an English key of FIELD_NAMES) and a message."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{FIELD_NAMES.get(self.field, self.field)} / {self.field}: {self.message}"


@dataclass(frozen=True)
class Placement:
    """Where an account answers, resolved to ids: a worker's grids and community, a supervisor's community, a
    commander's or reporter's town (None: the district)."""

    community_id: int | None = None
    town_id: int | None = None
    grid_ids: tuple[int, ...] = ()


@dataclass
class Areas:
    """The towns, communities and grids by code, read once: what role and scope columns are checked against."""

    grids: dict[str, tuple[int, int]] = field(default_factory=dict)  # code -> (id, community id)
    communities: dict[str, tuple[int, int]] = field(default_factory=dict)  # code -> (id, town id)
    towns: dict[str, int] = field(default_factory=dict)  # code -> id
    community_codes: dict[int, str] = field(default_factory=dict)
    town_codes: dict[int, str] = field(default_factory=dict)
    grid_codes: dict[int, str] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: Connection) -> Areas:
        areas = cls()
        for code, grid_id, community_id in conn.execute(text("SELECT code, id, community_id FROM grids")):
            areas.grids[code] = (grid_id, community_id)
            areas.grid_codes[grid_id] = code
        for code, community_id, town_id in conn.execute(text("SELECT code, id, town_id FROM communities")):
            areas.communities[code] = (community_id, town_id)
            areas.community_codes[community_id] = code
        for code, town_id in conn.execute(text("SELECT code, id FROM towns")):
            areas.towns[code] = town_id
            areas.town_codes[town_id] = code
        return areas

    def place(self, role: str, grid_codes: tuple[str, ...], community_code: str | None,
              town_code: str | None) -> tuple[Placement, list[Problem]]:
        """The placement of an account of ``role`` with these scope columns, and everything wrong with them."""
        problems: list[Problem] = []
        grids = []
        for code in grid_codes:
            if code not in self.grids:
                problems.append(Problem("grid_codes", f"网格 {code} 不存在 / unknown grid {code}"))
            else:
                grids.append((code, *self.grids[code]))
        community = None
        if community_code:
            community = self.communities.get(community_code)
            if community is None:
                problems.append(Problem("community_code", f"村居 {community_code} 不存在 / unknown community "
                                                          f"{community_code}"))
        town_id = None
        if town_code:
            town_id = self.towns.get(town_code)
            if town_id is None:
                problems.append(Problem("town_code", f"镇街 {town_code} 不存在 / unknown town {town_code}"))
        if role == WORKER and not grid_codes:
            problems.append(Problem("grid_codes", "网格员须至少负责一个网格 / a worker needs at least one grid"))
        if role in (WORKER, SUPERVISOR):
            if role == SUPERVISOR and grid_codes and community_code:
                problems.append(Problem("grid_codes", "网格长管辖整个村居，不填网格编码 / a supervisor oversees his "
                                                      "whole community: leave the grid codes empty"))
            by_grids = {of for _, _, of in grids}
            if community is not None:
                for code, _, of in grids:
                    if of != community[0]:
                        problems.append(Problem("grid_codes", f"网格 {code} 不属于村居 {community_code} / grid "
                                                              f"{code} is not in community {community_code}"))
            elif len(by_grids) > 1:
                problems.append(Problem("grid_codes", "网格分属不同村居，一个账号只能在一个村居 / the grids lie in "
                                                      "different communities: an account serves one community"))
            community_id = community[0] if community else (next(iter(by_grids)) if len(by_grids) == 1 else None)
            if role == SUPERVISOR and community_id is None and not problems:
                problems.append(Problem("community_code", "网格长须填写村居编码 / a supervisor needs his community "
                                                          "code"))
            if town_id is not None and community_id is not None and \
                    self.communities[self.community_codes[community_id]][1] != town_id:
                problems.append(Problem("town_code", f"村居不在镇街 {town_code} / the community is not in town "
                                                     f"{town_code}"))
            grid_ids = tuple(sorted(grid_id for _, grid_id, _ in grids)) if role == WORKER else ()
            return Placement(community_id, None, grid_ids), problems
        names = ROLE_NAMES.get(role, role)
        if grid_codes:
            problems.append(Problem("grid_codes", f"{names}不按网格分配，请留空 / a {role} has no grids: leave "
                                                  "it empty"))
        if community_code:
            problems.append(Problem("community_code", f"{names}不按村居分配，请留空 / a {role} has no "
                                                      "community: leave it empty"))
        if role == ADMIN and town_code:
            problems.append(Problem("town_code", "管理员管理全区，请留空 / an administrator serves the whole "
                                                 "district: leave it empty"))
        return Placement(None, town_id if role in TOWN_ROLES else None, ()), problems


# -- checks of single fields -------------------------------------------------------------------------------------
def clean_text(value: object) -> str:
    """A cell or argument as text: full-width folded (NFKC), trimmed; None is ''."""
    return "" if value is None else unicodedata.normalize("NFKC", str(value)).strip()


def check_username(username: str) -> Problem | None:
    if not USERNAME.match(username):
        return Problem("username", "用户名须为 3–64 位字母、数字、_ . -，以字母或数字开头 / a username has 3 to 64 "
                                   "letters, digits, _ . or -, starting with a letter or digit")
    return None


def check_name(name: str) -> Problem | None:
    if not name:
        return Problem("name", "姓名不能为空 / the name is required")
    if len(name) > NAME_LIMIT:
        return Problem("name", f"姓名过长（最多 {NAME_LIMIT} 字）/ the name is longer than {NAME_LIMIT} characters")
    return None


def parse_phone(value: object) -> tuple[str | None, Problem | None]:
    """(the mobile number, normalised, or None when empty; the problem with it)."""
    phone = normalise_phone(value)
    if not phone:
        return None, None
    if not MOBILE.match(phone):
        return None, Problem("phone", "手机号须为 11 位手机号码 / the phone must be an 11-digit mobile number")
    return phone, None


def phone_key(vault: Vault, phone: str) -> str:
    """The keyed hash an account is found by through its phone (the phone itself is only sealed)."""
    return vault.tag("staff_phone", phone)


def placement_text(role: str, grid_codes: tuple[str, ...] | list[str], community_code: str | None,
                   town_code: str | None) -> str:
    """Where an account answers, in words: 网格 …, 村居 …, 镇街 … or 全区."""
    if role == WORKER:
        return "网格 " + "、".join(grid_codes)
    if role == SUPERVISOR:
        return f"村居 {community_code}"
    if role in TOWN_ROLES and town_code:
        return f"镇街 {town_code}"
    return "全区 / district"


def _refuse(problems: list[Problem]) -> None:
    if problems:
        first = problems[0]
        raise InvalidRequest("；".join(str(p) for p in problems), first.field)


# -- reading accounts ----------------------------------------------------------------------------------------------
USER_SELECT = f"""
SELECT u.id, u.username, u.display_name, u.role, u.phone_masked, u.on_duty, u.active, u.must_set_password,
       u.password_hash IS NOT NULL AS has_password, u.activation_expires_at, u.disabled_at, u.disabled_by,
       u.synthetic, u.created_at, u.community_id, u.town_id, u.phone_key,
       c.code AS community_code, c.name AS community_name, t.code AS town_code, t.name AS town_name,
       coalesce((SELECT array_agg(g.code ORDER BY g.code) FROM user_grids ug JOIN grids g ON g.id = ug.grid_id
                 WHERE ug.user_id = u.id), '{{}}') AS grid_codes,
       coalesce((SELECT array_agg(ug.grid_id ORDER BY ug.grid_id) FROM user_grids ug WHERE ug.user_id = u.id),
                '{{}}') AS grid_ids,
       (SELECT count(*) FROM tasks k WHERE k.assignee_id = u.id AND k.status IN {OPEN_SQL}) AS open_tasks
FROM users u LEFT JOIN communities c ON c.id = u.community_id LEFT JOIN towns t ON t.id = coalesce(u.town_id, c.town_id)
"""


def _status(row: Any) -> str:
    if not row.active:
        return "disabled"
    if row.must_set_password:
        return "pending_activation"
    return "active" if row.has_password else "no_password"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def user_view(row: Any) -> dict[str, Any]:
    """An account as the administrator sees it (the phone masked)."""
    scope_town = row.town_code if row.role in TOWN_ROLES and row.town_id is not None else None
    return {"id": row.id, "username": row.username, "display_name": row.display_name, "role": row.role,
            "role_name": ROLE_NAMES[row.role], "phone_masked": row.phone_masked, "community_code": row.community_code,
            "community_name": row.community_name, "town_code": row.town_code, "town_name": row.town_name,
            "grid_codes": list(row.grid_codes), "scope": placement_text(row.role, list(row.grid_codes),
                                                                        row.community_code, scope_town),
            "on_duty": row.on_duty, "active": row.active, "status": _status(row),
            "activation_expires_at": _iso(row.activation_expires_at), "disabled_at": _iso(row.disabled_at),
            "disabled_by": row.disabled_by, "synthetic": row.synthetic, "created_at": _iso(row.created_at),
            "open_tasks": row.open_tasks}


def _require_admin(actor: Actor) -> None:
    actor.require_role(ADMIN)


def _user_row(conn: Connection, username: str, lock: bool = False) -> Any:
    row = conn.execute(text(USER_SELECT + " WHERE u.username = :u" + (" FOR UPDATE OF u" if lock else "")),
                       {"u": username}).one_or_none()
    if row is None:
        raise NotFound(f"用户 {username} 不存在 / no user {username}")
    return row


def get_user(conn: Connection, actor: Actor, username: str) -> dict[str, Any]:
    """One account (administrators only)."""
    _require_admin(actor)
    return user_view(_user_row(conn, username))


def _like(fragment: str) -> str:
    return "%" + fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass
class UserFilter:
    """What :func:`list_users` looks for; every part optional."""

    search: str | None = None  # a fragment of the name or username, a whole phone number, or a grid code
    role: str | None = None
    community: str | None = None  # a community code
    town: str | None = None  # a town code
    status: str | None = None  # one of STATUSES
    include_synthetic: bool = True  # the reference district's generated staff
    limit: int = 100
    offset: int = 0


def list_users(conn: Connection, actor: Actor, vault: Vault,
               where: UserFilter | None = None) -> tuple[list[dict[str, Any]], int]:
    """Accounts matching ``where``, by username (administrators only); returns (page, total)."""
    _require_admin(actor)
    where = where or UserFilter()
    clauses: list[str] = []
    params: dict[str, object] = {"limit": where.limit, "offset": where.offset}
    search = clean_text(where.search)
    if search:
        phone, _ = parse_phone(search)
        if phone is not None:
            clauses.append("u.phone_key = :phone")
            params["phone"] = phone_key(vault, phone)
        elif re.fullmatch(r"[0-9]{15}", search):
            clauses.append("u.id IN (SELECT ug.user_id FROM user_grids ug JOIN grids g ON g.id = ug.grid_id "
                           "WHERE g.code = :grid)")
            params["grid"] = search
        else:
            clauses.append("(u.username ILIKE :like OR u.display_name LIKE :like)")
            params["like"] = _like(search)
    if where.role:
        if where.role not in ROLES:
            raise InvalidRequest(f"未知角色 {where.role} / unknown role", "role")
        clauses.append("u.role = :role")
        params["role"] = where.role
    if where.community:
        clauses.append("c.code = :community")
        params["community"] = where.community
    if where.town:
        clauses.append("t.code = :town")
        params["town"] = where.town
    if where.status:
        conditions = {"active": "u.active AND NOT u.must_set_password AND u.password_hash IS NOT NULL",
                      "pending_activation": "u.active AND u.must_set_password",
                      "no_password": "u.active AND NOT u.must_set_password AND u.password_hash IS NULL",
                      "disabled": "NOT u.active"}
        if where.status not in conditions:
            raise InvalidRequest(f"未知状态 {where.status}，可选 {', '.join(STATUSES)} / unknown status", "status")
        clauses.append(conditions[where.status])
    if not where.include_synthetic:
        clauses.append("NOT u.synthetic")
    condition = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    total = conn.execute(text("SELECT count(*) FROM users u LEFT JOIN communities c ON c.id = u.community_id "
                              "LEFT JOIN towns t ON t.id = coalesce(u.town_id, c.town_id)" + condition),
                         params).scalar_one()
    rows = conn.execute(text(USER_SELECT + condition + " ORDER BY u.username LIMIT :limit OFFSET :offset"), params)
    return [user_view(r) for r in rows], total


# -- changing accounts ---------------------------------------------------------------------------------------------
def audit(conn: Connection, actor: Actor, action: str, username: str, what: str) -> None:
    """One line of the audit log for a change of ``username``'s account (never a phone in clear)."""
    record_read(conn, actor, action, username, what, None)


def _seal_phone(vault: Vault, phone: str | None) -> dict[str, str | None]:
    if phone is None:
        return {"phone_key": None, "phone_sealed": None, "phone_masked": None}
    return {"phone_key": phone_key(vault, phone), "phone_sealed": vault.seal(phone), "phone_masked": mask_phone(phone)}


def _check_phone_free(conn: Connection, vault: Vault, phone: str | None, user_id: int | None) -> None:
    if phone is None:
        return
    owner = conn.execute(text("SELECT username FROM users WHERE phone_key = :k AND id IS DISTINCT FROM :id"),
                         {"k": phone_key(vault, phone), "id": user_id}).scalar()
    if owner is not None:
        raise InvalidRequest(f"手机号 {mask_phone(phone)} 已属于用户 {owner} / the phone already belongs to {owner}",
                             "phone")


def create_account(conn: Connection, actor: Actor, username: str, name: str, role: str, phone: str | None,
                   placement: Placement, vault: Vault, now: datetime, why: str = "") -> Activation:
    """Store a checked new account with its grids and a fresh activation code (no checks of the fields here:
    :func:`add_user` and the roster make them first)."""
    user_id = conn.execute(text(
        "INSERT INTO users (username, display_name, role, community_id, town_id, active, synthetic, "
        "phone_key, phone_sealed, phone_masked, created_at) VALUES (:u, :n, :r, :c, :t, true, false, "
        ":phone_key, :phone_sealed, :phone_masked, :now) RETURNING id"),
        {"u": username, "n": name, "r": role, "c": placement.community_id, "t": placement.town_id, "now": now,
         **_seal_phone(vault, phone)}).scalar_one()
    for grid_id in placement.grid_ids:
        conn.execute(text("INSERT INTO user_grids (user_id, grid_id) VALUES (:u, :g)"), {"u": user_id, "g": grid_id})
    activation = issue(conn, user_id, username, vault, now)
    audit(conn, actor, "user.create", username, f"{why}新建 {ROLE_NAMES[role]} / created as {role}"
          + (f"，手机 {mask_phone(phone)}" if phone else ""))
    return activation


def add_user(conn: Connection, actor: Actor, username: str, name: str, role: str, vault: Vault, now: datetime,
             phone: str | None = None, grid_codes: tuple[str, ...] = (), community_code: str | None = None,
             town_code: str | None = None) -> Activation:
    """Create an account (administrators only); returns its one-time activation code, to be shown once.

    Refuses (InvalidRequest naming the field) a malformed or taken username, an empty name, an unknown role, a
    malformed phone or one that another account has, and a scope that does not fit the role (a worker needs
    grids of one community, a supervisor a community, a commander or reporter at most a town).
    """
    _require_admin(actor)
    username, name, role = clean_text(username), clean_text(name), clean_text(role)
    problems = [p for p in (check_username(username), check_name(name)) if p]
    if role not in ROLES:
        problems.append(Problem("role", f"未知角色 {role}，可选 {', '.join(ROLES)} / unknown role {role}"))
    clean_phone, problem = parse_phone(phone)
    problems += [problem] if problem else []
    _refuse(problems)
    placement, problems = Areas.load(conn).place(role, tuple(clean_text(c) for c in grid_codes),
                                                 clean_text(community_code) or None, clean_text(town_code) or None)
    _refuse(problems)
    if conn.execute(text("SELECT 1 FROM users WHERE username = :u"), {"u": username}).first():
        raise InvalidRequest(f"用户名 {username} 已存在 / the username {username} is taken", "username")
    _check_phone_free(conn, vault, clean_phone, None)
    return create_account(conn, actor, username, name, role, clean_phone, placement, vault, now)


def place_account(conn: Connection, actor: Actor, user: Any, role: str, placement: Placement, now: datetime,
                  why: str = "") -> dict[str, Any]:
    """Give a stored account (a row of USER_SELECT) ``role`` and ``placement``: his grids become exactly the
    placement's, and the open tasks he held in grids he no longer has (all of them if he is no longer a
    worker) are recalled and dispatched again. Returns what changed (``changes``) and the recalled tasks."""
    changes = []
    if role != user.role:
        changes.append(f"角色 {user.role}→{role} / role")
    if placement.community_id != user.community_id:
        changes.append("村居 / community")
    if placement.town_id != user.town_id:
        changes.append("镇街 / town")
    before, after = set(user.grid_ids), set(placement.grid_ids)
    if before != after:
        changes.append("网格 / grids")
    if not changes:
        return {"changes": [], "recalled": []}
    conn.execute(text("UPDATE users SET role = :r, community_id = :c, town_id = :t WHERE id = :id"),
                 {"r": role, "c": placement.community_id, "t": placement.town_id, "id": user.id})
    removed = sorted(before - after)
    if removed:
        conn.execute(text("DELETE FROM user_grids WHERE user_id = :u AND grid_id = ANY(:g)"),
                     {"u": user.id, "g": removed})
    for grid_id in sorted(after - before):
        conn.execute(text("INSERT INTO user_grids (user_id, grid_id) VALUES (:u, :g)"), {"u": user.id, "g": grid_id})
    recalled: list[dict[str, Any]] = []
    if user.role == WORKER and role != WORKER:
        recalled = recall_tasks(conn, user.id, ROLE_CHANGED_REASON, now, by=actor.username)
    elif removed:
        recalled = recall_tasks(conn, user.id, UNASSIGNED_REASON, now, removed, by=actor.username)
    areas_before = ", ".join(user.grid_codes) or user.community_code or user.town_code or "-"
    audit(conn, actor, "user.scope", user.username, f"{why}{'; '.join(changes)}（原 {user.role} {areas_before}）"
          + (f"；收回任务 {len(recalled)} 个 / {len(recalled)} tasks recalled" if recalled else ""))
    return {"changes": changes, "recalled": [t["id"] for t in recalled]}


def _not_self(actor: Actor, user: Any, what: str) -> None:
    if actor.user_id is not None and actor.user_id == user.id:
        zh, _, en = what.partition(" / ")  # what: "中文 / English"
        raise Conflict(f"不能{zh}自己的账号 / you may not {en or zh} your own account", "own_account")


def change_role(conn: Connection, actor: Actor, username: str, role: str, now: datetime,
                grid_codes: tuple[str, ...] = (), community_code: str | None = None,
                town_code: str | None = None) -> dict[str, Any]:
    """Give an account a role and the scope that goes with it (administrators only; not one's own role).

    The scope is given whole, as for :func:`add_user` (a commander made a town's: ``town_code``; made
    district-wide again: none). Grids a worker loses take his open tasks there back to dispatch.
    Returns the account as it is now, with ``changes`` and ``recalled`` (task ids).
    """
    _require_admin(actor)
    role = clean_text(role)
    if role not in ROLES:
        raise InvalidRequest(f"未知角色 {role}，可选 {', '.join(ROLES)} / unknown role {role}", "role")
    user = _user_row(conn, username, lock=True)
    if role != user.role:
        _not_self(actor, user, "更改角色 / change the role of")
    placement, problems = Areas.load(conn).place(role, tuple(clean_text(c) for c in grid_codes),
                                                 clean_text(community_code) or None, clean_text(town_code) or None)
    _refuse(problems)
    done = place_account(conn, actor, user, role, placement, now)
    return {**user_view(_user_row(conn, username)), **done}


def _worker(conn: Connection, username: str) -> Any:
    user = _user_row(conn, username, lock=True)
    if user.role != WORKER:
        raise InvalidRequest(f"{username} 不是网格员，只有网格员按网格分配 / {username} is not a worker: only workers "
                             "are given grids", "username")
    return user


def assign_grids(conn: Connection, actor: Actor, username: str, grid_codes: tuple[str, ...],
                 now: datetime) -> dict[str, Any]:
    """Give a worker more grids, of his own community (administrators only)."""
    _require_admin(actor)
    user = _worker(conn, username)
    areas = Areas.load(conn)
    wanted = tuple(dict.fromkeys([*user.grid_codes, *(clean_text(c) for c in grid_codes)]))
    placement, problems = areas.place(WORKER, wanted, user.community_code if user.grid_codes else None, None)
    _refuse(problems)
    done = place_account(conn, actor, user, WORKER, placement, now, "分配网格 / grids assigned: ")
    return {**user_view(_user_row(conn, username)), **done}


def unassign_grids(conn: Connection, actor: Actor, username: str, grid_codes: tuple[str, ...],
                   now: datetime) -> dict[str, Any]:
    """Take grids from a worker (administrators only): his open tasks there go back to dispatch, each with a
    ``recall`` event, and auto-dispatch gives them to another worker on duty."""
    _require_admin(actor)
    user = _worker(conn, username)
    taking = {clean_text(c) for c in grid_codes}
    unknown = sorted(taking - set(user.grid_codes))
    if unknown:
        raise InvalidRequest(f"{username} 不负责网格 {'、'.join(unknown)} / {username} has no grid "
                             f"{', '.join(unknown)}", "grid_codes")
    areas = Areas.load(conn)
    left = tuple(sorted(areas.grids[c][0] for c in user.grid_codes if c not in taking))
    placement = Placement(user.community_id, None, left)
    done = place_account(conn, actor, user, WORKER, placement, now, "移除网格 / grids taken: ")
    return {**user_view(_user_row(conn, username)), **done}


def disable_user(conn: Connection, actor: Actor, username: str, now: datetime) -> dict[str, Any]:
    """Switch an account off (administrators only; not one's own): his sessions end at once, and a worker's open
    tasks go back to dispatch, each with a ``recall`` event, for auto-dispatch to give to another worker."""
    _require_admin(actor)
    user = _user_row(conn, username, lock=True)
    _not_self(actor, user, "停用 / disable")
    if not user.active:
        return {**user_view(user), "changes": [], "recalled": []}
    conn.execute(text("UPDATE users SET active = false, disabled_at = :now, disabled_by = :by WHERE id = :id"),
                 {"now": now, "by": actor.username, "id": user.id})
    conn.execute(text("DELETE FROM user_sessions WHERE user_id = :id"), {"id": user.id})
    recalled = recall_tasks(conn, user.id, DISABLED_REASON, now, by=actor.username) if user.role == WORKER else []
    audit(conn, actor, "user.disable", username, "停用 / disabled"
          + (f"；收回任务 {len(recalled)} 个 / {len(recalled)} tasks recalled" if recalled else ""))
    return {**user_view(_user_row(conn, username)), "changes": ["停用 / disabled"],
            "recalled": [t["id"] for t in recalled]}


def enable_user(conn: Connection, actor: Actor, username: str) -> dict[str, Any]:
    """Switch a disabled account on again (administrators only); its password, if any, works again."""
    _require_admin(actor)
    user = _user_row(conn, username, lock=True)
    if user.active:
        return {**user_view(user), "changes": []}
    conn.execute(text("UPDATE users SET active = true, disabled_at = NULL, disabled_by = NULL WHERE id = :id"),
                 {"id": user.id})
    audit(conn, actor, "user.enable", username, "启用 / enabled")
    return {**user_view(_user_row(conn, username)), "changes": ["启用 / enabled"]}


def set_duty(conn: Connection, actor: Actor, username: str, on_duty: bool) -> dict[str, Any]:
    """Put a worker on or off duty (administrators only; a worker does it himself through the API)."""
    _require_admin(actor)
    user = _worker(conn, username)
    if user.on_duty != on_duty:
        conn.execute(text("UPDATE users SET on_duty = :d WHERE id = :id"), {"d": on_duty, "id": user.id})
        audit(conn, actor, "user.duty", username, "上岗 / on duty" if on_duty else "离岗 / off duty")
    return user_view(_user_row(conn, username))


def reset_password(conn: Connection, actor: Actor, username: str, vault: Vault, now: datetime) -> Activation:
    """Clear an account's password and give it a new one-time activation code (administrators only): his
    sessions end, and he cannot log in until he activates the account again."""
    _require_admin(actor)
    user = _user_row(conn, username, lock=True)
    if user.role == SYSTEM:  # pragma: no cover - the database refuses such a role
        raise InvalidRequest("系统账号不能重置 / the system has no password", "username")
    activation = issue(conn, user.id, username, vault, now)
    audit(conn, actor, "user.reset_password", username, "重置密码，发放新激活码 / password reset, new activation code")
    return activation


def update_profile(conn: Connection, actor: Actor, user: Any, name: str, phone: str | None, vault: Vault,
                   why: str = "") -> list[str]:
    """Change a stored account's name and phone (a roster's update); returns what changed."""
    _require_admin(actor)
    changes, values = [], {"id": user.id, "n": name}
    if name != user.display_name:
        changes.append("姓名 / name")
    key = phone_key(vault, phone) if phone else None
    if phone is not None and key != user.phone_key:
        changes.append(f"手机 {mask_phone(phone)} / phone")
        values.update(_seal_phone(vault, phone))
    if not changes:
        return []
    sets = ["display_name = :n"] + (["phone_key = :phone_key", "phone_sealed = :phone_sealed",
                                      "phone_masked = :phone_masked"] if "phone_key" in values else [])
    conn.execute(text(f"UPDATE users SET {', '.join(sets)} WHERE id = :id"), values)
    audit(conn, actor, "user.update", user.username, why + "; ".join(changes))
    return changes
