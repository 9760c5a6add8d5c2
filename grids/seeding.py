"""Load the Nanhai reference district into the database: idempotent and deterministic.

Seeding twice with the same seed changes nothing; another seed (or ``force``)
replaces the reference district, its H3 cells, checkpoints and synthetic staff
in one transaction. A district whose grids were imported from real boundaries
is never overwritten without ``force``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from gis.errors import GridError
from grids import nanhai, repository
from grids.staff import reference_staff
from grids.staff_repository import store_staff
from matching.addresses import reference_address_book
from matching.repository import store_addresses


def _store_address_book(engine: Engine, seed: int, progress: Callable[[str], None]) -> None:
    progress("生成标准地址库 / storing the standard address table")
    communities = nanhai.build(seed).communities
    with engine.begin() as conn:
        store_addresses(conn, reference_address_book(communities, seed), repository.community_ids(conn))


@dataclass
class SeedResult:
    changed: bool
    message: str
    counts: dict[str, int]


def seed_nanhai(engine: Engine, seed: int = nanhai.DEFAULT_SEED, force: bool = False,
                progress: Callable[[str], None] = lambda _: None) -> SeedResult:
    """Generate and store the reference district unless the same one is already there."""
    with engine.connect() as conn:
        info = repository.district_info(conn, nanhai.DISTRICT_CODE)
    if info and not force:
        if info["generator"] == nanhai.GENERATOR and info["seed"] == seed:
            with engine.connect() as conn:
                counts = repository.counts(conn)
            if counts["addresses"] == 0:  # seeded before the address table existed (migration 0002)
                _store_address_book(engine, seed, progress)
                with engine.connect() as conn:
                    counts = repository.counts(conn)
                return SeedResult(True, "已补充标准地址库 / added the standard address table", counts)
            return SeedResult(False, f"参考区已是种子 {seed} 的版本，无需更改 / reference district already seeded "
                                     f"with seed {seed}; nothing changed", counts)
        if info["generator"] is None:
            raise GridError("数据库中的网格来自真实边界导入，未覆盖；如确需覆盖请加 --force / the stored grids were "
                            "imported from real boundaries; refusing to overwrite them without --force")
    progress("生成城镇、社区与 1042 个网格 / generating towns, communities and 1042 grids")
    district = nanhai.build(seed)
    users, duties = reference_staff(district.grids, district.communities, seed)
    with engine.begin() as conn:
        progress("写入数据库 / storing")
        repository.delete_district(conn, nanhai.DISTRICT_CODE)
        repository.store_district(conn, nanhai.DISTRICT_CODE, nanhai.DISTRICT_NAME, district.outline,
                                  nanhai.SOURCE, seed, nanhai.GENERATOR)
        town_ids = repository.store_towns(conn, nanhai.DISTRICT_CODE, district.towns, synthetic=True)
        community_ids = repository.store_communities(conn, district.communities, town_ids, synthetic=True)
        grid_ids = repository.store_grids(conn, district.grids, community_ids, nanhai.SOURCE, synthetic=True)
        progress("计算 H3 单元 / computing H3 cells")
        repository.store_grid_cells(conn, district.grids, grid_ids)
        repository.store_checkpoints(conn, district.checkpoints, community_ids, grid_ids)
        progress("生成网格员与网格长 / storing grid workers and supervisors")
        store_staff(conn, users, duties, community_ids, grid_ids)
        progress("生成标准地址库 / storing the standard address table")
        store_addresses(conn, reference_address_book(district.communities, seed), community_ids)
        counts = repository.counts(conn)
    # statistics now, not when autovacuum gets round to it: with none, the planner takes the 8,000 staff rows
    # for one, and dispatch (tasks.repository.pick_worker) ran its candidates once per worker (1.6 s a task)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")
    return SeedResult(True, f"参考区已生成（种子 {seed}）/ reference district seeded with seed {seed}", counts)
