"""Database access for the area hierarchy (districts, towns, communities, grids, H3 cells,
checkpoints). Bulk writes go through COPY; geometries travel as hex EWKB.

Every function takes an open SQLAlchemy ``Connection`` and runs inside the
caller's transaction, so a command that stores several tables either stores
all of them or nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from gis.crs import area_m2
from gis.db import driver_connection
from grids.coverage import H3_RESOLUTION, grid_cells

# Advisory lock of whoever writes where persons are placed (a match run, a grid replacement): one at a time,
# so that a match run writes against the grids it placed people in.
PLACEMENT_LOCK = 440605_0003
GRID_REPLACED = "所在网格已被新导入的边界取代，待重新匹配 / the grid was replaced by an import: run gridctl match"


def ewkb(geom: BaseGeometry) -> str:
    """Hex EWKB with SRID 4326, the text form PostGIS reads in COPY."""
    return shapely.to_wkb(shapely.set_srid(geom, 4326), hex=True, include_srid=True)


def point_ewkt(lon: float, lat: float) -> str:
    """EWKT of a WGS84 point at full float precision (for COPY into geometry columns)."""
    return f"SRID=4326;POINT({float(lon)!r} {float(lat)!r})"


def copy_rows(conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    """COPY ``rows`` into ``table`` through the connection's psycopg driver; return the count."""
    raw = driver_connection(conn)
    count = 0
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def copy_frame(conn: Connection, table: str, frame: pd.DataFrame, chunk_rows: int = 100_000) -> int:
    """COPY a DataFrame (columns named as the table's) in binary form; missing values become NULL.

    The rows are assembled column by column in C++ (:mod:`gis.pgbinary`): no Python runs per row, as it
    does in pandas' ``to_csv`` (or a COPY row by row). Empty strings are sent
    as NULL. The frame goes in chunks of ``chunk_rows`` (see :func:`copy_frames`).
    """
    copy_frames(conn, table, list(frame.columns),
                (frame.iloc[start:start + chunk_rows] for start in range(0, len(frame), chunk_rows)))
    return len(frame)


def copy_frames(conn: Connection, table: str, columns: list[str], frames: Iterable[pd.DataFrame]) -> int:
    """COPY frames (these ``columns``) as they come, in one binary COPY (see :func:`copy_encoded`)."""
    from gis import pgbinary

    types = column_types(conn, table)
    rows = [0]

    def encoded() -> Iterator[bytes]:
        for frame in frames:
            yield pgbinary.encode_rows({c: frame[c] for c in columns}, types)
            rows[0] += len(frame)

    copy_encoded(conn, table, columns, encoded())
    return rows[0]


def copy_encoded(conn: Connection, table: str, columns: list[str], chunks: Iterable[bytes]) -> int:
    """One binary COPY of rows already encoded (:func:`gis.pgbinary.encode_rows`), chunk by chunk as they
    come: each is handed to a writer thread, so the server stores one while the next is made. Returns the
    number of rows the server stored."""
    from psycopg.copy import QueuedLibpqWriter

    from gis import pgbinary

    raw = driver_connection(conn)
    with raw.cursor() as cur:
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT binary)",
                      writer=QueuedLibpqWriter(cur)) as copy:
            copy.write(pgbinary.HEADER)
            for chunk in chunks:
                copy.write(chunk)
            copy.write(pgbinary.TRAILER)
        return cur.rowcount


