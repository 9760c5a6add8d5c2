"""The app: the JSON API, the plain pages, the map layers, the desk pages and the administration pages, on one
Flask server.

Every script and stylesheet is served by the app itself (Dash's and
dash-leaflet's bundles from their packages, ``assets/`` for ours); no CDN,
and no basemap tiles unless one is configured (see :mod:`layers.basemap`).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache

import dash
from flask import Flask, Response, request
from sqlalchemy import Engine

from api import register_api
from gis.db import reading
from gis.geojson import dumps
from grids import repository
from layers.basemap import basemap_crs, to_basemap_crs
from layers.grid_layer import GRID_LAYER_PBF_URL, GRID_LAYER_URL, grid_geobuf, grid_geojson
from layers.wall import (
    CHECKPOINTS_URL,
    DENSITY_URL,
    OUTLINE_URLS,
    checkpoints_geojson,
    density_geojson,
    outline_geojson,
)
from pages.admin_audit import create_audit
from pages.admin_boundaries import create_boundaries
from pages.admin_feeds import create_feeds
from pages.admin_rules import create_rules
from pages.admin_users import create_users
from pages.dispatch import create_dispatch
from pages.field import field as field_app
from pages.gate import gate as gate_page
from pages.observation import observation_page
from pages.people import create_people
from pages.plain import pages as plain_pages
from pages.reports import create_reports
from pages.review import create_review
from pages.shell import WALL
from pages.wall import create_wall
from tasks.overview import version_stamp
from web.compression import install as install_compression
from web.context import configure
from web.headers import install as install_headers
from web.health import install as install_health
from web.inputs import install as install_input_checks
from web.session import page_actor
from web.uploads import uploads


@lru_cache(maxsize=16)
def _layer_bytes(engine: Engine, name: str, version: str, crs: str) -> tuple[bytes, bytes]:
    """A layer as (raw, gzipped) GeoJSON (geobuf for ``grids.pbf``) in the basemap's datum, cached per version
    of what it is drawn from."""
    if name == "grids.pbf":
        body = grid_geobuf(json.loads(_layer_bytes(engine, "grids", version, crs)[0]))
        return body, gzip.compress(body, 6)
    with reading(engine) as conn:
        if name == "grids":
            data = grid_geojson(repository.load_grids(conn))
        elif name == "checkpoints":
            data = checkpoints_geojson(conn)
        elif name == "density":
            data = density_geojson(conn)
        else:
            data = outline_geojson(conn, name)
    body = dumps(to_basemap_crs(data, crs)).encode("utf-8")
    return body, gzip.compress(body, 6)


def _layer_response(raw: bytes, packed: bytes, mimetype: str = "application/geo+json") -> Response:
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        response = Response(packed, mimetype=mimetype)
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = Response(raw, mimetype=mimetype)
    response.headers["Vary"] = "Accept-Encoding"
    response.headers["Cache-Control"] = "no-cache"
    return response


def create_app(engine: Engine | None = None, clock: Callable[[], datetime] | None = None) -> dash.Dash:
    """Create the app on ``engine`` (default: the platform's database); returns the dispatch console's Dash app,
    whose ``server`` serves everything.

    ``clock`` replaces the wall clock (tests of SLA time use it).
    """
    if engine is None:
        from gis.db import get_engine

        engine = get_engine()
    server = Flask(__name__)
    configure(server, engine, clock)
    install_health(server)  # /healthz, /metrics, and every request counted (first, so it times the whole request)
    install_headers(server)
    install_compression(server)
    install_input_checks(server)
    register_api(server)
    server.register_blueprint(plain_pages)
    server.register_blueprint(uploads)
    server.register_blueprint(gate_page)
    server.register_blueprint(observation_page)

    def layer(name: str, density: bool = False) -> Response:
        with reading(engine) as conn:
            version = version_stamp(conn) if density else repository.grids_version(conn)
        mimetype = "application/x-protobuf" if name.endswith(".pbf") else "application/geo+json"
        return _layer_response(*_layer_bytes(engine, name, version, basemap_crs()), mimetype)

    server.add_url_rule(GRID_LAYER_URL, "grid_layer", lambda: layer("grids"))
    server.add_url_rule(GRID_LAYER_PBF_URL, "grid_layer_pbf", lambda: layer("grids.pbf"))
    server.add_url_rule(CHECKPOINTS_URL, "checkpoint_layer", lambda: layer("checkpoints"))
    for level, url in OUTLINE_URLS.items():
        server.add_url_rule(url, f"{level}_layer", lambda level=level: layer(level))

    @server.get(DENSITY_URL)
    def density_layer() -> Response:
        """Red and yellow density (no personal data, small counts suppressed): for the wall's roles only."""
        if page_actor(engine, roles=WALL.roles) is None:
            return Response(status=403)
        return layer("density", density=True)

    clock = clock or (lambda: datetime.now(UTC))
    create_wall(server, engine, clock)
    server.register_blueprint(field_app)  # the phone's field app: a plain page, its manifest and service worker
    create_reports(server, engine, clock)
    dispatch = create_dispatch(server, engine, clock)
    for create in (create_people, create_review, create_users, create_feeds, create_boundaries, create_rules,
                   create_audit):
        create(server, engine, clock)
    # Dash registers the scripts it may serve on a process's first request (every Dash app's before_request),
    # raising its flag before it is done: the other threads of that first burst got 500. One request here, in
    # every process, sets all four pages up before anybody else asks.
    server.test_client().get("/login")
    return dispatch
