"""Database access for leads and their reports: rate limit, merge, list in scope, triage into a task."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, Row, text

from accounts.actor import COMMANDER, SUPERVISOR, Actor
from gis.errors import Conflict, InvalidRequest, NotFound, RateLimited
from leads.reports import (
    MERGE_DISTANCE_M,
    MERGE_WINDOW,
    RATE_WINDOW,
    REPORTS_PER_CLIENT,
    REPORTS_PER_DEVICE,
    REPORTS_PER_SHARED_ADDRESS,
    LeadReport,
    mask_contact,
    normalise_address,
    same_address,
)
from matching.addresses import AddressMatcher
from matching.privacy import Vault
from matching.repository import load_places
from tasks.repository import NewTask, create_task

LEAD_LOCK = 4_242_001  # serialises merging: two reports of the same place at once still make one lead
POINT = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)"
LEAD_COLUMNS = ("l.id, l.status, l.summary, l.address, ST_X(l.geom) AS lon, ST_Y(l.geom) AS lat, l.grid_id, "
                "g.code AS grid_code, g.name AS grid_name, l.report_count, l.first_reported_at, l.last_reported_at")
REASON_LIMIT = 1000
DISMISS = "lead.dismiss"  # the audit log's action for a dismissal; its reason is the log line's reason


@lru_cache(maxsize=2)
def _matcher(engine: Engine, version: str) -> AddressMatcher:
    with engine.connect() as conn:
        return AddressMatcher(*load_places(conn))


def address_matcher(conn: Connection) -> AddressMatcher:
    """The address matcher over the stored towns, communities and address table (rebuilt when they change)."""
    version = conn.execute(text("SELECT (SELECT count(*) FROM addresses) || ':' || (SELECT count(*) FROM grids)"))
    return _matcher(conn.engine, version.scalar_one())


def _place(conn: Connection, report: LeadReport) -> tuple[tuple[float, float] | None, int | None]:
    point = report.point
    if point is None and report.address:
        placement = address_matcher(conn).place(report.address)
        if placement.lon is not None and placement.lat is not None:  # placed (by address or community)
            point = (placement.lon, placement.lat)
    if point is None:
        return None, None
    grid = conn.execute(text(f"SELECT id FROM grids WHERE ST_Intersects(geom, {POINT}) ORDER BY code LIMIT 1"),
                        {"lon": point[0], "lat": point[1]}).scalar()
    if grid is None and report.point is not None:
        raise InvalidRequest("该位置不在本区范围内 / the point is outside the district", "location")
    return point, grid


TOO_MANY = "提交过于频繁，请稍后再试 / too many reports from this {who}; try again later"


def _check_limit(conn: Connection, client: str, device: str | None, now: datetime) -> None:
    """Refuse a public report over its device's limit, or over its address's (shared or not).

    Counted under transaction-scoped advisory locks, the device's first then the address's (always in that
    order: no deadlock), held until the report is stored: a burst cannot all be counted before any is stored."""
    if device is not None:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('nanhai.lead.device:' || :d))"), {"d": device})
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('nanhai.lead.client:' || :c))"), {"c": client})
    since = now - RATE_WINDOW
    row = conn.execute(text(
        "SELECT count(*) FILTER (WHERE client = :c AND device IS NULL) AS bare, "
        "count(*) FILTER (WHERE client = :c) AS shared, "
        "count(*) FILTER (WHERE device = :d) AS own "
        "FROM lead_reports WHERE received_at > :since AND channel = 'public' AND (client = :c OR device = :d)"),
        {"c": client, "d": device, "since": since}).one()
    retry = int(RATE_WINDOW.total_seconds())
    if device is None and row.bare >= REPORTS_PER_CLIENT:
        raise RateLimited(TOO_MANY.format(who="client"), retry_after=retry)
    if device is not None and row.own >= REPORTS_PER_DEVICE:
        raise RateLimited(TOO_MANY.format(who="device"), retry_after=retry)
    if row.shared >= REPORTS_PER_SHARED_ADDRESS:
        raise RateLimited(TOO_MANY.format(who="network address"), retry_after=retry)


def _same_place(conn: Connection, norm: str | None, point: tuple[float, float] | None, now: datetime) -> int | None:
    """The open lead a report of ``norm`` at ``point`` merges into: the same normalised address, else the latest
    within :data:`MERGE_DISTANCE_M` whose address does not tell it apart (:func:`leads.reports.same_address`)."""
    params = {"norm": norm, "lon": point[0] if point else None, "lat": point[1] if point else None,
              "since": now - MERGE_WINDOW, "metres": MERGE_DISTANCE_M}
    near = (f"OR (l.geom IS NOT NULL AND CAST(:lon AS float8) IS NOT NULL AND "
            f"ST_DWithin(l.geom::geography, {POINT}::geography, :metres))")
    candidates = conn.execute(text(
        "SELECT l.id, l.address_norm, (l.address_norm = CAST(:norm AS text)) IS TRUE AS same FROM leads l "
        "WHERE l.status = 'open' AND l.last_reported_at >= :since "
        f"AND ((CAST(:norm AS text) IS NOT NULL AND l.address_norm = :norm) {near}) "
        "ORDER BY 3 DESC, l.last_reported_at DESC, l.id DESC LIMIT 50"), params).all()
    for row in candidates:
        if row.same or same_address(norm, row.address_norm):
            return int(row.id)
    return None


def submit_report(conn: Connection, report: LeadReport, client: str, channel: str, vault: Vault, now: datetime,
                  reported_by: int | None = None, device: str | None = None) -> dict[str, Any]:
    """Store a report, merged into an open lead of the same place when there is one; returns the lead.

    ``client`` is the keyed tag of the sender's address, ``device`` that of his device token when he sent one
    (the public form always does): a public report is refused over the device's limit, or over the address's
    (a much higher one when the report comes with a device, for a village behind one address)."""
    if channel == "public":
        _check_limit(conn, client, device, now)
    point, grid_id = _place(conn, report)
    address_norm = normalise_address(report.address)
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LEAD_LOCK})
    params = {"norm": address_norm, "lon": point[0] if point else None, "lat": point[1] if point else None}
    lead_id = _same_place(conn, address_norm, point, now)
    merged = lead_id is not None
    if lead_id is not None:
        conn.execute(text(
            "UPDATE leads SET report_count = report_count + 1, last_reported_at = greatest(last_reported_at, :now), "
            f"geom = coalesce(geom, CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL ELSE {POINT} END), "
            "grid_id = coalesce(grid_id, :grid), address = coalesce(address, :address), "
            "address_norm = coalesce(address_norm, :norm) WHERE id = :id"),
            {**params, "now": now, "grid": grid_id, "address": report.address, "id": lead_id})
    else:
        lead_id = conn.execute(text(
            "INSERT INTO leads (status, summary, address, address_norm, geom, grid_id, report_count, "
            "first_reported_at, last_reported_at) VALUES ('open', :summary, :address, :norm, "
            f"CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL ELSE {POINT} END, :grid, 1, :now, :now) RETURNING id"),
            {**params, "summary": report.description[:200], "address": report.address, "grid": grid_id,
             "now": now}).scalar_one()
    conn.execute(text(
        "INSERT INTO lead_reports (lead_id, received_at, description, address, geom, contact_sealed, contact_masked, "
        f"client, device, channel, reported_by) VALUES (:lead, :now, :description, :address, CASE WHEN "
        f"CAST(:lon AS float8) IS NULL THEN NULL ELSE {POINT} END, :sealed, :masked, :client, :device, :channel, :by)"),
        {"lead": lead_id, "now": now, "description": report.description, "address": report.address,
         "lon": params["lon"], "lat": params["lat"],
         "sealed": vault.seal(report.contact) if report.contact else None, "masked": mask_contact(report.contact),
         "client": client, "device": device, "channel": channel, "by": reported_by})
    return {**lead_summary(conn, lead_id), "merged": merged}


def lead_summary(conn: Connection, lead_id: int) -> dict[str, Any]:
    """A lead as the public may see it after reporting: its number, status and the count of reports."""
    row = conn.execute(text("SELECT id, status, report_count, grid_id IS NOT NULL AS placed FROM leads "
                            "WHERE id = :id"), {"id": lead_id}).one()
    return {"id": row.id, "status": row.status, "report_count": row.report_count, "placed": row.placed}


def _lead_row(conn: Connection, actor: Actor, lead_id: int, lock: bool = False) -> Row[Any]:
    actor.require_rows()
    row = conn.execute(text(
        f"SELECT {LEAD_COLUMNS} FROM leads l LEFT JOIN grids g ON g.id = l.grid_id WHERE l.id = :id"
        + (" FOR UPDATE OF l" if lock else "")),
        {"id": lead_id}).one_or_none()
    if row is None or not actor.sees_grid(row.grid_id):
        raise NotFound(f"线索 {lead_id} 不存在或不在您的范围内 / no lead {lead_id} in your scope")
    return row


def _lead_view(row: Row[Any], reports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    view = {"id": row.id, "status": row.status, "summary": row.summary, "address": row.address,
            "location": None if row.lon is None else {"lon": row.lon, "lat": row.lat}, "grid_code": row.grid_code,
            "grid_name": row.grid_name, "report_count": row.report_count,
            "first_reported_at": row.first_reported_at.isoformat(),
            "last_reported_at": row.last_reported_at.isoformat()}
    if reports is not None:
        view["reports"] = reports
    return view


def get_lead(conn: Connection, actor: Actor, lead_id: int) -> dict[str, Any]:
    """A lead in scope with every report merged into it (contacts masked), oldest first; a dismissed lead also
    says who dismissed it, when and why (``dismissal``, from the audit log)."""
    row = _lead_row(conn, actor, lead_id)
    reports = [{"id": r.id, "received_at": r.received_at.isoformat(), "description": r.description,
                "address": r.address, "contact": r.contact_masked, "channel": r.channel}
               for r in conn.execute(text("SELECT id, received_at, description, address, contact_masked, channel "
                                          "FROM lead_reports WHERE lead_id = :id ORDER BY received_at, id"),
                                     {"id": lead_id})]
    view = _lead_view(row, reports)
    if row.status == "dismissed":
        said = conn.execute(text(
            "SELECT a.at, a.username, u.display_name, a.reason FROM audit_log a LEFT JOIN users u ON u.id = a.user_id "
            "WHERE a.action = :action AND a.subject = :subject ORDER BY a.id DESC LIMIT 1"),
            {"action": DISMISS, "subject": f"lead:{lead_id}"}).one_or_none()
        view["dismissal"] = None if said is None else {
            "at": said.at.isoformat(), "by": said.display_name or said.username, "reason": said.reason}
    return view


def list_leads(conn: Connection, actor: Actor, status: str | None = "open", limit: int = 200,
               grid_code: str | None = None, offset: int = 0) -> list[dict[str, Any]]:
    """Leads in scope (of ``grid_code`` when given), newest report first; ``limit``/``offset`` page through them.
    Unplaced leads are seen district-wide only."""
    scope = actor.grid_scope()
    rows = conn.execute(text(
        f"SELECT {LEAD_COLUMNS} FROM leads l "
        "LEFT JOIN grids g ON g.id = l.grid_id WHERE (CAST(:status AS text) IS NULL OR l.status = :status) "
        "AND (CAST(:scope AS int[]) IS NULL OR l.grid_id = ANY(:scope)) "
        "AND (CAST(:grid AS text) IS NULL OR g.code = :grid) "
        "ORDER BY l.last_reported_at DESC, l.id DESC LIMIT :limit OFFSET :offset"),
        {"status": status, "scope": scope, "limit": limit, "grid": grid_code, "offset": offset})
    return [_lead_view(r) for r in rows]


def count_leads(conn: Connection, actor: Actor, status: str | None = "open") -> int:
    """How many leads :func:`list_leads` would list in all (for paging)."""
    return conn.execute(text(
        "SELECT count(*) FROM leads l WHERE (CAST(:status AS text) IS NULL OR l.status = :status) "
        "AND (CAST(:scope AS int[]) IS NULL OR l.grid_id = ANY(:scope))"),
        {"status": status, "scope": actor.grid_scope()}).scalar_one()


def triage_lead(conn: Connection, actor: Actor, lead_id: int, kind: str, now: datetime,
                grid_code: str | None = None, dispatch: bool = True,
                assignee_id: int | None = None) -> dict[str, Any]:
    """Turn an open lead into a task (lead verification by default) in its grid, or dismiss it (kind None)."""
    actor.require_role(SUPERVISOR, COMMANDER)
    row = _lead_row(conn, actor, lead_id, lock=True)
    if row.status != "open":
        raise Conflict(f"线索 {lead_id} 已处理（{row.status}）/ lead {lead_id} is already {row.status}",
                       "lead_not_open", _lead_view(row))
    grid_code = grid_code or row.grid_code
    if grid_code is None:
        raise InvalidRequest("线索未定位到网格，请指定 grid_code / the lead has no grid: give grid_code", "grid_code")
    task = create_task(conn, actor, NewTask(
        kind=kind, grid_code=grid_code, title=f"线索核查：{row.summary[:60]}", source="lead",
        detail=f"线索 #{lead_id}，共 {row.report_count} 次举报" + (f"；地址：{row.address}" if row.address else ""),
        lead_id=lead_id, point=(row.lon, row.lat) if row.lon is not None else None, dispatch=dispatch,
        assignee_id=assignee_id), now)
    conn.execute(text("UPDATE leads SET status = 'triaged' WHERE id = :id"), {"id": lead_id})
    return task


def dismiss_lead(conn: Connection, actor: Actor, lead_id: int, reason: str | None = None,
                 required: bool = False) -> dict[str, Any]:
    """Close an open lead without a task (a duplicate, a prank). Who did it and why go to the audit log (the
    lead's detail shows them); ``required``: refuse a dismissal without a reason (the console asks for one)."""
    actor.require_role(SUPERVISOR, COMMANDER)
    said = (reason or "").strip()
    if required and not said:
        raise InvalidRequest("请填写关闭线索的原因 / give a reason to dismiss the lead", "reason")
    if len(said) > REASON_LIMIT:
        raise InvalidRequest(f"原因过长（最多 {REASON_LIMIT} 字）/ the reason is longer than {REASON_LIMIT} "
                             "characters", "reason")
    row = _lead_row(conn, actor, lead_id, lock=True)
    if row.status != "open":
        raise Conflict(f"线索 {lead_id} 已处理 / lead {lead_id} is already {row.status}", "lead_not_open")
    conn.execute(text("UPDATE leads SET status = 'dismissed' WHERE id = :id"), {"id": lead_id})
    conn.execute(text("INSERT INTO audit_log (user_id, username, action, subject, reason) "
                      "VALUES (:uid, :u, :a, :s, :r)"),
                 {"uid": actor.user_id, "u": actor.username, "a": DISMISS, "s": f"lead:{lead_id}", "r": said or None})
    return {**_lead_view(row), "status": "dismissed"}
