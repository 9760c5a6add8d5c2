"""Who is acting, and what he may see: the data scope every repository applies.

- a worker sees the tasks, persons and leads of his own grids;
- a supervisor those of his community's grids;
- a commander and an administrator everything — a commander given a town (``town_id``) only that
  town's grids;
- a reporter only aggregates (no row of a task, a person or a lead): of the whole district, or of his
  town's grids when he has one.

>>> worker = Actor(7, "w1", "worker", community_id=3, grid_ids=frozenset({11, 12}))
>>> worker.sees_grid(11), worker.sees_grid(13), Actor.system().sees_grid(13)
(True, False, True)
>>> town = Actor(8, "c1", "commander", grid_ids=frozenset({11}), town_id=2)
>>> town.sees_everything, town.grid_scope(), Actor(9, "c2", "commander").grid_scope() is None
(False, [11], True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gis.errors import PermissionDenied

WORKER, SUPERVISOR, COMMANDER, REPORTER, ADMIN = "worker", "supervisor", "commander", "reporter", "admin"
SYSTEM = "system"
ROLE_NAMES = {WORKER: "网格员", SUPERVISOR: "网格长", COMMANDER: "指挥中心", REPORTER: "统计员", ADMIN: "管理员",
              SYSTEM: "系统"}
EVERYWHERE = (COMMANDER, ADMIN, SYSTEM)


@dataclass(frozen=True)
class Actor:
    """A logged-in user (or the system itself) with the grids he answers for."""

    user_id: int | None
    username: str
    role: str
    community_id: int | None = None
    grid_ids: frozenset[int] = field(default_factory=frozenset)
    display_name: str = ""
    grid_codes: tuple[str, ...] = ()
    town_id: int | None = None  # a commander or reporter of one town: ``grid_ids`` are that town's grids

    @classmethod
    def system(cls) -> Actor:
        """The platform acting on its own (matcher intake, SLA escalation, checkpoint alerts)."""
        return cls(None, "system", SYSTEM, display_name="系统")

    @property
    def sees_everything(self) -> bool:
        """Whether every row of the district is in scope (a commander of one town: no)."""
        return self.role in EVERYWHERE and self.town_id is None

    def sees_grid(self, grid_id: int | None) -> bool:
        """Whether rows of ``grid_id`` are inside this actor's data scope."""
        if self.sees_everything:
            return True
        if self.role == REPORTER:
            return False
        return grid_id is not None and grid_id in self.grid_ids

    def sees_task(self, grid_id: int | None, assignee_id: int | None) -> bool:
        """Whether a task is in scope: its grid is, or (for a worker sent to a neighbouring grid) it is his."""
        return self.sees_grid(grid_id) or (self.role == WORKER and assignee_id == self.user_id)

    def require_rows(self) -> None:
        """Refuse row-level reads to a role that may only see aggregates."""
        if self.role == REPORTER:
            raise PermissionDenied("统计员只能查看汇总数据 / a reporter may read aggregates only")

    def require_role(self, *roles: str) -> None:
        """Refuse unless the actor has one of ``roles``."""
        if self.role not in roles:
            raise PermissionDenied(f"{ROLE_NAMES.get(self.role, self.role)}无权执行此操作 / the role {self.role} "
                                   f"may not do this")

    def grid_scope(self) -> list[int] | None:
        """The grid ids to filter rows by, or None for no filter (the whole district)."""
        self.require_rows()
        return None if self.sees_everything else sorted(self.grid_ids)

    def aggregate_scope(self) -> list[int] | None:
        """The grid ids whose aggregates (counts, indicators) the actor reads, or None for the whole district.

        A reporter reads every grid's aggregates, a reporter of one town his town's; the others what they see.
        """
        if self.sees_everything or (self.role == REPORTER and self.town_id is None):
            return None
        return sorted(self.grid_ids)

    def sees_aggregates_of(self, grid_id: int | None) -> bool:
        """Whether counts about ``grid_id`` are inside this actor's scope."""
        return self.aggregate_scope() is None or (grid_id is not None and grid_id in self.grid_ids)
