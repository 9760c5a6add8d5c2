"""Synthetic department feeds for the demo and the benchmarks (never real people).

Residents are drawn from the reference population surface; ID numbers are
valid GB 11643 numbers with Nanhai's region code and plausible birth dates;
categories follow a chosen mix of risk types. Most rows carry coordinates
(some in GCJ-02, as phones report them); the rest carry only an address
from the standard address table. On request, a share of rows says where the
person came from and when he arrived (出发地, 抵达日期: a third of them from
Hubei, written as lists write it), and a share of residents hold ID numbers
issued in Hubei (native place): what the travel and native-place rules read.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

if TYPE_CHECKING:
    import geopandas as gpd

from gis.crs import wgs84_to_gcj02
from grids.population import NANHAI_POPULATION
from matching.identity import CHECK_CHARS, WEIGHTS

CATEGORIES = (("确诊", 0.002), ("疑似", 0.003), ("密切接触者", 0.015), ("重点地区返回", 0.03),
              ("返岗人员", 0.05), ("", 0.9))
SURNAMES = list("陈李黄梁何罗冯林张王吴邓潘谭关麦杨刘周叶郭谢苏钟曾区蔡卢余")
GIVEN = list("志伟嘉欣俊杰丽华建国敏婷文强海燕家明淑芬振宇晓峰美玲子健泽锦荣秀英永康佩仪")
HEADER = ["序号", "姓名", "身份证号码", "手机号", "现住址", "经度", "纬度", "坐标系", "人员类别", "登记时间"]
TRAVEL_HEADER = ["出发地", "抵达日期"]
# where travellers came from, as lists write it (province or not, city or county, with or without 市): a third
# from Hubei, the key area of the default rules
HUBEI_ORIGINS = ("湖北省武汉市", "武汉", "湖北宜昌", "湖北省宜昌市夷陵区", "孝感市", "武汉市洪山区", "湖北黄冈",
                 "十堰市", "湖北省荆州市沙市区", "恩施州")
OTHER_ORIGINS = ("广州市", "深圳", "湖南省长沙市", "北京市朝阳区", "江西赣州", "上海市", "浙江省温州市", "广西南宁",
                 "东莞市", "四川省成都市", "河南省信阳市", "重庆市渝北区", "佛山市顺德区", "江门")
HUBEI_SHARE = 1 / 3
ARRIVAL_DAYS = 30  # arrivals within the last 30 days: about half of them still inside a 14-day rule
# county-level region codes in Hubei (武汉江岸, 武昌, 洪山; 宜昌夷陵; 孝感孝南; 荆州沙市; 黄冈黄州; 恩施市)
HUBEI_COUNTIES = ("420102", "420106", "420111", "420506", "420902", "421002", "421102", "422801")


def id_numbers(rng: np.random.Generator, n: int, region: str = "440605") -> np.ndarray:
    """``n`` distinct valid 18-digit ID numbers (GB 11643 check digit included)."""
    born = pd.Timestamp("1940-01-01") + pd.to_timedelta(rng.integers(0, 365 * 80, n), unit="D")
    serial = rng.permutation(n) % 1000
    body = np.char.add(np.char.add(region, born.strftime("%Y%m%d").to_numpy().astype(str)),
                       np.char.zfill(serial.astype(str), 3))
    digits = np.frombuffer("".join(body).encode(), dtype=np.uint8).reshape(n, 17).astype(np.int64) - 48
    check = np.array(list(CHECK_CHARS))[(digits @ np.array(WEIGHTS)) % 11]
    return np.char.add(body, check)


def write_feed(path: str | Path, rows: int, district: BaseGeometry, book: pd.DataFrame | None = None, seed: int = 1,
               address_share: float = 0.1, gcj_share: float = 0.2, now: pd.Timestamp | None = None,
               household_share: float = 0.0, travel_share: float = 0.0, native_share: float = 0.0,
               hubei_share: float = HUBEI_SHARE) -> Path:
    """Write a feed CSV of ``rows`` residents living in ``district`` (a polygon); ``household_share`` of them live
    with the resident on the row before and share his phone and home (a family's landline, as lists give it).

    With ``travel_share``, the columns 出发地 and 抵达日期 follow the others, filled on that share of rows
    (:data:`HUBEI_SHARE` of them from Hubei, :data:`HUBEI_ORIGINS`; arrived in the last :data:`ARRIVAL_DAYS`
    days); with ``native_share``, that share of residents hold ID numbers issued in a Hubei county
    (:data:`HUBEI_COUNTIES`). Both are drawn apart from the rest, so the same ``seed`` gives the same residents
    with or without them, and the defaults write the feed written before they existed.

    >>> write_feed("feed.csv", 1000, district, travel_share=0.3, native_share=0.02)  # doctest: +SKIP
    """
    rng = np.random.default_rng(seed)
    now = now or pd.Timestamp.now(tz="Asia/Shanghai").tz_localize(None)
    xy = NANHAI_POPULATION.sample(district, rows, rng)
    ids = id_numbers(rng, rows)
    # Distinct people need distinct numbers: re-draw the rare collisions.
    _, first = np.unique(ids, return_index=True)
    while len(first) < rows:
        dup = np.setdiff1d(np.arange(rows), first)
        ids[dup] = id_numbers(rng, len(dup))
        _, first = np.unique(ids, return_index=True)
    # travel and native place from a generator of their own: the draws above, and so the residents, stay the same
    extra = np.random.default_rng([seed, 22])
    if native_share > 0:
        _native_ids(extra, ids, native_share)
    names = (np.array(SURNAMES)[rng.integers(len(SURNAMES), size=rows)]
             + np.array(GIVEN)[rng.integers(len(GIVEN), size=rows)]
             + np.array(GIVEN)[rng.integers(len(GIVEN), size=rows)])
    phones = np.char.add("13", np.char.zfill(rng.integers(0, 10**9, rows).astype(str), 9))
    labels, weights = zip(*CATEGORIES, strict=True)
    category = np.array(labels)[rng.choice(len(labels), size=rows, p=np.array(weights) / sum(weights))]
    reported = (now - pd.to_timedelta(rng.integers(0, 20 * 24 * 60, rows), unit="min")).strftime("%Y-%m-%d %H:%M")
    lon, lat = xy[:, 0].copy(), xy[:, 1].copy()
    crs = np.full(rows, "WGS84", dtype=object)
    gcj = rng.random(rows) < gcj_share
    lon[gcj], lat[gcj] = wgs84_to_gcj02(lon[gcj], lat[gcj])
    crs[gcj] = "GCJ02"
    address = np.full(rows, "", dtype=object)
    by_address = rng.random(rows) < address_share if book is not None and len(book) else np.zeros(rows, bool)
    if book is not None and by_address.any():
        picks = book.iloc[rng.integers(len(book), size=int(by_address.sum()))]
        address[by_address] = (picks["community_name"] + picks["text"]).to_numpy()
    family = np.flatnonzero(rng.random(rows) < household_share)
    family = family[family > 0]
    for column in (phones, lon, lat, crs, address, by_address):
        column[family] = column[family - 1]
    lon_text = np.where(by_address, "", np.char.mod("%.6f", lon))
    lat_text = np.where(by_address, "", np.char.mod("%.6f", lat))
    crs[by_address] = ""
    columns = [range(1, rows + 1), names, ids, phones, address, lon_text, lat_text, crs, category, reported]
    if travel_share > 0:
        columns += _travel(extra, rows, travel_share, now, hubei_share)
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER + TRAVEL_HEADER if travel_share > 0 else HEADER)
        writer.writerows(zip(*columns, strict=True))
    return path


def _native_ids(rng: np.random.Generator, ids: np.ndarray, share: float) -> None:
    """Give ``share`` of the residents (in place) ID numbers issued in a Hubei county, still distinct."""
    natives = np.sort(rng.choice(len(ids), size=round(len(ids) * share), replace=False))
    county = rng.integers(len(HUBEI_COUNTIES), size=len(natives))
    todo = np.arange(len(natives))
    while len(todo):  # the first time all of them, then the rare numbers drawn twice
        for c in np.unique(county[todo]):
            at = todo[county[todo] == c]
            ids[natives[at]] = id_numbers(rng, len(at), region=HUBEI_COUNTIES[c])
        _, first = np.unique(ids[natives], return_index=True)
        todo = np.setdiff1d(np.arange(len(natives)), first)


def _travel(rng: np.random.Generator, rows: int, share: float, now: pd.Timestamp,
            hubei_share: float = HUBEI_SHARE) -> list[np.ndarray]:
    """The 出发地 and 抵达日期 columns: filled on ``share`` of the rows (``hubei_share`` of those from Hubei),
    empty on the others."""
    travelled = rng.choice(rows, size=round(rows * share), replace=False)
    hubei = rng.random(len(travelled)) < hubei_share
    origin = np.full(rows, "", dtype=object)
    origin[travelled] = np.where(hubei, np.array(HUBEI_ORIGINS, dtype=object)[rng.integers(len(HUBEI_ORIGINS),
                                                                                         size=len(travelled))],
                                 np.array(OTHER_ORIGINS, dtype=object)[rng.integers(len(OTHER_ORIGINS),
                                                                                    size=len(travelled))])
    arrived = np.full(rows, "", dtype=object)
    days = pd.to_timedelta(rng.integers(0, ARRIVAL_DAYS, len(travelled)), unit="D")
    arrived[travelled] = (now.normalize() - days).strftime("%Y-%m-%d").to_numpy(dtype=object)
    return [origin, arrived]


def district_of(grids: gpd.GeoDataFrame) -> BaseGeometry:
    """The area the residents live in: the union of the stored grids."""
    return shapely.union_all(np.asarray(grids.geometry.values))


def write_linkage_lists(feed: str | Path, folder: str | Path, seed: int = 1,
                        now: pd.Timestamp | None = None) -> dict[str, Path]:
    """Two lists without ID numbers about the people of ``feed`` (a :func:`write_feed` file), as departments send
    them, for linkage to work on: an operator's list keyed by phone only (``operator``: 1.5 % of the people, one
    phone in twelve with a digit wrong, and a few phones of nobody in the feed), and a tip-off list with names and
    phones (``tips``: 0.3 %, and a tenth of a percent more by name, one character wrong, and home address: the
    pairs a reviewer decides). Their categories make yellow and red codes."""
    rng = np.random.default_rng(seed + 1000)
    now = now or pd.Timestamp.now(tz="Asia/Shanghai").tz_localize(None)
    people = pd.read_csv(feed, dtype=str, keep_default_na=False)
    when = (now - pd.to_timedelta(rng.integers(0, 5 * 24 * 60, len(people)), unit="min")).strftime("%Y-%m-%d %H:%M")

    def typo(text: str, alphabet: str) -> str:
        at = int(rng.integers(len(text) // 2, len(text)))
        return text[:at] + str(rng.choice(list(alphabet.replace(text[at], "")))) + text[at + 1:]

    picked = rng.choice(len(people), size=max(1, len(people) * 15 // 1000), replace=False)
    phones = [typo(p, "0123456789") if rng.random() < 1 / 12 else p for p in people["手机号"].to_numpy()[picked]]
    phones += [f"137{n:08d}" for n in rng.integers(0, 10**8, size=max(1, len(picked) // 30))]
    folder = Path(folder)
    lists = {"operator": folder / "operator_list.csv", "tips": folder / "tip_off_list.csv"}
    with lists["operator"].open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["手机号码", "人员类别", "登记时间"])
        writer.writerows((phone, "重点地区返回（运营商漫游）", when[i]) for i, phone in enumerate(phones))
    picked = rng.choice(len(people), size=max(1, len(people) * 3 // 1000), replace=False)
    # people known by an address, reported by a neighbour who got the name slightly wrong and gave no phone: the
    # uncertain pairs a reviewer decides
    housed = np.flatnonzero(people["现住址"].to_numpy() != "")
    unsure = rng.choice(housed, size=min(len(housed), max(1, len(picked) // 3)), replace=False)
    names = np.concatenate([people["姓名"].to_numpy()[picked],
                            [typo(n, "".join(GIVEN)) for n in people["姓名"].to_numpy()[unsure]]])
    tip_phones = np.concatenate([people["手机号"].to_numpy()[picked], np.full(len(unsure), "")])
    tip_addresses = np.concatenate([np.full(len(picked), ""), people["现住址"].to_numpy()[unsure]])
    with lists["tips"].open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["姓名", "联系电话", "住址", "人员类别", "登记时间"])
        writer.writerows(zip(names, tip_phones, tip_addresses, ["密接（群众举报）"] * len(names),
                             np.asarray(when)[np.concatenate([picked, unsure])], strict=True))
    return lists
