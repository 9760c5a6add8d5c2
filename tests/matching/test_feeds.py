import string
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from gis.crs import wgs84_to_gcj02
from gis.errors import ImportRejected
from matching.feeds import read_body, read_feed
from matching.identity import id_number_problem, normalise_id_number
from tests.matching.feedfiles import HEADER, valid_id, write_csv


def row(serial=1, name="张小明", phone="13812345678", address="", lon="113.15", lat="23.03", crs="WGS84",
        category="密切接触者", when="2026-11-20 10:00", id_number=None):
    return [str(serial), name, valid_id(serial) if id_number is None else id_number, phone, address, lon, lat, crs,
            category, when]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_encodings_title_row_and_trailing_empty_rows(tmp_path, encoding):
    path = write_csv(tmp_path / "feed.csv", [row(1), row(2, name="李四")], encoding=encoding)
    batch = read_feed(path)
    assert batch.rows_read == 2 and len(batch.accepted) == 2 and batch.rejections == []
    assert list(batch.accepted["name"]) == ["张小明", "李四"]
    assert list(batch.accepted["row"]) == [3, 4]  # title row 1, header row 2


def test_english_headers_full_width_and_stray_spaces(tmp_path):
    header = ["id_number", "Name ", " PHONE", "address", "lon", "lat", "category", "reported_at"]
    full_width = valid_id(7).translate(str.maketrans(string.digits, "０１２３４５６７８９"))
    rows = [[f" {full_width} ", " 王 五 ", "+86 139 0000 1111", " 桂城 桂一社区 ", "113.2", "23.1", "确诊",
             "2026/11/20"],
            [valid_id(8)[:6] + "\u3000" + valid_id(8)[6:], "赵\t六", "13900002222", "桂城", "113.2", "23.1", "确诊",
             "2026/11/20"]]  # an ideographic space (a space once NFKC has been applied) and a tab
    batch = read_feed(write_csv(tmp_path / "en.csv", rows, title=None, header=header))
    record = batch.accepted.iloc[0]
    assert record["id_number"] == valid_id(7) and record["name"] == "王五" and record["phone"] == "13900001111"
    assert record["address"] == "桂城桂一社区" and record["reported_at"].isoformat() == "2026-11-19T16:00:00+00:00"
    assert (batch.accepted.iloc[1]["id_number"], batch.accepted.iloc[1]["name"]) == (valid_id(8), "赵六")


