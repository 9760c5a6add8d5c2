"""The Dash app: the district map (until the command pages exist, the 1042 grids on a map).

Every script and stylesheet is served by the app itself (Dash's and
dash-leaflet's bundles from their packages, ``assets/`` for ours); no CDN,
and no basemap tiles unless one is configured (see :mod:`layers.basemap`).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache

import dash
import dash_leaflet as dl
from dash import html
from flask import Response, request
from sqlalchemy import Engine

from api import register_api
from gis.geojson import dumps
from grids import repository
from grids.nanhai import DISTRICT_CODE
from layers.basemap import basemap_layers
from layers.grid_layer import GRID_LAYER_URL, grid_geojson, grid_layer
from layers.wall import (
    CHECKPOINTS_URL,
    DENSITY_URL,
    OUTLINE_URLS,
    checkpoints_geojson,
    density_geojson,
    outline_geojson,
)
from pages.access import page_actor
from pages.wall import ROLES as WALL_ROLES
from pages.wall import create_wall
from tasks.overview import version_stamp

TITLE = "南海区网格指挥平台"
CENTRE = [23.05, 113.05]


@lru_cache(maxsize=16)
def _layer_bytes(engine: Engine, name: str, version: str) -> tuple[bytes, bytes]:
    """A layer as (raw, gzipped) GeoJSON, cached per version of what it is drawn from."""
    with engine.connect() as conn:
        if name == "grids":
            data = grid_geojson(repository.load_grids(conn))
        elif name == "checkpoints":
            data = checkpoints_geojson(conn)
        elif name == "density":
            data = density_geojson(conn)
        else:
            data = outline_geojson(conn, name)
    body = dumps(data).encode("utf-8")
    return body, gzip.compress(body, 6)


def _geojson_response(raw: bytes, packed: bytes) -> Response:
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        response = Response(packed, mimetype="application/geo+json")
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = Response(raw, mimetype="application/geo+json")
    response.headers["Vary"] = "Accept-Encoding"
    response.headers["Cache-Control"] = "no-cache"
    return response


def _layout(engine: Engine) -> html.Div:
    with engine.connect() as conn:
        counts = repository.counts(conn, ("towns", "communities", "grids", "checkpoints"))
        info = repository.district_info(conn, DISTRICT_CODE)
    synthetic = info is not None and info["generator"] is not None
    summary = (f"{counts['towns']} 个镇街 · {counts['communities']} 个村居 · "
               f"{counts['grids']} 个网格 · {counts['checkpoints']} 个卡口")
    provenance = "网格边界为参考数据（合成）" if synthetic else "网格边界：导入数据"
    return html.Div(className="nh-shell", children=[
        html.Header(className="nh-header", children=[
            html.H1(TITLE),
            html.Span(id="grid-count", className="nh-counts", children=summary),
            html.Span(className="nh-note", children=provenance),
        ]),
        dl.Map(id="district-map", className="nh-map", center=CENTRE, zoom=11,
               children=[*basemap_layers(), grid_layer()]),
    ])


def create_app(engine: Engine | None = None, clock: Callable[[], datetime] | None = None) -> dash.Dash:
    """Create the Dash app, the JSON API and the plain pages on ``engine`` (default: the platform's database).

    ``clock`` replaces the wall clock (tests of SLA time use it).
    """
    if engine is None:
        from gis.db import get_engine

        engine = get_engine()
    app = dash.Dash(__name__, title=TITLE, serve_locally=True, update_title=None,
                    assets_folder="assets", suppress_callback_exceptions=True)
    app.layout = lambda: _layout(engine)
    register_api(app.server, engine, clock)

    def layer(name: str, density: bool = False):
        with engine.connect() as conn:
            version = version_stamp(conn) if density else repository.grids_version(conn)
        return _geojson_response(*_layer_bytes(engine, name, version))

    app.server.add_url_rule(GRID_LAYER_URL, "grid_layer", lambda: layer("grids"))
    app.server.add_url_rule(CHECKPOINTS_URL, "checkpoint_layer", lambda: layer("checkpoints"))
    for level, url in OUTLINE_URLS.items():
        app.server.add_url_rule(url, f"{level}_layer", lambda level=level: layer(level))

    @app.server.get(DENSITY_URL)
    def density_layer() -> Response:
        """Red and yellow density (no personal data, small counts suppressed): for the wall's roles only."""
        if page_actor(engine, roles=WALL_ROLES) is None:
            return Response(status=403)
        return layer("density", density=True)

    create_wall(app.server, engine, clock or (lambda: datetime.now(UTC)))
    return app
