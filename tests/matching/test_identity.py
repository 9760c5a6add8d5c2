from datetime import date

import pyarrow as pa
import pytest

from matching.identity import (
    check_digit,
    id_number_problem,
    mask_id,
    mask_ids,
    mask_name,
    mask_names,
    mask_phone,
    mask_phones,
    normalise_id_number,
    normalise_phone,
    phone_problem,
)

VALID = "11010519491231002X"  # the GB 11643 standard's own example


def test_check_digit_of_the_standards_example():
    assert check_digit(VALID[:17]) == "X"
    assert id_number_problem(VALID) is None


@pytest.mark.parametrize("raw", ["１１０１０５１９４９１２３１００２Ｘ", " 110105 19491231 002x ",
                                 "11010519491231002x"])
def test_full_width_spaces_and_lower_case_are_folded(raw):
    assert normalise_id_number(raw) == VALID and id_number_problem(raw) is None


def test_first_generation_15_digit_numbers_are_upgraded():
    upgraded = normalise_id_number("110105491231002")
    assert upgraded == "11010519491231002X"


@pytest.mark.parametrize("raw,reason", [
    ("", "empty"), ("1101051949123100", "18 characters"), ("11010519490230002X", "date of birth impossible"),
    ("110105" + "20991231" + "0021", "date of birth impossible"), ("110105194912310021", "check digit wrong"),
])
def test_each_rejection_reason(raw, reason):
    problem = id_number_problem(raw, today=date(2026, 11, 25))
    assert problem and reason in problem


@pytest.mark.parametrize("raw,clean", [("138 1234 5678", "13812345678"), ("+86 138-1234-5678", "13812345678"),
                                       ("8613812345678", "13812345678"), ("0757-86281234", "0757-86281234")])
def test_phones_normalise(raw, clean):
    assert normalise_phone(raw) == clean and phone_problem(raw) is None


@pytest.mark.parametrize("bad", ["12345", "2381234567", "138123456789", "phone"])
def test_malformed_phones(bad):
    assert phone_problem(bad) == "手机号格式错误 / phone malformed"


def test_masks():
    assert mask_id("440605199001011236") == "440605********1236"
    assert mask_phone("13812345678") == "138****5678"
    names = ("张小明", "王五", "欧阳娜娜", "李")
    assert [mask_name(n) for n in names] == ["张*明", "王*", "欧**娜", "李"]


def test_column_masks_are_the_masks_of_each_value():
    values = ["", "1", "1234567", "12345678", "123456789012", "440605199001011236", "44060519900101123X",
              "13812345678", "010-12345678", "张", "张三", "张小明", "欧阳娜娜", "Ａｌｉ ce", "x" * 30]
    column = pa.array(values)
    assert mask_ids(column).to_pylist() == [mask_id(v) for v in values]
    assert mask_names(column).to_pylist() == [mask_name(v) for v in values]
    assert mask_phones(column).to_pylist() == [mask_phone(v) if v else None for v in values]