def column_types(conn: Connection, table: str) -> dict[str, str]:
    """Each column of ``table`` (temporary ones too) and its type as ``format_type`` names it."""
    return dict(conn.execute(text(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 AND NOT attisdropped"), {"t": table}).all())


def district_info(conn: Connection, code: str) -> dict[str, Any] | None:
    """The stored district row (without geometry), or None."""
    row = conn.execute(text("SELECT code, name, source, seed, generator, loaded_at FROM districts WHERE code = :c"),
                       {"c": code}).mappings().first()
    return dict(row) if row else None


def district_outline(conn: Connection, code: str) -> BaseGeometry | None:
    """The stored outline of the district, or None when no district is loaded."""
    row = conn.execute(text("SELECT ST_AsBinary(geom) FROM districts WHERE code = :c"), {"c": code}).first()
    return shapely.from_wkb(bytes(row[0])) if row else None


HIERARCHY_TABLES = ("districts", "towns", "communities", "grids", "grid_cells", "checkpoints", "users",
                    "user_grids", "addresses")


def counts(conn: Connection, tables: tuple[str, ...] = HIERARCHY_TABLES) -> dict[str, int]:
    """Row counts of the hierarchy's tables (for status lines and tests)."""
    unknown = set(tables) - set(HIERARCHY_TABLES)
    if unknown:
        raise ValueError(f"not a hierarchy table: {sorted(unknown)}")
    return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}


def grids_version(conn: Connection) -> str:
    """A stamp that changes whenever any grid row is inserted, updated or deleted (one cheap query).

    The newest row version (xmin) catches geometry replaced in place by an import; the count
    catches deletions.
    """
    count, newest = conn.execute(text("SELECT count(*), max(xmin::text::bigint) FROM grids")).one()
    return f"{count}:{newest}"


def delete_district(conn: Connection, code: str) -> None:
    """Remove a district, its hierarchy (by cascade) and its synthetic staff."""
    conn.execute(text("DELETE FROM users WHERE synthetic"))
    conn.execute(text("DELETE FROM districts WHERE code = :c"), {"c": code})


def store_district(conn: Connection, code: str, name: str, outline: BaseGeometry, source: str,
                   seed: int | None = None, generator: str | None = None) -> None:
    conn.execute(text("INSERT INTO districts (code, name, geom, source, seed, generator) "
                      "VALUES (:code, :name, ST_Multi(ST_GeomFromEWKB(decode(:g, 'hex'))), :source, :seed, :gen)"),
                 {"code": code, "name": name, "g": ewkb(outline), "source": source, "seed": seed, "gen": generator})


def store_towns(conn: Connection, district_code: str, towns: gpd.GeoDataFrame, synthetic: bool) -> dict[str, int]:
    copy_rows(conn, "towns", ("code", "name", "district_code", "geom", "synthetic"),
              ((t.code, t.name, district_code, ewkb(t.geometry), synthetic) for t in towns.itertuples()))
    return dict(conn.execute(text("SELECT code, id FROM towns")).all())


def store_communities(conn: Connection, communities: gpd.GeoDataFrame, town_ids: dict[str, int],
                      synthetic: bool) -> dict[str, int]:
    copy_rows(conn, "communities",
              ("code", "name", "name_short", "unit_type", "town_id", "geom", "population", "synthetic"),
              ((c.code, c.name, c.name_short, c.unit_type, town_ids[c.town_code], ewkb(c.geometry),
                int(c.population), synthetic) for c in communities.itertuples()))
    return dict(conn.execute(text("SELECT code, id FROM communities")).all())


def community_ids(conn: Connection) -> dict[str, int]:
    """Map of community code to id."""
    return dict(conn.execute(text("SELECT code, id FROM communities")).all())


def store_grids(conn: Connection, grids: gpd.GeoDataFrame, community_id: dict[str, int], source: str,
                synthetic: bool) -> dict[str, int]:
    """Insert grids (code, name, community_code, population?, geometry); return code → id."""
    areas = area_m2(grids.geometry.values)
    population = grids["population"] if "population" in grids else pd.Series([None] * len(grids))
    copy_rows(conn, "grids", ("code", "name", "community_id", "geom", "area_m2", "population", "synthetic", "source"),
              ((g.code, g.name, community_id[g.community_code], ewkb(g.geometry), float(a),
                None if pd.isna(p) else int(p), synthetic, source)
               for g, a, p in zip(grids.itertuples(), areas, population, strict=True)))
    return dict(conn.execute(text("SELECT code, id FROM grids")).all())


def store_grid_cells(conn: Connection, grids: gpd.GeoDataFrame, grid_ids: dict[str, int],
                     resolution: int = H3_RESOLUTION) -> int:
    """Compute and store the H3 cells of ``grids`` (replacing any stored ones)."""
    cells = grid_cells(grids.geometry.values, resolution)
    ids = np.array([grid_ids[c] for c in grids["code"]])[cells["grid"].to_numpy()]
    conn.execute(text("DELETE FROM grid_cells"))
    return copy_rows(conn, "grid_cells", ("cell", "grid_id", "resolution", "interior"),
                     zip(cells["cell"].tolist(), ids.tolist(), [resolution] * len(cells),
                         cells["interior"].tolist(), strict=True))


def replace_cells_of(conn: Connection, grids: gpd.GeoDataFrame, grid_ids: dict[str, int],
                     resolution: int = H3_RESOLUTION) -> int:
    """Recompute the H3 cells of ``grids`` only (code, geometry), as :func:`store_grid_cells` does for all:
    their stored cells are replaced; every other grid's cells stay. Returns the number of cells stored."""
    ids = [grid_ids[c] for c in grids["code"]]
    conn.execute(text("DELETE FROM grid_cells WHERE grid_id = ANY(:ids)"), {"ids": ids})
    if not ids:
        return 0
    cells = grid_cells(grids.geometry.values, resolution)
    owners = np.array(ids)[cells["grid"].to_numpy()]
    return copy_rows(conn, "grid_cells", ("cell", "grid_id", "resolution", "interior"),
                     zip(cells["cell"].tolist(), owners.tolist(), [resolution] * len(cells),
                         cells["interior"].tolist(), strict=True))


def refresh_outlines(conn: Connection, community_ids: Sequence[int]) -> None:
    """Make these communities the union of their grids, and their towns the union of their communities (after
    their grids changed); the outlines become real (not synthetic), as :func:`replace_grids` makes them."""
    ids = list(community_ids)
    conn.execute(text(
        "UPDATE communities c SET geom = u.geom, synthetic = false FROM ("
        "  SELECT community_id, ST_Multi(ST_Union(geom)) AS geom FROM grids WHERE community_id = ANY(:ids) "
        "  GROUP BY community_id) u WHERE u.community_id = c.id"), {"ids": ids})
    conn.execute(text(
        "UPDATE towns t SET geom = u.geom FROM ("
        "  SELECT town_id, ST_Multi(ST_Union(geom)) AS geom FROM communities WHERE geom IS NOT NULL "
        "  AND town_id IN (SELECT town_id FROM communities WHERE id = ANY(:ids)) GROUP BY town_id) u "
        "WHERE u.town_id = t.id"), {"ids": ids})


def store_checkpoints(conn: Connection, checkpoints: gpd.GeoDataFrame, community_id: dict[str, int],
                      grid_ids: dict[str, int]) -> int:
    return copy_rows(conn, "checkpoints", ("code", "name", "community_id", "grid_id", "geom"),
                     ((c.code, c.name, community_id[c.community_code], grid_ids.get(c.grid_code), ewkb(c.geometry))
                      for c in checkpoints.itertuples()))


def load_grids(conn: Connection) -> gpd.GeoDataFrame:
    """All stored grids with their community and town codes, ordered by code."""
    rows = conn.execute(text(
        "SELECT g.id, g.code, g.name, c.code AS community_code, t.code AS town_code, g.population, "
        "       g.area_m2, ST_AsBinary(g.geom) AS wkb "
        "FROM grids g JOIN communities c ON c.id = g.community_id JOIN towns t ON t.id = c.town_id "
        "ORDER BY g.code")).mappings().all()
    frame = pd.DataFrame([{k: v for k, v in r.items() if k != "wkb"} for r in rows],
                         columns=["id", "code", "name", "community_code", "town_code", "population", "area_m2"])
    geoms: np.ndarray | list[BaseGeometry] = shapely.from_wkb([bytes(r["wkb"]) for r in rows]) if rows else []
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=4326), crs=4326)


