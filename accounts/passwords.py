"""Password hashing with scrypt (memory-hard; Python's standard library, no extra dependency).

A stored hash reads ``scrypt$<n>$<r>$<p>$<salt>$<hash>`` (base64), so the
cost can be raised later without invalidating old hashes.

>>> stored = hash_password("correct horse")
>>> verify_password("correct horse", stored), verify_password("wrong", stored)
(True, False)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

N, R, P = 2**14, 8, 1
MIN_LENGTH = 10
COMMON_PASSWORDS = Path(__file__).with_name("common_passwords.txt")
MOBILE = re.compile(r"^1[3-9][0-9]{9}$")


def hash_password(password: str) -> str:
    """Hash ``password`` with a fresh random salt."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    return f"scrypt${N}${R}${P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str | None) -> bool:
    """True when ``password`` matches ``stored`` (constant-time comparison); False for no or a malformed hash."""
    try:
        scheme, n, r, p, salt, digest = (stored or "").split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(expected))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The common passwords no account may take (``common_passwords.txt``, lower case, comments left out)."""
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def check_strength(password: str, username: str | None = None) -> str | None:
    """Why ``password`` is too weak to set, or None.

    At least 10 characters; not a common password (``common_passwords.txt``: the most frequent ones and
    obvious Chinese-context choices such as woaini1314 or 123456789a), not a mobile number, not one
    character repeated, not the username.

    >>> check_strength("woaini1314")
    '密码过于常见，请换一个 / this password is too common: choose another'
    >>> check_strength("桂城网格巡查 2026") is None
    True
    """
    if len(password) < MIN_LENGTH:
        return f"密码至少 {MIN_LENGTH} 位 / a password needs at least {MIN_LENGTH} characters"
    folded = unicodedata.normalize("NFKC", password).strip().lower()
    if folded in common_passwords():
        return "密码过于常见，请换一个 / this password is too common: choose another"
    if MOBILE.match(folded):
        return "密码不能是手机号 / a password may not be a phone number"
    if len(set(folded)) <= 2:
        return "密码不能只由一两个字符重复组成 / a password needs more than one or two different characters"
    if username and username.strip().lower() in folded:
        return "密码不能包含用户名 / a password may not contain the username"
    return None
