"""The people who own the grids: grid workers (网格员) and community supervisors (网格长).

The reference district gets synthetic staff: 7 to 9 workers per grid (about
8 on average, 8,000+ in all) and one supervisor per community who oversees
all its grids. Names are generated from common Cantonese surnames; they are
marked synthetic in the database.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SURNAMES = list("陈李黄梁何罗冯林张王吴邓潘谭关麦杨刘周叶郭谢苏钟曾区蔡卢余庞冼")
GIVEN = list("志伟嘉欣俊杰丽华建国敏婷文强海燕家明淑芬振宇晓峰美玲子健泽锦荣秀英永康佩仪诗雅浩然")
WORKERS_PER_GRID = (7, 9)


def person_name(rng: np.random.Generator) -> str:
    """A plausible synthetic Chinese name (surname and one or two given characters)."""
    length = 1 if rng.random() < 0.25 else 2
    return SURNAMES[rng.integers(len(SURNAMES))] + "".join(GIVEN[i] for i in rng.integers(len(GIVEN), size=length))


def reference_staff(grids: pd.DataFrame, communities: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate workers and supervisors for the reference district.

    Returns ``(users, responsibilities)``: users with ``username``,
    ``display_name``, ``role`` and ``community_code``; responsibilities with
    ``username`` and ``grid_code``, one row per grid a user answers for.
    """
    rng = np.random.default_rng(seed + 1)
    users: list[tuple[str, str, str, str]] = []
    duties: list[tuple[str, str]] = []
    for community in communities.itertuples():
        username = f"s{community.code}"
        users.append((username, person_name(rng), "supervisor", community.code))
        duties.extend((username, code) for code in grids.loc[grids["community_code"] == community.code, "code"])
    for grid in grids.itertuples():
        for number in range(1, int(rng.integers(WORKERS_PER_GRID[0], WORKERS_PER_GRID[1] + 1)) + 1):
            username = f"w{grid.code}{number:02d}"
            users.append((username, person_name(rng), "worker", grid.community_code))
            duties.append((username, grid.code))
    return (pd.DataFrame(users, columns=["username", "display_name", "role", "community_code"]),
            pd.DataFrame(duties, columns=["username", "grid_code"]))
