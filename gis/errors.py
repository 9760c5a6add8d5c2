"""The project's error hierarchy.

Every error a user can cause or meet derives from :class:`GridError`; the CLI
and the app map them to one readable message each (see :func:`user_message`).
"""

from __future__ import annotations


class GridError(Exception):
    """Base of every expected, user-facing error of the platform."""


class DatabaseUnavailable(GridError):
    """The database server cannot be reached or started; the message says what to fix."""


class ConfigurationError(GridError):
    """A setting or an argument is wrong (for example an unknown CRS)."""


class ImportRejected(GridError):
    """A file was refused as a whole; ``problems`` lists every reason, feature by feature."""

    def __init__(self, message: str, problems: list | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class NotFound(GridError):
    """A named object (grid, district, user) does not exist."""


class NoGrids(NotFound):
    """The database holds no grids yet: nobody can be placed, dispatched or benchmarked before they are seeded."""

    def __init__(self) -> None:
        super().__init__("数据库中没有网格，请先运行 gridctl seed nanhai / "
                         "no grids yet: run `gridctl seed nanhai` first")


def user_message(error: BaseException) -> str:
    """Return the one-paragraph message shown to an operator for ``error``."""
    if isinstance(error, GridError):
        return str(error)
    return f"内部错误 / internal error: {type(error).__name__}: {error}"


class InvalidRequest(GridError):
    """A request's field is missing or wrong; ``field`` names it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Unauthenticated(GridError):
    """No valid login (or it expired)."""


class PermissionDenied(GridError):
    """The user is logged in but his role or data scope does not allow this."""


class RateLimited(GridError):
    """Too many attempts from one client or for one account; ``retry_after`` is in seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Conflict(GridError):
    """The request cannot apply to the object as it is now; ``current`` describes it as it is."""

    def __init__(self, message: str, code: str, current: dict | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.current = current
