"""Who a record is about: ID-card numbers (GB 11643), phones and names — checked, normalised, masked.

Departments type these fields by hand: full-width digits (４４０６…), a lower-case
x, spaces in the middle, a ``+86`` before a phone. :func:`normalise_text`
folds all of that; the checks then say exactly what is wrong.

>>> id_number_problem("44060519900101123X")
'身份证校验位错误 / ID-card check digit wrong (expected 6)'
>>> mask_id("440605199001011237"), mask_phone("13812345678"), mask_name("张小明")
('440605********1237', '138****5678', '张*明')
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
LANDLINE = re.compile(r"^0[1-9][0-9]{1,2}-?[0-9]{7,8}$")
SPACES = re.compile(r"\s+")
NOT_GIVEN = "—"  # the masked form of a field a record does not have (a record without an ID number, or a name)


def normalise_text(value: object) -> str:
    """Fold full-width characters to ASCII (NFKC), drop every space, trim; None becomes ''."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFKC", str(value))
    return SPACES.sub("", text).strip()


def check_digit(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits."""
    return CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def normalise_id_number(value: object) -> str:
    """Upper-case, half-width, space-free; a 15-digit first-generation number is upgraded to 18."""
    text = normalise_text(value).upper()
    if re.fullmatch(r"[0-9]{15}", text):
        first17 = text[:6] + "19" + text[6:]
        return first17 + check_digit(first17)
    return text


def id_number_problem(value: object, today: date | None = None) -> str | None:
    """Why an ID number is not acceptable (format, birth date, check digit), or None."""
    text = normalise_id_number(value)
    if not text:
        return "身份证号为空 / ID number is empty"
    if not re.fullmatch(r"[0-9]{17}[0-9X]", text):
        return f"身份证号须为 18 位 / ID number must have 18 characters (got {len(text)})"
    try:
        born = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        return "出生日期不存在 / date of birth impossible"
    today = today or date.today()
    if born > today or born.year < 1880:
        return "出生日期不合理 / date of birth impossible"
    expected = check_digit(text[:17])
    if text[17] != expected:
        return f"身份证校验位错误 / ID-card check digit wrong (expected {expected})"
    return None


def normalise_phone(value: object) -> str:
    """Digits of a phone number without +86 / 0086 prefix; landlines keep their area-code hyphen."""
    text = normalise_text(value).replace("(", "").replace(")", "")
    for prefix in ("+86", "0086"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    if text.startswith("86") and len(text) == 13:
        text = text[2:]
    return text.replace("-", "") if MOBILE.match(text.replace("-", "")) else text


def phone_problem(value: object) -> str | None:
    """Why a (non-empty) phone number is malformed, or None when it is a mobile or landline number."""
    text = normalise_phone(value)
    if not text or MOBILE.match(text) or LANDLINE.match(text):
        return None
    return "手机号格式错误 / phone malformed"


PROVISIONAL = "~"  # the first character of a provisional person's key


def provisional_key(feed_file_id: int, row_number: int) -> str:
    """The person key of a record stored without an ID number until linkage links it (``~12-345``): its own, made
    of where it is stored, never of what it says; ``~`` sorts after every HMAC's hex digits."""
    return f"{PROVISIONAL}{feed_file_id}-{row_number}"


def mask_id(id_number: str) -> str:
    """440605********1234: region and last four only (:data:`NOT_GIVEN` for none)."""
    if not id_number:
        return NOT_GIVEN
    return id_number[:6] + "*" * (len(id_number) - 10) + id_number[-4:] if len(id_number) > 10 else "*" * len(id_number)


def mask_phone(phone: str) -> str:
    """138****5678."""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "*" * len(phone)


def mask_name(name: str) -> str:
    """张*明 for three characters or more, 张* for two (:data:`NOT_GIVEN` for none)."""
    if not name:
        return NOT_GIVEN
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def _stars(count: pa.Array) -> pa.Array:
    return pc.binary_repeat("*", pc.max_element_wise(count, 0))


def mask_ids(ids: pa.Array) -> pa.Array:
    """:func:`mask_id` of a whole column at once (an import masks a million records); :data:`NOT_GIVEN` where a
    record has none."""
    length = pc.utf8_length(ids)
    masked = pc.binary_join_element_wise(pc.utf8_slice_codeunits(ids, 0, 6), _stars(pc.subtract(length, 10)),
                                         pc.utf8_slice_codeunits(ids, -4), "")
    masked = pc.if_else(pc.greater(length, 10), masked, _stars(length))
    return pc.if_else(pc.equal(length, 0), NOT_GIVEN, masked)


def mask_phones(phones: pa.Array) -> pa.Array:
    """:func:`mask_phone` of a whole column at once; an empty phone becomes null."""
    length = pc.utf8_length(phones)
    masked = pc.binary_join_element_wise(pc.utf8_slice_codeunits(phones, 0, 3), "****",
                                         pc.utf8_slice_codeunits(phones, -4), "")
    masked = pc.if_else(pc.greater_equal(length, 8), masked, _stars(length))
    return pc.if_else(pc.equal(length, 0), pa.scalar(None, pa.string()), masked)


def mask_names(names: pa.Array) -> pa.Array:
    """:func:`mask_name` of a whole column at once."""
    length = pc.utf8_length(names)
    stars = pc.if_else(pc.equal(length, 2), "*", _stars(pc.subtract(length, 2)))
    tail = pc.if_else(pc.greater(length, 2), pc.utf8_slice_codeunits(names, -1), "")
    masked = pc.binary_join_element_wise(pc.utf8_slice_codeunits(names, 0, 1), stars, tail, "")
    return pc.if_else(pc.equal(length, 0), NOT_GIVEN, pc.if_else(pc.less_equal(length, 1), names, masked))
