"""Leads (线索): tip-offs from the public or a department, checked and merged.

A report needs what happened and a place: an address, a point, or both.
Reports about the same address, or within :data:`MERGE_DISTANCE_M` of each
other, inside :data:`MERGE_WINDOW`, are one lead: every report is kept, the
lead counts them. Two reports near each other whose addresses tell them apart
(another house number, or a community named without any: an address placed at
its community's centre) stay two leads (:func:`same_address`). A supervisor
triages a lead into a task.

The public is limited per device (a random long-lived token the form keeps in a
cookie) and per client address: :data:`REPORTS_PER_DEVICE` for a device, and a
much higher :data:`REPORTS_PER_SHARED_ADDRESS` for everybody behind one address
(a village behind one NAT); a report without a device token counts against
:data:`REPORTS_PER_CLIENT` of its address, as a script would.

>>> normalise_address(" 佛山市南海区 桂城街道  南海大道北 ８８號 ")
'桂城街道南海大道北88号'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from gis.crs import SourceCRS, parse_crs, points_to_wgs84
from gis.errors import ConfigurationError, InvalidRequest
from matching.identity import normalise_text
from tasks.lifecycle import TEXT_LIMIT, parse_location

MERGE_DISTANCE_M = 50.0
MERGE_WINDOW = timedelta(hours=24)
REPORTS_PER_CLIENT = 5  # per address, reports without a device token
REPORTS_PER_DEVICE = 5  # per device token
REPORTS_PER_SHARED_ADDRESS = 100  # per address, all its devices together: a village behind one NAT
RATE_WINDOW = timedelta(minutes=10)
PREFIXES = ("广东省", "广东", "佛山市", "佛山", "南海区", "南海")
ADDRESS_LIMIT = 200
CONTACT_LIMIT = 50


@dataclass(frozen=True)
class LeadReport:
    """One validated report (the contact still in clear: it is sealed before it is stored)."""

    description: str
    address: str | None
    point: tuple[float, float] | None  # WGS84
    contact: str | None


def normalise_address(address: str | None) -> str | None:
    """The comparable form of an address: full-width folded, spaces and province/city/district prefixes removed."""
    text = re.sub(r"\s+", "", normalise_text(address or "")).replace("號", "号")
    changed = True
    while changed:
        changed = False
        for prefix in PREFIXES:
            if text.startswith(prefix):
                text, changed = text[len(prefix):], True
    return text or None


def house_number(address: str | None) -> str | None:
    """The house number of a normalised address (the last "<digits>号", with a 之一 or -1 after it), if any.

    >>> house_number("桂城街道桂一一路149号"), house_number("黄岐社区12号之一"), house_number("黄岐社区")
    ('149号', '12号之一', None)
    """
    found = re.findall(r"\d+(?:-\d+)?号(?:之[一二三四五六七八九十\d]+)?", address or "")
    return found[-1] if found else None


def same_address(first: str | None, second: str | None) -> bool:
    """Whether two normalised addresses may be the same place when they lie within :data:`MERGE_DISTANCE_M`.

    An address missing on either side (a point-only report) does not tell them apart. Otherwise they are one
    place when equal, or when one is the other with more in front (a town or street prefix) and carries a house
    number: two house numbers in one community are two places, even placed at the community's centre.

    >>> same_address(None, "黄岐社区3号"), same_address("黄岐社区3号", "黄岐社区4号")
    (True, False)
    >>> same_address("海五路28号", "桂城街道海五路28号"), same_address("黄岐社区", "黄岐社区东门")
    (True, False)
    """
    if first is None or second is None or first == second:
        return True
    shorter, longer = sorted((first, second), key=len)
    return longer.endswith(shorter) and house_number(shorter) is not None


def _optional_text(payload: dict, name: str, limit: int, what: str) -> str | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{what}（{name}）必须是文字 / {name} must be text", name)
    value = value.strip()
    if len(value) > limit:
        raise InvalidRequest(f"{what}过长（最多 {limit} 字）/ {name} is longer than {limit} characters", name)
    return value or None


def parse_report(payload: dict) -> LeadReport:
    """Check a report as sent (JSON or a form); the point may be given in GCJ-02 or BD-09 with ``crs``."""
    if not isinstance(payload, dict):
        raise InvalidRequest("请求体必须是 JSON 对象 / the body must be a JSON object")
    description = _optional_text(payload, "description", TEXT_LIMIT, "情况描述")
    if not description:
        raise InvalidRequest("请描述发生了什么（description）/ description is required", "description")
    address = _optional_text(payload, "address", ADDRESS_LIMIT, "地址")
    contact = _optional_text(payload, "contact", CONTACT_LIMIT, "联系方式")
    point = parse_location(payload)
    if point is not None:
        try:
            crs = parse_crs(str(payload.get("crs") or "wgs84")) or SourceCRS()  # a blank crs: WGS84 as well
        except ConfigurationError as exc:
            raise InvalidRequest(str(exc), "crs") from None
        lon, lat = points_to_wgs84([point[0]], [point[1]], crs)
        point = (float(lon[0]), float(lat[0]))
    if address is None and point is None:
        raise InvalidRequest("请填写地址或在地图上选点 / give an address, a point, or both", "address")
    return LeadReport(description, address, point, contact)


def mask_contact(contact: str | None) -> str | None:
    """A contact as staff see it by default: 138****5678 for a phone, the first character then * otherwise."""
    if not contact:
        return None
    digits = re.sub(r"\D", "", contact)
    if len(digits) >= 7:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    return contact[0] + "*" * (len(contact) - 1)