def test_every_rejection_and_field_warning_reason_is_named_with_its_row(tmp_path):
    """A row without a usable identity is rejected; a malformed ID number, phone, point or time only costs that
    field (issue 21): the row is stored without it and a warning names the row, the field and the reason. A row
    whose ID number is malformed is stored when its phone (or name with birth date or address) can link it."""
    bad_check = valid_id(3)[:-1] + ("0" if valid_id(3)[-1] != "0" else "1")
    rows = [
        row(1),                                                     # row 3: fine
        row(2, id_number=bad_check, phone=""),                      # row 4: nothing else to link him by
        row(3, id_number="440605" + "19850230" + "0011", phone=""),  # row 5: 30 February
        row(4, phone="12345"),                                      # row 6
        row(5, lon="东经113度"),                                     # row 7
        row(6, lon="10.0", lat="10.0"),                             # row 8: the Atlantic is not plausible
        row(7, lat=""),                                             # row 9: one of two
        row(8, crs="火星2000"),                                      # row 10
        row(9, name=""),                                            # row 11: the ID number alone identifies him
        row(10, id_number="", phone=""),                            # row 12: a name and nothing else
        row(11, when="上周三"),                                      # row 13
        row(12, phone="1381234567", when="昨天", id_number=bad_check),  # row 14: rejected, every reason listed
        row(13, id_number=bad_check),                               # row 15: stored, linked by his phone
    ]
    batch = read_feed(write_csv(tmp_path / "bad.csv", rows))
    reasons = {r.row: r.reason for r in batch.rejections}
    assert batch.rows_read == 13 and len(batch.accepted) == 9 and batch.balanced
    rejected = {4: "check digit wrong", 5: "date of birth impossible", 12: "no usable identity"}
    for line, words in rejected.items():
        assert words in reasons[line], (line, reasons.get(line))
    assert set(reasons) == {*rejected, 14}
    assert reasons[14] == ("身份证校验位错误 / ID-card check digit wrong；手机号格式错误 / phone malformed；"
                           "登记时间无法解析 / reported_at unparseable")
    assert batch.field_warnings == [
        (6, "phone", "手机号格式错误 / phone malformed"),
        (7, "lon, lat", "坐标无法解析 / coordinates unparseable"),
        (8, "lon, lat", "坐标超出合理范围 / coordinates outside any plausible range"),
        (9, "lon, lat", "经纬度只有一个 / only one of longitude and latitude"),
        (10, "crs", "坐标系无法识别 / coordinate system unknown (WGS84, GCJ02, BD09, CGCS2000)"),
        (13, "reported_at", "登记时间无法解析 / reported_at unparseable"),
        (15, "id_number", "身份证校验位错误 / ID-card check digit wrong")]
    assert batch.rows_warned == 7
    stored = batch.accepted.set_index("row")
    assert list(stored.index) == [3, 6, 7, 8, 9, 10, 11, 13, 15]
    assert stored.loc[6, "phone"] == "" and stored.loc[3, "phone"] == "13812345678"  # the bad phone is left out
    for line in (7, 8, 9, 10):  # so is the bad point, and its coordinate system with it
        assert np.isnan(stored.loc[line, "lon"]) and np.isnan(stored.loc[line, "lat"]), line
        assert pd.isna(stored.loc[line, "crs"]), line
    assert stored.loc[3, "crs"] == "wgs84" and stored.loc[6, "lon"] == 113.15
    assert pd.isna(stored.loc[13, "reported_at"]) and not pd.isna(stored.loc[7, "reported_at"])
    assert stored.loc[11, "identified"] and stored.loc[11, "id_number"] == valid_id(9)
    assert not stored.loc[15, "identified"] and stored.loc[15, "id_number"] == ""  # the bad number keys nothing


def test_rows_without_an_id_number_are_stored_when_they_can_be_linked(tmp_path):
    """Phone only; name with date of birth; name with address: stored, unidentified. A name alone, or a name with
    an unreadable date of birth and no address, is not enough: rejected, or stored with the date's warning when
    something else identifies the row."""
    header = ["姓名", "手机号码", "出生日期", "现住址", "人员类别"]
    rows = [["", "13800001111", "", "", "密接"],                  # row 3: phone only
            ["李雷", "", "1990年1月2日", "", "密接"],              # row 4: name + birth date
            ["韩梅梅", "", "", "桂城街道桂一社区10号", "密接"],       # row 5: name + address
            ["王五", "", "", "", "密接"],                          # row 6: a name alone
            ["赵六", "", "1990-13-45", "", "密接"],                # row 7: a name and an impossible date
            ["钱七", "13800002222", "明年", "", "密接"],            # row 8: phone, bad date: warned
            ["孙八", "", "19850303", "", "密接"]]                  # row 9: name + birth date, digits only
    batch = read_feed(write_csv(tmp_path / "noid.csv", rows, header=header))
    stored = batch.accepted.set_index("row")
    assert list(stored.index) == [3, 4, 5, 8, 9] and not stored["identified"].any()
    assert {r.row: r.reason for r in batch.rejections} == {
        6: "无可用身份：须有身份证号，或手机号，或姓名加出生日期或住址 / no usable identity: an ID number, a phone, "
           "or a name with a date of birth or an address is needed",
        7: "无可用身份：须有身份证号，或手机号，或姓名加出生日期或住址 / no usable identity: an ID number, a phone, "
           "or a name with a date of birth or an address is needed；"
           "出生日期无法解析或不合理 / date of birth unparseable or impossible"}
    assert batch.field_warnings == [
        (8, "birth_date", "出生日期无法解析或不合理 / date of birth unparseable or impossible")]
    assert stored.loc[4, "birth"] == "1990-01-02" and stored.loc[9, "birth"] == "1985-03-03"
    assert stored.loc[8, "birth"] == "" and stored.loc[3, "phone"] == "13800001111"


