"""The /api/v1 endpoints of the checkpoint gate and its e-passes: filled in by issue 24."""

from __future__ import annotations

from api.routes import api  # noqa: F401  (the routes below register on the one /api/v1 blueprint)
