"""The reference district as stored: counts, codes, tiling, H3 cells, staff, idempotence."""

import numpy as np
import shapely
from sqlalchemy import text

from gis.h3grid import cell_centres
from grids import nanhai, repository
from grids.seeding import seed_nanhai


def scalar(engine, sql, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def test_counts_match_the_real_hierarchy(seeded_engine):
    with seeded_engine.connect() as conn:
        counts = repository.counts(conn)
    assert counts["districts"] == 1 and counts["towns"] == 7
    assert counts["communities"] == 290 and counts["grids"] == 1042
    assert scalar(seeded_engine, "SELECT count(*) FROM communities c WHERE NOT EXISTS "
                                 "(SELECT 1 FROM grids g WHERE g.community_id = c.id)") == 0


def test_codes_nest_and_follow_the_nbs_codes(seeded_engine):
    bad = scalar(seeded_engine, """
        SELECT count(*) FROM grids g JOIN communities c ON c.id = g.community_id JOIN towns t ON t.id = c.town_id
        WHERE g.code !~ '^440605[0-9]{9}$' OR left(g.code, 12) <> c.code OR left(c.code, 9) <> t.code
           OR right(g.code, 3) = '000'""")
    assert bad == 0
    real = nanhai.load_communities()
    with seeded_engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT code, name FROM communities")).all())
    assert stored == dict(zip(real["code"], real["name"], strict=True))
    assert scalar(seeded_engine, "SELECT count(*) FROM towns WHERE name = '桂城街道' AND code = '440605011'") == 1


def test_grids_tile_the_real_outline(seeded_engine):
    assert scalar(seeded_engine, "SELECT bool_and(ST_IsValid(geom)) FROM grids") is True
    relative = scalar(seeded_engine, """
        SELECT abs(ST_Area(ST_Union(g.geom)::geography) - ST_Area(d.geom::geography)) / ST_Area(d.geom::geography)
        FROM grids g, districts d GROUP BY d.geom""")
    assert relative < 1e-4  # 0.01 %
    overlap = scalar(seeded_engine, """
        SELECT coalesce(sum(ST_Area(ST_Intersection(a.geom, b.geom)::geography)), 0)
        FROM grids a JOIN grids b ON a.id < b.id AND ST_Intersects(a.geom, b.geom)""")
    assert overlap < 1.0  # m²
    outline = nanhai.load_outline()
    with seeded_engine.connect() as conn:
        stored = repository.district_outline(conn, "440605")
    assert shapely.equals_exact(stored, outline, tolerance=1e-9)


def test_hierarchy_nests(seeded_engine):
    stray = scalar(seeded_engine, """
        SELECT count(*) FROM grids g JOIN communities c ON c.id = g.community_id
        WHERE NOT ST_Covers(ST_Buffer(c.geom, 1e-7), g.geom)""")
    assert stray == 0
    stray = scalar(seeded_engine, """
        SELECT count(*) FROM communities c JOIN towns t ON t.id = c.town_id
        WHERE NOT ST_Covers(ST_Buffer(t.geom, 1e-7), c.geom)""")
    assert stray == 0


def test_grids_are_small_in_urban_cores_and_large_in_the_countryside(seeded_engine):
    with seeded_engine.connect() as conn:
        median = dict(conn.execute(text(
            "SELECT t.name, percentile_cont(0.5) WITHIN GROUP (ORDER BY g.area_m2) FROM grids g "
            "JOIN communities c ON c.id = g.community_id JOIN towns t ON t.id = c.town_id GROUP BY t.name")).all())
    for urban in ("桂城街道", "大沥镇"):
        for rural in ("西樵镇", "九江镇", "丹灶镇"):
            assert median[urban] * 3 < median[rural], (urban, rural, median)


def test_everything_generated_is_marked_synthetic(seeded_engine):
    assert scalar(seeded_engine, "SELECT bool_and(synthetic) FROM grids") is True
    assert scalar(seeded_engine, "SELECT bool_and(synthetic) FROM communities") is True
    assert scalar(seeded_engine, "SELECT source FROM districts").startswith("synthetic")


def test_every_interior_cell_centre_lies_in_its_grid(seeded_engine):
    with seeded_engine.connect() as conn:
        cells = conn.execute(text("SELECT cell, grid_id FROM grid_cells WHERE interior")).all()
        assert conn.execute(text("SELECT count(DISTINCT resolution) FROM grid_cells")).scalar_one() == 1
        assert conn.execute(text(
            "SELECT count(*) FROM (SELECT cell FROM grid_cells WHERE interior GROUP BY cell "
            "HAVING count(*) > 1) x")).scalar_one() == 0
        assert conn.execute(text(
            "SELECT count(*) FROM grids g WHERE NOT EXISTS (SELECT 1 FROM grid_cells c WHERE c.grid_id = g.id)"
        )).scalar_one() == 0
    lon, lat = cell_centres([c for c, _ in cells])
    with seeded_engine.begin() as conn:
        conn.execute(text("CREATE TEMP TABLE centres (grid_id int, lon float8, lat float8)"))
        repository.copy_rows(conn, "centres", ("grid_id", "lon", "lat"),
                             zip([g for _, g in cells], lon.tolist(), lat.tolist(), strict=True))
        outside = conn.execute(text(
            "SELECT count(*) FROM centres c JOIN grids g ON g.id = c.grid_id "
            "WHERE NOT ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(c.lon, c.lat), 4326))")).scalar_one()
    assert len(cells) > 40_000 and outside == 0


def test_h3_cells_cover_the_district(seeded_engine):
    import h3

    rng = np.random.default_rng(5)
    outline = nanhai.load_outline()
    minx, miny, maxx, maxy = outline.bounds
    xy = np.column_stack([rng.uniform(minx, maxx, 4000), rng.uniform(miny, maxy, 4000)])
    xy = xy[shapely.contains_xy(outline, xy[:, 0], xy[:, 1])]
    wanted = {h3.str_to_int(h3.latlng_to_cell(y, x, 10)) for x, y in xy}
    with seeded_engine.connect() as conn:
        stored = set(conn.execute(text("SELECT cell FROM grid_cells WHERE cell = ANY(:c)"),
                                  {"c": list(wanted)}).scalars())
    assert wanted == stored


def test_staff_and_checkpoints(seeded_engine):
    with seeded_engine.connect() as conn:
        roles = dict(conn.execute(text("SELECT role, count(*) FROM users GROUP BY role")).all())
        per_grid = conn.execute(text(
            "SELECT min(n), avg(n) FROM (SELECT g.id, count(u.id) n FROM grids g "
            "JOIN user_grids ug ON ug.grid_id = g.id "
            "JOIN users u ON u.id = ug.user_id AND u.role = 'worker' GROUP BY g.id) x")).one()
        supervised = conn.execute(text(
            "SELECT count(DISTINCT ug.grid_id) FROM user_grids ug JOIN users u ON u.id = ug.user_id "
            "WHERE u.role = 'supervisor'")).scalar_one()
    assert roles["worker"] >= 8000 and roles["supervisor"] == 290
    assert per_grid[0] >= 7 and 7.5 <= float(per_grid[1]) <= 8.5
    assert supervised == 1042
    assert scalar(seeded_engine, "SELECT count(*) FROM communities c WHERE NOT EXISTS "
                                 "(SELECT 1 FROM checkpoints k WHERE k.community_id = c.id)") == 0
    off_edge = scalar(seeded_engine, "SELECT count(*) FROM checkpoints k JOIN communities c ON c.id = k.community_id "
                                     "WHERE NOT ST_DWithin(k.geom, ST_Boundary(c.geom), 1e-6)")
    assert off_edge == 0
    wrong_grid = scalar(seeded_engine, "SELECT count(*) FROM checkpoints k JOIN grids g ON g.id = k.grid_id "
                                       "WHERE g.community_id <> k.community_id OR NOT ST_DWithin(k.geom, g.geom, 1e-6)")
    assert wrong_grid == 0


def test_seeding_again_changes_nothing(seeded_engine):
    with seeded_engine.connect() as conn:
        before = repository.counts(conn)
        loaded_at = repository.district_info(conn, "440605")["loaded_at"]
    result = seed_nanhai(seeded_engine)
    assert result.changed is False and result.counts == before
    with seeded_engine.connect() as conn:
        assert repository.district_info(conn, "440605")["loaded_at"] == loaded_at


def test_same_seed_same_district(seeded_engine):
    rebuilt = nanhai.build(nanhai.DEFAULT_SEED)
    with seeded_engine.connect() as conn:
        stored = repository.load_grids(conn)
    rebuilt = rebuilt.grids.sort_values("code").reset_index(drop=True)
    assert list(stored["code"]) == list(rebuilt["code"])
    assert all(shapely.equals_exact(a, b, tolerance=0) for a, b in zip(stored.geometry, rebuilt.geometry, strict=True))


def test_another_seed_gives_another_district():
    a = nanhai.build(1)
    b = nanhai.build(2)
    assert len(a.grids) == len(b.grids) == 1042
    assert not all(shapely.equals_exact(x, y, 0) for x, y in zip(a.grids.geometry, b.grids.geometry, strict=True))


def test_a_district_seeded_before_the_address_table_gets_one(seeded_engine):
    with seeded_engine.connect() as conn:
        before = repository.counts(conn)["addresses"]
    with seeded_engine.begin() as conn:
        conn.execute(text("DELETE FROM addresses"))
    result = seed_nanhai(seeded_engine)
    assert result.changed and result.counts["addresses"] == before > 5000
    assert seed_nanhai(seeded_engine).changed is False