def test_a_row_with_several_malformed_fields_is_stored_with_a_warning_for_each(tmp_path):
    """An unparseable longitude in an unknown system, a short phone, an unreadable time: the row is stored with
    none of them, and its warnings come in the order a rejection lists its reasons."""
    batch = read_feed(write_csv(tmp_path / "two.csv", [row(1, lon="东经", crs="火星", phone="1", when="?")]))
    assert len(batch.accepted) == 1 and batch.rows_warned == 1 and not batch.rejections
    assert batch.field_warnings == [
        (3, "phone", "手机号格式错误 / phone malformed"),
        (3, "lon, lat", "坐标无法解析 / coordinates unparseable"),
        (3, "crs", "坐标系无法识别 / coordinate system unknown (WGS84, GCJ02, BD09, CGCS2000)"),
        (3, "reported_at", "登记时间无法解析 / reported_at unparseable")]


def test_gcj02_rows_are_converted_to_wgs84_within_half_a_metre(tmp_path):
    glon, glat = wgs84_to_gcj02(113.15, 23.03)
    batch = read_feed(write_csv(tmp_path / "g.csv", [row(1, lon=f"{float(glon):.8f}", lat=f"{float(glat):.8f}",
                                                         crs="GCJ02"), row(2, crs="")]), default_crs="gcj02")
    first, second = batch.accepted.iloc[0], batch.accepted.iloc[1]
    assert abs(first["lon"] - 113.15) * 102_400 < 0.5 and abs(first["lat"] - 23.03) * 110_570 < 0.5
    assert first["crs"] == "gcj02" and second["crs"] == "gcj02"  # the file's default applies to blank cells


def test_excel_with_a_title_row_dates_and_numbers(tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["大沥镇返岗人员名单（卫健局）"])
    sheet.append(HEADER)
    sheet.append([1, "陈大文", valid_id(21), 13812345678, "大沥镇盐步社区", 113.16, 23.08, "WGS84", "返岗人员",
                  datetime(2026, 11, 21, 9, 30)])
    sheet.append([2, "黄小美", valid_id(22), None, None, None, None, None, "确诊", None])
    sheet.append([None] * 10)
    path = tmp_path / "feed.xlsx"
    book.save(path)
    batch = read_feed(path)
    assert batch.rows_read == 2 and len(batch.accepted) == 2
    first = batch.accepted.iloc[0]
    assert first["phone"] == "13812345678" and first["reported_at"].isoformat() == "2026-11-21T01:30:00+00:00"
    assert list(batch.accepted["row"]) == [3, 4]


def test_a_large_excel_sheet_reports_how_far_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr("matching.feeds.READ_PROGRESS_ROWS", 3)
    book = Workbook()
    book.active.append(["名单"])
    book.active.append(HEADER)
    for serial in range(1, 11):
        book.active.append(row(serial))
    book.save(tmp_path / "feed.xlsx")
    heard = []
    body = read_body(tmp_path / "feed.xlsx", heard.append)
    assert len(body) == 10 and heard == [3 / 12, 6 / 12, 9 / 12, 12 / 12]  # a title and a header, then 10 rows
    streamed = Workbook(write_only=True)  # a writer that leaves out the sheet's <dimension>: rows are counted
    sheet = streamed.create_sheet()
    for cells in (["名单"], HEADER, *(row(serial) for serial in range(1, 11))):
        sheet.append(cells)
    streamed.save(tmp_path / "streamed.xlsx")
    heard.clear()
    assert len(read_body(tmp_path / "streamed.xlsx", heard.append)) == 10
    assert heard == [3 / 12, 6 / 12, 9 / 12, 12 / 12]


def test_files_that_cannot_be_used_store_nothing(tmp_path):
    with pytest.raises(ImportRejected, match="no header row"):
        read_feed(write_csv(tmp_path / "nohead.csv", [row(1)], header=["a", "b", "c"]))
    # an ID-number column alone is a header now (issue 21: the ID number identifies); a sequence alone is not
    id_only = read_feed(write_csv(tmp_path / "idonly.csv", [row(1)[1:3]], header=["姓名", "身份证号码"]))
    assert len(id_only.accepted) == 1
    with pytest.raises(ImportRejected, match="no header row"):
        read_feed(write_csv(tmp_path / "seq.csv", [["1", "x"]], header=["序号", "备注"]))
    (tmp_path / "feed.pdf").write_bytes(b"%PDF")
    with pytest.raises(ImportRejected, match="unsupported format"):
        read_feed(tmp_path / "feed.pdf")
    (tmp_path / "broken.xlsx").write_bytes(b"not a zip")
    with pytest.raises(ImportRejected, match="cannot read"):
        read_feed(tmp_path / "broken.xlsx")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet="0123456789Xx１２３ ", min_size=0, max_size=20))
