"""The checkpoint page (``/checkpoint/``) for gate staff: filled in by issue 24."""

from __future__ import annotations

from flask import Blueprint

gate = Blueprint("gate", __name__, template_folder="templates")
