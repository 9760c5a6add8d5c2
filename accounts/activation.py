"""One-time activation codes: how a new or reset account gets its first password.

A new account (or one whose password was reset) has no password and ``must_set_password``: it cannot log
in at all. The administrator hands its owner a one-time code, shown once (on the command line for one
account, in an Excel sheet for a roster) and stored only as a keyed hash; the code expires after 14 days.
The owner activates the account with his username, the code and a new password of his own
(:func:`activate`, the page ``/activate`` or ``POST /api/v1/activation``), and is logged in. Failed
activations are throttled together with failed logins (:func:`accounts.repository.check_throttle`).

>>> code = new_code()
>>> len(code), code.count("-"), normalise_code(code.lower().replace("-", " ")) == normalise_code(code)
(14, 2, True)
"""

from __future__ import annotations

import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, text

from accounts.actor import Actor
from accounts.passwords import check_strength, hash_password
from accounts.repository import check_throttle, load_actor, record_failure, record_read
from gis.errors import InvalidRequest, Unauthenticated
from matching.privacy import Vault

# no 0/O, 1/I/L: read aloud or copied from paper without doubt; 31 ** 12, about 59 bits
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12
ACTIVATION_LIFETIME = timedelta(days=14)
NOT_CODE = re.compile(r"[^0-9A-Z]")


@dataclass(frozen=True)
class Activation:
    """A code just issued: shown once to whoever hands it out, never stored in clear."""

    username: str
    code: str
    expires_at: datetime


def new_code() -> str:
    """A fresh random code, in groups of four: ``K7QM-2XWD-P9HT``."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i:i + 4] for i in range(0, CODE_LENGTH, 4))


def normalise_code(code: str) -> str:
    """The code as typed, folded: full-width to ASCII, upper case, spaces and hyphens left out."""
    return NOT_CODE.sub("", unicodedata.normalize("NFKC", code).upper())


def code_hash(vault: Vault, username: str, code: str) -> str:
    """What the database keeps of a code: a keyed hash, bound to the account (useless without the key)."""
    return vault.tag("activation", f"{username}\t{normalise_code(code)}")


def issue(conn: Connection, user_id: int, username: str, vault: Vault, now: datetime) -> Activation:
    """Give account ``user_id`` a new one-time code: its password is cleared and its sessions end."""
    code = new_code()
    expires = now + ACTIVATION_LIFETIME
    conn.execute(text("UPDATE users SET must_set_password = true, password_hash = NULL, activation_hash = :h, "
                      "activation_expires_at = :exp WHERE id = :id"),
                 {"h": code_hash(vault, username, code), "exp": expires, "id": user_id})
    conn.execute(text("DELETE FROM user_sessions WHERE user_id = :id"), {"id": user_id})
    return Activation(username, code, expires)


def activate(conn: Connection, username: str, code: str, password: str, client: str, vault: Vault,
             now: datetime) -> Actor | None:
    """Set the first password of ``username`` with his one-time code; returns him, now able to log in.

    None when the code is wrong (or the account unknown, disabled, or already active): the failure is
    recorded, and the caller must commit even then, as for a login. Raises :class:`RateLimited` after
    too many failures, :class:`InvalidRequest` (field ``password``) for a weak password, before the code
    is looked at, and :class:`Unauthenticated` for a right code past its expiry.
    """
    check_throttle(conn, username, client, now)
    weak = check_strength(password, username)
    if weak:
        raise InvalidRequest(weak, "password")
    row = conn.execute(text("SELECT id, activation_hash, activation_expires_at FROM users WHERE username = :u "
                            "AND active AND must_set_password FOR UPDATE"), {"u": username}).one_or_none()
    if row is None or not row.activation_hash or not normalise_code(code) or \
            not hmac.compare_digest(row.activation_hash, code_hash(vault, username, code)):
        record_failure(conn, username, client, now)
        return None
    if row.activation_expires_at is None or row.activation_expires_at <= now:
        raise Unauthenticated("激活码已过期，请联系管理员重新发放 / the activation code has expired: ask your "
                              "administrator for a new one")
    conn.execute(text("UPDATE users SET password_hash = :p, must_set_password = false, activation_hash = NULL, "
                      "activation_expires_at = NULL WHERE id = :id"), {"p": hash_password(password), "id": row.id})
    conn.execute(text("DELETE FROM login_failures WHERE username = :u"), {"u": username})
    actor = load_actor(conn, row.id)
    record_read(conn, actor, "user.activate", username, "激活账号 / activated", client)
    return actor