def test_column_checks_agree_with_the_single_value_rules(tmp_path_factory, raw):
    """Without anything else to link him by, a row stands or falls with its ID number; with a phone, it is always
    stored, identified exactly when the ID number is valid."""
    folder = tmp_path_factory.mktemp("id")
    alone = read_feed(write_csv(folder / "one.csv", [row(1, id_number=raw.replace(",", ""), phone="")]))
    linked = read_feed(write_csv(folder / "two.csv", [row(1, id_number=raw.replace(",", ""))]))
    single = id_number_problem(raw)
    assert alone.rows_read == 1 and (len(alone.accepted) == 1) == (single is None)
    assert len(linked.accepted) == 1 and bool(linked.accepted["identified"].iloc[0]) == (single is None)
    if normalise_id_number(raw) == "":
        assert not len(alone.accepted)


cell = st.one_of(st.text(max_size=12), st.sampled_from(["", " ", "113.1", "23.0", "１", "X", "\t", '"', "\n"]))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(cell, min_size=0, max_size=12), min_size=0, max_size=15))
def test_any_rows_are_all_accounted_for(tmp_path_factory, rows):
    path = write_csv(tmp_path_factory.mktemp("any") / "any.csv", rows, trailing_empty=0)
    batch = read_feed(path)
    assert batch.rows_read == len(batch.accepted) + len(batch.rejections)
    assert {w.row for w in batch.field_warnings} <= set(batch.accepted["row"])  # only stored rows are warned
    nonempty = sum(1 for r in rows if any(str(c).strip() for c in r))
    assert batch.rows_read <= nonempty
    assert np.all(np.diff(batch.accepted["row"].to_numpy()) > 0)


def test_the_fast_reader_and_the_careful_reader_agree(tmp_path, monkeypatch):
    import matching.feeds as feeds

    rows = [row(1), row(2, phone="12345"), row(3, name=""), ["", "", "", "", "", "", "", "", "", ""],
            row(4, lon="", lat="", address="九江镇 沙头社区"), row(5, when="2026年11月3日")]
    path = write_csv(tmp_path / "plain.csv", rows)
    assert feeds._plain_body(path.read_text(encoding="utf-8"), 2, len(HEADER)) is not None
    fast = read_feed(path)
    monkeypatch.setattr(feeds, "_plain_body", lambda *args: None)
    careful = read_feed(path)
    assert fast.rows_read == careful.rows_read == 5
    assert [(r.row, r.reasons) for r in fast.rejections] == [(r.row, r.reasons) for r in careful.rejections]
    assert fast.field_warnings == careful.field_warnings == [(4, "phone", "手机号格式错误 / phone malformed")]
    assert fast.accepted.equals(careful.accepted)


def test_reported_at_spellings_and_excel_day_numbers():
    from matching.feeds import _reported_at

    bad, when = _reported_at(pa.array(["2026-11-03T08:30:00", "2026年11月3日", "2026/11/03 08:30", "46329.5", "46329",
                                       "", "明天", "2026"]))
    assert bad.tolist() == [False, False, False, False, False, False, True, False]
    utc = [None if t is pd.NaT else t.isoformat() for t in when]
    assert utc == ["2026-11-03T00:30:00+00:00", "2026-11-02T16:00:00+00:00", "2026-11-03T00:30:00+00:00",
                   "2026-11-03T04:00:00+00:00", "2026-11-02T16:00:00+00:00", None, None, "2025-12-31T16:00:00+00:00"]


