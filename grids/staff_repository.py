"""Database access for users and the grids they answer for."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection, text

from grids.repository import copy_rows


def store_staff(conn: Connection, users: pd.DataFrame, duties: pd.DataFrame, community_id: dict[str, int],
                grid_ids: dict[str, int], synthetic: bool = True) -> int:
    """Insert users (username, display_name, role, community_code) and their grids."""
    copy_rows(conn, "users", ("username", "display_name", "role", "community_id", "synthetic"),
              ((u.username, u.display_name, u.role, community_id.get(u.community_code), synthetic)
               for u in users.itertuples()))
    user_ids: dict[str, int] = dict(conn.execute(text("SELECT username, id FROM users WHERE username = ANY(:names)"),
                                 {"names": users["username"].tolist()}).all())
    return copy_rows(conn, "user_grids", ("user_id", "grid_id"),
                     ((user_ids[d.username], grid_ids[d.grid_code]) for d in duties.itertuples()))


def staff_counts(conn: Connection) -> dict[str, int]:
    """Number of users per role."""
    return dict(conn.execute(text("SELECT role, count(*) FROM users GROUP BY role")).all())
