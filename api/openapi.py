"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json."""

from __future__ import annotations

from flask import Blueprint

from api.http import json_response

openapi = Blueprint("openapi", __name__)


def document() -> dict:
    """The OpenAPI document (hand-written: it is the contract, so it is reviewed like code)."""
    return {"openapi": "3.1.0", "info": {"title": "南海区网格指挥平台 API", "version": "1"}, "paths": {}}


@openapi.get("/api/v1/openapi.json")
def openapi_json():
    return json_response(document())