def test_numbers_in_cpp_and_one_by_one_agree():
    from matching.feeds import _numbers

    clean, given = _numbers(pa.array(["113.15", "", "-0.5", "1e2"]))
    assert given.tolist() == [True, False, True, True]
    assert clean[[0, 2, 3]].tolist() == [113.15, -0.5, 100.0] and np.isnan(clean[1])
    mixed, given = _numbers(pa.array(["113.15", "", "113,15", "东经113"]))
    assert given.tolist() == [True, False, True, True]
    assert mixed[0] == 113.15 and np.isnan(mixed[1:]).all()


# -- travel columns (issue 22): where a person came from and the day he arrived --------------------------------

TRAVEL_HEADER = ["姓名", "手机号", "出发地", "抵达日期"]
ARRIVAL_WARNING = "抵达日期无法解析或不合理 / arrival date unparseable or impossible"


def test_every_travel_alias_names_its_field_and_no_other():
    from matching.feeds import ALIAS_INDEX, FIELD_ALIASES, _header_key

    keys = [_header_key(alias) for aliases in FIELD_ALIASES.values() for alias in aliases]
    assert len(keys) == len(set(keys))  # no heading could be two fields
    for name in ("origin", "arrival_date"):
        assert all(ALIAS_INDEX[_header_key(alias)] == name for alias in FIELD_ALIASES[name])
    assert {"出发地", "来自", "来源地", "途经地", "出发地点", "旅居地", "origin", "from", "travel_from"} == \
        set(FIELD_ALIASES["origin"])
    assert {"抵达日期", "返回日期", "到达日期", "抵达时间", "返回时间", "到达时间", "来南海日期", "返南日期",
            "arrival_date", "arrived_on", "return_date"} == set(FIELD_ALIASES["arrival_date"])


@pytest.mark.parametrize("header", [["姓名", "手机号", "途经地", "返南日期"], ["name", "Phone", "From", "Return_Date"],
                                    ["姓名", "手机号", "旅居地（省市）", "到达时间*"]])
def test_travel_columns_are_read_under_chinese_and_english_headings(tmp_path, header):
    batch = read_feed(write_csv(tmp_path / "t.csv", [["张三", "13800001111", "湖北省武汉市", "2020/1/19"]],
                                header=header), today=datetime(2020, 2, 1).date())
    record = batch.accepted.iloc[0]
    assert (record["origin"], record["arrived_on"]) == ("湖北省武汉市", pd.Timestamp("2020-01-19"))
    assert batch.field_warnings == []


def test_arrival_dates_in_the_spellings_people_write():
    from matching.feeds import _arrival_dates

    written = ["2020-01-19", "2020/1/19", "2020.1.19", "2020年1月19日", "20200119", "43849", "43849.75",
               "2020-01-19 08:30", "2020-01-19 00:00:00", "2020-01-19T23:59:59+08:00", "2020年1月19日 8时30分",
               " 2020 年 1 月 19 日 ", "", "2020-1-9"]
    days, bad = _arrival_dates(pa.array(written), datetime(2020, 2, 1).date())
    assert not bad.any()
    assert days.dtype == np.dtype("datetime64[ns]")
    assert [str(d)[:10] for d in days[:-2]] == ["2020-01-19"] * (len(written) - 2)
    assert np.isnat(days[-2]) and str(days[-1])[:10] == "2020-01-09"


def test_impossible_arrival_dates_are_warned_and_ignored():
    from matching.feeds import _arrival_dates

    written = ["2020-02-30", "2020-13-01", "1999-12-31", "2020-02-03", "2020-02-02", "明天", "2020-01", "today",
               "19/1/2020", "2020年1月19日上午", "1"]
    days, bad = _arrival_dates(pa.array(written), datetime(2020, 2, 1).date())
    assert bad.tolist() == [True, True, True, True, False, True, True, True, True, True, True]
    assert str(days[4])[:10] == "2020-02-02" and np.isnat(days[bad]).all()  # a day ahead: a list from abroad