def replace_grids(conn: Connection, grids: gpd.GeoDataFrame, source: str) -> dict[str, int]:
    """Replace the district's grids with ``grids`` and rebuild their H3 cells.

    Grids keep their id (and so their workers) where the code is unchanged;
    codes no longer present are deleted. Community and town polygons become
    the union of their grids, marked as not synthetic. Waits for a match run
    that is writing (:data:`PLACEMENT_LOCK`).
    """
    conn.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": PLACEMENT_LOCK})
    ids = community_ids(conn)
    stored: dict[str, int] = dict(conn.execute(text("SELECT code, id FROM grids")).all())
    incoming = set(grids["code"])
    removed = [code for code in stored if code not in incoming]
    # People placed in a grid that is going away stay accounted for: unplaced, with the reason,
    # until the next match places them in the new grids.
    gone = {"codes": removed, "why": GRID_REPLACED}
    conn.execute(text("UPDATE persons SET grid_id = NULL, unplaced_reason = :why, method = NULL "
                      "WHERE grid_id IN (SELECT id FROM grids WHERE code = ANY(:codes))"), gone)
    conn.execute(text("UPDATE flags SET grid_id = NULL, unplaced_reason = :why "
                      "WHERE grid_id IN (SELECT id FROM grids WHERE code = ANY(:codes))"), gone)
    conn.execute(text("DELETE FROM grids WHERE code = ANY(:codes)"), {"codes": removed})
    conn.execute(text("CREATE TEMP TABLE incoming_grids (LIKE grids INCLUDING DEFAULTS) ON COMMIT DROP"))
    conn.execute(text("ALTER TABLE incoming_grids ALTER COLUMN id DROP NOT NULL"))
    areas = area_m2(grids.geometry.values)
    copy_rows(conn, "incoming_grids", ("code", "name", "community_id", "geom", "area_m2", "synthetic", "source"),
              ((g.code, g.name, ids[g.code[:12]], ewkb(g.geometry), float(a), False, source)
               for g, a in zip(grids.itertuples(), areas, strict=True)))
    conn.execute(text(
        "INSERT INTO grids (code, name, community_id, geom, area_m2, population, synthetic, source) "
        "SELECT code, name, community_id, geom, area_m2, NULL, synthetic, source FROM incoming_grids "
        "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, community_id = EXCLUDED.community_id, "
        "  geom = EXCLUDED.geom, area_m2 = EXCLUDED.area_m2, population = NULL, "
        "  synthetic = false, source = EXCLUDED.source"))
    grid_ids: dict[str, int] = dict(conn.execute(text("SELECT code, id FROM grids")).all())
    cells = store_grid_cells(conn, grids, grid_ids)
    conn.execute(text(
        "UPDATE communities c SET geom = u.geom, synthetic = false FROM ("
        "  SELECT community_id, ST_Multi(ST_Union(geom)) AS geom FROM grids GROUP BY community_id) u "
        "WHERE u.community_id = c.id"))
    conn.execute(text("UPDATE communities SET geom = NULL WHERE id NOT IN (SELECT community_id FROM grids)"))
    conn.execute(text(
        "UPDATE towns t SET geom = u.geom, synthetic = false FROM ("
        "  SELECT town_id, ST_Multi(ST_Union(geom)) AS geom FROM communities WHERE geom IS NOT NULL "
        "  GROUP BY town_id) u WHERE u.town_id = t.id"))
    conn.execute(text(
        "UPDATE checkpoints k SET grid_id = (SELECT g.id FROM grids g ORDER BY g.geom <-> k.geom LIMIT 1)"))
    return {"grids": len(grids), "removed": len(removed), "cells": cells}
