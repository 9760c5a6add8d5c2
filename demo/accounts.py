"""Demo accounts, one per role, for the embedded demo (never for a real deployment).

demo_worker answers for one grid of the reference district and demo_supervisor
for that grid's community, so that their data scopes are small and real.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, text

from accounts.actor import ADMIN, COMMANDER, REPORTER, SUPERVISOR, WORKER
from accounts.repository import save_user
from gis.errors import NoGrids

DEMO_ROLES = (COMMANDER, SUPERVISOR, WORKER, REPORTER, ADMIN)
DEMO_NAMES = {COMMANDER: "演示指挥员", SUPERVISOR: "演示网格长", WORKER: "演示网格员", REPORTER: "演示统计员",
              ADMIN: "演示管理员"}


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: str
    scope: str


def demo_grid(conn: Connection) -> tuple[int, str, int, str]:
    """(grid id, grid code, community id, community name) given to the demo worker and supervisor."""
    row = conn.execute(text("SELECT g.id, g.code, c.id AS community_id, c.name FROM grids g "
                            "JOIN communities c ON c.id = g.community_id ORDER BY g.code LIMIT 1")).one_or_none()
    if row is None:
        raise NoGrids()
    return row.id, row.code, row.community_id, row.name


def create_demo_accounts(conn: Connection, password: str | None = None) -> tuple[str, list[DemoAccount]]:
    """Create or reset demo_<role> for every role; returns (the password, the accounts)."""
    password = password or secrets.token_urlsafe(9)
    grid_id, grid_code, community_id, community = demo_grid(conn)
    accounts = []
    for role in DEMO_ROLES:
        username = f"demo_{role}"
        if role == WORKER:
            save_user(conn, username, role, password, DEMO_NAMES[role], community_id, [grid_id])
            scope = f"网格 {grid_code}"
        elif role == SUPERVISOR:
            save_user(conn, username, role, password, DEMO_NAMES[role], community_id)
            scope = f"社区 {community}"
        else:
            save_user(conn, username, role, password, DEMO_NAMES[role])
            scope = "汇总数据" if role == REPORTER else "全区"
        accounts.append(DemoAccount(username, role, scope))
    return password, accounts