def test_travel_fields_are_checked_like_the_other_optional_fields(tmp_path):
    """A bad arrival date or an overlong origin costs the row only that field, with a warning naming it; the
    origin is kept as written (its spaces made single, full-width characters made plain)."""
    rows = [["张三", "13800001111", "湖北省武汉市", "2020年1月19日"],          # row 3
            ["李四", "13800002222", "New  York", "2020-02-30"],              # row 4: no such day
            ["王五", "13800003333", "江" * 101, "2020-01-20 08:30"],         # row 5: no place is that long
            ["赵六", "13800004444", "", ""],                                 # row 6: not given
            ["孙八", "13800005555", "ＨＫ　香港 ", ""],                        # row 7: full-width
            ["钱七", "", "香港", "明天"]]                                       # row 8: no identity
    path = write_csv(tmp_path / "travel.csv", rows, header=TRAVEL_HEADER)
    batch = read_feed(path, today=datetime(2020, 2, 1).date())
    assert [(r.row, r.reasons[1:]) for r in batch.rejections] == [(8, [ARRIVAL_WARNING])]  # all at once
    assert batch.field_warnings == [(4, "arrival_date", ARRIVAL_WARNING),
                                    (5, "origin", "出发地超过 100 字 / origin longer than 100 characters")]
    stored = batch.accepted.set_index("row")
    assert list(stored.index) == [3, 4, 5, 6, 7]
    assert stored.loc[3, "origin"] == "湖北省武汉市" and stored.loc[4, "origin"] == "New York"
    assert stored.loc[7, "origin"] == "HK 香港"
    assert pd.isna(stored.loc[5, "origin"]) and pd.isna(stored.loc[6, "origin"])
    assert str(stored["arrived_on"].dtype).startswith("datetime64")
    assert stored.loc[3, "arrived_on"] == pd.Timestamp("2020-01-19")
    assert stored.loc[5, "arrived_on"] == pd.Timestamp("2020-01-20")  # the time is dropped, the day kept
    assert pd.isna(stored.loc[4, "arrived_on"]) and pd.isna(stored.loc[6, "arrived_on"])


def test_travel_fields_agree_in_the_fast_and_the_careful_reader_and_from_excel(tmp_path, monkeypatch):
    import matching.feeds as feeds

    rows = [["张三", "13800001111", "湖北 武汉", "2020-01-19"], ["李四", "13800002222", "", "2020/1/32"]]
    path = write_csv(tmp_path / "plain.csv", rows, header=TRAVEL_HEADER)
    fast = read_feed(path, today=datetime(2020, 2, 1).date())
    monkeypatch.setattr(feeds, "_plain_body", lambda *args: None)
    careful = read_feed(path, today=datetime(2020, 2, 1).date())
    assert fast.accepted.equals(careful.accepted) and fast.field_warnings == careful.field_warnings
    assert fast.field_warnings == [(4, "arrival_date", ARRIVAL_WARNING)]
    book = Workbook()  # Excel: a real date cell, a date-and-time cell, a day number, a text
    book.active.append(TRAVEL_HEADER)
    for phone, arrived in (("13800001111", datetime(2020, 1, 19)), ("13800002222", datetime(2020, 1, 19, 8, 30)),
                           ("13800003333", 43849), ("13800004444", "2020年1月19日")):
        book.active.append(["张三", phone, "武汉", arrived])
    book.save(tmp_path / "travel.xlsx")
    excel = read_feed(tmp_path / "travel.xlsx", today=datetime(2020, 2, 1).date())
    assert excel.field_warnings == [] and len(excel.accepted) == 4
    assert set(excel.accepted["arrived_on"]) == {pd.Timestamp("2020-01-19")}


def test_a_feed_without_travel_columns_has_none(tmp_path):
    batch = read_feed(write_csv(tmp_path / "plain.csv", [row(1), row(2)]))
    assert batch.accepted["origin"].isna().all() and batch.accepted["arrived_on"].isna().all()
    assert str(batch.accepted["arrived_on"].dtype).startswith("datetime64")


def test_dates_of_birth_read_as_before_by_the_shared_parser():
    from matching.feeds import _birth_dates

    written = ["1990-01-02", "1990/1/2", "1990.1.2", "1990年1月2日", "19900102", "32875", "1990-01-02 00:00:00",
               "1990-01", "1990-02-30", "2030-01-01", "1879-12-31", "", "明年"]
    text, bad = _birth_dates(pa.array(written), datetime(2026, 1, 1).date())
    assert text.tolist() == ["1990-01-02"] * 7 + ["1990-01-01", "", "", "", "", ""]
    assert bad.tolist() == [False] * 8 + [True, True, True, False, True]
