"""Production mode (``NANHAI_PRODUCTION=1`` or ``gridctl serve --production``): what a real server refuses.

A production server does not start while

- any demo account (``demo_commander`` … ``demo_admin``, :data:`accounts.demo_names.DEMO_USERNAMES`) exists and
  is active: they share one known password;
- the keys that seal personal data and make person keys are the generated development ones: keys made by the
  platform itself into ``<data folder>/secrets.json`` (:mod:`matching.privacy`) sit beside the data and in no
  backup plan. Both ``NANHAI_PERSON_KEY_SECRET`` and ``NANHAI_FERNET_KEY`` must come from the environment (the
  unit's EnvironmentFile), the Fernet key well formed and the HMAC secret at least 32 characters;

each problem said in one line (Chinese, then English), all of them at once.
"""

from __future__ import annotations

import os

from sqlalchemy import Engine

from accounts.demo_names import active_demo_accounts
from matching.privacy import FERNET_KEY_VARIABLE, PERSON_KEY_VARIABLE, secrets_file, secrets_from_environment

PRODUCTION_VARIABLE = "NANHAI_PRODUCTION"
MIN_PERSON_KEY_SECRET = 32


def production_requested(flag: bool = False) -> bool:
    """``--production``, or ``NANHAI_PRODUCTION`` set to 1, true, yes or on."""
    return flag or os.environ.get(PRODUCTION_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")


def secrets_problem() -> str | None:
    """Why the keys in use are not fit for production, or None."""
    if not secrets_from_environment():
        return (f"生产模式拒绝使用自动生成的开发密钥（{secrets_file()}）：请在 EnvironmentFile 中设置 "
                f"{PERSON_KEY_VARIABLE} 与 {FERNET_KEY_VARIABLE} / production refuses the generated development "
                f"keys ({secrets_file()}): set {PERSON_KEY_VARIABLE} and {FERNET_KEY_VARIABLE} in the "
                f"EnvironmentFile")
    from cryptography.fernet import Fernet

    try:
        Fernet(os.environ[FERNET_KEY_VARIABLE].encode())
    except ValueError:
        return (f"{FERNET_KEY_VARIABLE} 不是有效的 Fernet 密钥 / {FERNET_KEY_VARIABLE} is not a Fernet key "
                f"(32 url-safe base64-encoded bytes)")
    if len(os.environ[PERSON_KEY_VARIABLE]) < MIN_PERSON_KEY_SECRET:
        return (f"{PERSON_KEY_VARIABLE} 太短（至少 {MIN_PERSON_KEY_SECRET} 个字符）/ {PERSON_KEY_VARIABLE} is too "
                f"short (at least {MIN_PERSON_KEY_SECRET} characters)")
    return None


def production_problems(engine: Engine) -> list[str]:
    """Every reason this server may not start in production mode, one line each (empty: it may)."""
    problems = []
    with engine.connect() as conn:
        demo = active_demo_accounts(conn)
    if demo:
        names = ", ".join(demo)
        problems.append(f"生产模式拒绝启动：存在演示账户 {names}（共用一个公开的密码），请删除或停用 / production "
                        f"refuses to start while demo accounts exist ({names}, one known password): delete or "
                        f"disable them")
    secrets = secrets_problem()
    if secrets:
        problems.append(secrets)
    return problems
