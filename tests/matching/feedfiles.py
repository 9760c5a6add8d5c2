"""Small feed files made for the tests: valid ID numbers with known check digits."""

from __future__ import annotations

import csv
from pathlib import Path

from matching.identity import check_digit

HEADER = ["序号", "姓名", "身份证号码", "手机号", "现住址", "经度", "纬度", "坐标系", "人员类别", "登记时间"]


def valid_id(serial: int, born: str = "19850303", region: str = "440605") -> str:
    body = f"{region}{born}{serial:03d}"
    return body + check_digit(body)


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8", title: str | None = "南海区排查名单",
              header: list[str] = HEADER, trailing_empty: int = 2) -> Path:
    with path.open("w", newline="", encoding=encoding) as out:
        writer = csv.writer(out)
        if title:
            writer.writerow([title])
        writer.writerow(header)
        writer.writerows(rows)
        for _ in range(trailing_empty):
            writer.writerow([""] * len(header))
    return path
