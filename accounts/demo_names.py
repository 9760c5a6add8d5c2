"""The demo accounts' user names, so that the product can recognise them without importing ``demo/``.

``gridctl users demo`` (demo/accounts.py) creates one ``demo_<role>`` per role, all with one known password; a
production server refuses to start while any of them can log in (:mod:`api.production`).
tests/deploy/test_production.py checks that this list and what demo/accounts.py creates are the same.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from accounts.actor import ADMIN, COMMANDER, REPORTER, SUPERVISOR, WORKER

DEMO_USERNAMES = tuple(f"demo_{role}" for role in (COMMANDER, SUPERVISOR, WORKER, REPORTER, ADMIN))


def active_demo_accounts(conn: Connection) -> list[str]:
    """The demo accounts that exist and are active (can log in), by name."""
    return list(conn.execute(text("SELECT username FROM users WHERE username = ANY(:names) AND active "
                                  "ORDER BY username"), {"names": list(DEMO_USERNAMES)}).scalars())
