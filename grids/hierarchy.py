"""Area codes of the hierarchy: district (6) + town (3) + community (3) + sequence (3).

The town and community parts extend the NBS 统计用区划代码 of the community, so a
grid code tells which community, town and district own it without a lookup.

>>> parse_grid_code("440605011001007").community
'440605011001'
"""

from __future__ import annotations

import re
from typing import NamedTuple

GRID_CODE = re.compile(r"^[0-9]{15}$")


class GridCode(NamedTuple):
    district: str
    town: str
    community: str
    sequence: int


def grid_code_problem(code: object) -> str | None:
    """Return why ``code`` breaks the 15-digit rule, or None when it is well formed."""
    if code is None or (isinstance(code, float) and code != code):
        return "网格编码为空 / grid code is empty"
    text = str(code).strip()
    if not GRID_CODE.match(text):
        return f"网格编码必须是 15 位数字 / grid code must be 15 digits, got {text!r}"
    if text[12:] == "000":
        return f"网格序号不能为 000 / grid sequence may not be 000 in {text}"
    return None


def parse_grid_code(code: str) -> GridCode:
    """Split a well-formed 15-digit grid code into its parts (raises ValueError otherwise)."""
    problem = grid_code_problem(code)
    if problem:
        raise ValueError(problem)
    return GridCode(code[:6], code[:9], code[:12], int(code[12:]))


def make_grid_code(community_code: str, sequence: int) -> str:
    """Return the grid code of the ``sequence``-th grid (1–999) of a 12-digit community."""
    if not re.fullmatch(r"[0-9]{12}", community_code) or not 1 <= sequence <= 999:
        raise ValueError(f"bad community code or sequence: {community_code!r}, {sequence}")
    return f"{community_code}{sequence:03d}"
