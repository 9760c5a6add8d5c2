"""The bodies of the gate's and the e-passes' /api/v1 endpoints (issue 24), beside :mod:`api.models`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from api.models import Answer, Body, Count, Direction, GridCode, PersonKey, Scan, enum, one_of
from checkpoints.verdict import VERDICTS

Verdict = Annotated[str, one_of(VERDICTS), Field(json_schema_extra=enum(VERDICTS))]
PassToken = Annotated[str, Field(description="电子通行证令牌（二维码内容 NHP1.编号.随机串.签名，不含身份证号）/ the "
                                             "e-pass token read from its QR code (no ID number in it)",
                                 max_length=120)]


class GateScan(Body):
    """pass_token、pass_code、person_key 给一个 / one of pass_token, pass_code, person_key"""

    checkpoint: str = Field(description="卡口编号 / checkpoint code", max_length=64)
    pass_token: PassToken | None = None
    pass_code: str | None = Field(None, description="身份证号（手输），立即转为人员键，不保存 / an ID number typed "
                                                    "at the gate, turned into the person key at once, never stored",
                                  max_length=64)
    person_key: str | None = Field(None, description="人员键 / the person key (64 hex digits)", max_length=64)
    direction: Direction
    scanned_at: str | None = Field(None, description="扫码时间（离线排队后补发时为扫码当时），默认当前时间 / when "
                                                     "it was scanned (a scan queued offline keeps its time); "
                                                     "default: now", json_schema_extra={"format": "date-time"})


class GateVerdict(Scan):
    """扫码记录与通行判定 / the scan and the gate's verdict"""

    verdict: Verdict = Field(description="pass 允许通行（绿码或无风险记录）、temporary 临时通行（蓝、黄码）、refuse "
                                         "不予通行（红码）/ pass (green or no risk record), temporary (blue, yellow), "
                                         "refuse (red)")
    label: str = Field(description="判定文字（中文 / English）/ the verdict in words")
    name_masked: str | None = Field(description="脱敏姓名；无风险记录者为 null / masked name; null for a person "
                                                "with no risk record")


class GateCheckpoint(Answer):
    code: str
    name: str
    grid_code: GridCode | None


class GateCheckpoints(Answer):
    checkpoints: list[GateCheckpoint] = Field(description="可在此记录扫码的卡口 / where the user may record scans")


class EPass(Answer):
    id: Count
    person_key: PersonKey
    issued_at: datetime
    issued_by: str | None = Field(description="签发人用户名 / who issued it")
    revoked_at: datetime | None
    revoked_by: str | None
    reason: str | None = Field(description="吊销理由 / why it was revoked")


class IssuedPass(EPass):
    """新签发的通行证及其令牌 / the new pass and its token"""

    token: PassToken
    name_masked: str | None
    replaces: list[Count] = Field(description="因此吊销的旧通行证 / the passes it revoked")


class EPasses(Answer):
    passes: list[EPass]


class Revocation(Body):
    reason: str = Field(description="吊销理由（记入审计日志）/ why (audited)", min_length=2, max_length=500)


__all__ = ["EPass", "EPasses", "GateCheckpoints", "GateScan", "GateVerdict", "IssuedPass", "Revocation"]
