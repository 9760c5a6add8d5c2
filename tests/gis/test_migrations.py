import pytest
from sqlalchemy import inspect, text

from gis import migrate
from matching.privacy import load_vault

TABLES = {"districts", "towns", "communities", "grids", "grid_cells", "checkpoints", "users", "user_grids",
          "feed_files", "source_records", "feed_rejections", "feed_field_warnings", "addresses", "persons",
          "risk_code_history", "risk_overrides", "flags", "task_requests", "user_sessions", "login_failures",
          "audit_log", "leads", "lead_reports", "tasks", "task_events", "task_photos", "idempotency_keys", "scans",
          "job_progress", "procrastinate_jobs", "procrastinate_workers"}


def test_upgrade_creates_the_public_tables_and_downgrade_removes_them(database_factory):
    engine = database_factory("nanhai_migrations", upgrade=False)
    assert migrate.current_revision(engine) is None

    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision() == "0023"
    assert TABLES <= set(inspect(engine).get_table_names())
    columns = {c["name"] for c in inspect(engine).get_columns("grids")}
    assert {"code", "geom", "community_id", "area_m2"} <= columns
    cell_columns = {c["name"]: str(c["type"]) for c in inspect(engine).get_columns("grid_cells")}
    assert cell_columns["cell"] == "BIGINT" and {"resolution", "grid_id", "interior"} <= set(cell_columns)
    with engine.connect() as conn:
        geometry = dict(conn.execute(text(
            "SELECT f_table_name, type || ':' || srid FROM geometry_columns WHERE f_geometry_column = 'geom'")).all())
        gist = set(conn.execute(text(
            "SELECT tablename FROM pg_indexes WHERE indexdef ILIKE '%USING gist (geom)%'")).scalars())
    assert geometry["grids"] == "MULTIPOLYGON:4326" and geometry["checkpoints"] == "POINT:4326"
    assert {"districts", "towns", "communities", "grids", "checkpoints"} <= gist

    migrate.downgrade(engine, "0002")
    assert migrate.current_revision(engine) == "0002" and "tasks" not in inspect(engine).get_table_names()
    migrate.downgrade(engine, "0001")
    assert migrate.current_revision(engine) == "0001" and "persons" not in inspect(engine).get_table_names()
    migrate.downgrade(engine, "base")
    assert migrate.current_revision(engine) is None
    assert not TABLES & set(inspect(engine).get_table_names())

    migrate.upgrade(engine)
    assert TABLES <= set(inspect(engine).get_table_names())


def test_the_database_refuses_malformed_codes_and_roles(database_factory):
    import pytest
    from sqlalchemy.exc import IntegrityError

    engine = database_factory("nanhai_constraints")
    with pytest.raises(IntegrityError, match="users_role_known"), engine.begin() as conn:
        conn.execute(text("INSERT INTO users (username, display_name, role) VALUES ('x', 'x', 'boss')"))
    with pytest.raises(IntegrityError, match="towns_code_9_digits"), engine.begin() as conn:
        conn.execute(text("INSERT INTO districts (code, name, geom, source) VALUES "
                          "('440605', 'n', ST_Multi(ST_MakeEnvelope(0, 0, 1, 1, 4326)), 's')"))
        conn.execute(text("INSERT INTO towns (code, name, district_code) VALUES ('44060501', 't', '440605')"))


def test_the_models_and_the_migrations_agree(database_factory):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from geoalchemy2 import alembic_helpers

    from gis.models import Base

    engine = database_factory("nanhai_drift")
    with engine.connect() as conn:
        # procrastinate's own tables (0008) are the job queue's, applied from its schema SQL, not our models
        def ours(thing, name, kind, reflected, compare_to):
            return not (kind == "table" and name.startswith("procrastinate_")) and \
                alembic_helpers.include_object(thing, name, kind, reflected, compare_to)

        context = MigrationContext.configure(conn, opts={"include_object": ours, "compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_serving_an_outdated_schema_is_refused_with_what_to_run(database_factory):
    from gis.errors import ConfigurationError

    engine = database_factory("nanhai_outdated", upgrade=False)
    migrate.upgrade(engine, "0003")
    with pytest.raises(ConfigurationError, match="gridctl db upgrade"):
        migrate.require_current(engine)
    migrate.upgrade(engine)
    migrate.require_current(engine)


def test_0007_points_each_stored_person_to_his_latest_record(database_factory):
    """An existing database keeps unmasking the right record when 0007 drops the person_key index."""
    engine = database_factory("nanhai_0007", upgrade=False)
    migrate.upgrade(engine, "0006")
    with engine.begin() as conn:
        feeds = conn.execute(text(
            "INSERT INTO feed_files (source, file_name, sha256, rows_read, rows_stored, rows_rejected, default_crs, "
            "imported_at) VALUES ('a', 'a.csv', 'a', 3, 3, 0, 'wgs84', '2026-11-01'), "
            "('b', 'b.csv', 'b', 1, 1, 0, 'wgs84', '2026-11-03') RETURNING id")).scalars().all()
        # k1: the newest report wins; k2: a row without a report time counts from its file's import
        conn.execute(text(
            "INSERT INTO source_records (feed_file_id, row_number, source, person_key, sealed, id_masked, "
            "name_masked, reported_at) VALUES (:a, 1, 'a', 'k1', 's-old', 'm', 'n', '2026-11-02'), "
            "(:a, 2, 'a', 'k1', 's-new', 'm', 'n', '2026-11-04'), (:a, 3, 'a', 'k2', 's-a', 'm', 'n', '2026-11-02'), "
            "(:b, 1, 'a', 'k2', 's-b', 'm', 'n', NULL)"), {"a": feeds[0], "b": feeds[1]})
        conn.execute(text("INSERT INTO persons (person_key, id_masked, name_masked, colour, reason, confidence, "
                          "unplaced_reason) VALUES ('k1', 'm', 'n', 'red', 'r', 0, 'x'), "
                          "('k2', 'm', 'n', 'red', 'r', 0, 'x'), ('k3', 'm', 'n', 'red', 'r', 0, 'x')"))
    migrate.upgrade(engine)
    with engine.connect() as conn:
        opened = dict(conn.execute(text(
            "SELECT p.person_key, r.sealed FROM persons p LEFT JOIN source_records r "
            "ON (r.feed_file_id, r.row_number) = (p.record_feed_file_id, p.record_row_number)")).all())
        indexes = set(conn.execute(text("SELECT indexname FROM pg_indexes "
                                        "WHERE tablename IN ('persons', 'source_records')")).scalars())
    assert opened == {"k1": "s-new", "k2": "s-b", "k3": None}
    assert not {"ix_source_records_person_key", "ix_persons_grid_colour"} & indexes
    migrate.downgrade(engine, "0006")
    with engine.connect() as conn:
        indexes = set(conn.execute(text("SELECT indexname FROM pg_indexes "
                                        "WHERE tablename IN ('persons', 'source_records')")).scalars())
    assert {"ix_source_records_person_key", "ix_persons_grid_colour"} <= indexes


def _table_bytes(conn, table: str) -> bytes:
    """The table's heap file(s) as stored on disk (after a checkpoint), to look for clear text."""
    conn.execute(text("CHECKPOINT"))
    path = conn.execute(text("SELECT pg_relation_filepath(:t)"), {"t": table}).scalar_one()
    size = conn.execute(text("SELECT pg_relation_size(:t)"), {"t": table}).scalar_one()
    return conn.execute(text("SELECT pg_read_binary_file(:p, 0, :n)"), {"p": path, "n": size}).scalar_one() \
        if size else b""


def test_0014_seals_the_stored_home_addresses_and_leaves_no_clear_copy(database_factory):
    """Records stored with clear addresses come out sealed (the same text opens), with no clear byte left in the
    table's file, and a downgrade gives the text back."""
    engine = database_factory("nanhai_0014", upgrade=False)
    migrate.upgrade(engine, "0013")
    addresses = ["桂城街道南桂东路12号3栋1402", "大沥镇 \"东平\",\n3 号"]
    with engine.begin() as conn:
        feed = conn.execute(text(
            "INSERT INTO feed_files (source, file_name, sha256, rows_read, rows_stored, rows_rejected, default_crs, "
            "imported_at) VALUES ('a', 'a.csv', 'a', 3, 3, 0, 'wgs84', '2026-11-01') RETURNING id")).scalar_one()
        conn.execute(text(
            "INSERT INTO source_records (feed_file_id, row_number, source, person_key, sealed, id_masked, "
            "name_masked, address) VALUES (:f, 1, 'a', 'k1', 's', 'm', 'n', :a1), (:f, 2, 'a', 'k2', 's', 'm', 'n', "
            ":a2), (:f, 3, 'a', 'k3', 's', 'm', 'n', NULL)"), {"f": feed, "a1": addresses[0], "a2": addresses[1]})
    with engine.connect() as conn:
        assert addresses[0].encode() in _table_bytes(conn, "source_records")  # the check can see clear text
    migrate.upgrade(engine, "0014")
    with engine.connect() as conn:
        columns = set(conn.execute(text("SELECT column_name FROM information_schema.columns "
                                        "WHERE table_name = 'source_records'")).scalars())
        tokens = conn.execute(text("SELECT address_sealed FROM source_records ORDER BY row_number")).scalars().all()
        stored = _table_bytes(conn, "source_records")
    assert "address" not in columns and "address_sealed" in columns
    assert tokens[2] is None and load_vault().open_texts(tokens[:2]) == addresses
    assert all(a.encode() not in stored and a.split("号")[0].encode() not in stored for a in addresses)
    migrate.downgrade(engine, "0013")
    with engine.connect() as conn:
        back = conn.execute(text("SELECT address FROM source_records ORDER BY row_number")).scalars().all()
    assert back == [*addresses, None]


def test_0016_counts_field_warnings_apart_from_the_balance_and_goes_back(database_factory):
    """An import made before 0016 counts no warned rows; the warned rows are at most the rows stored, the balance
    still holds, and a warning goes with its file; a downgrade removes both."""
    from sqlalchemy.exc import IntegrityError

    engine = database_factory("nanhai_0016", upgrade=False)
    migrate.upgrade(engine, "0015")
    with engine.begin() as conn:
        feed = conn.execute(text(
            "INSERT INTO feed_files (source, file_name, sha256, rows_read, rows_stored, rows_rejected, default_crs) "
            "VALUES ('a', 'a.csv', 'a', 3, 2, 1, 'wgs84') RETURNING id")).scalar_one()
    migrate.upgrade(engine, "0016")
    with engine.begin() as conn:
        assert conn.execute(text("SELECT rows_warned FROM feed_files")).scalar_one() == 0
        conn.execute(text("UPDATE feed_files SET rows_warned = 2"))
        conn.execute(text("INSERT INTO feed_field_warnings VALUES "
                          "(:f, 3, 'phone', '手机号格式错误 / phone malformed'), "
                          "(:f, 3, 'reported_at', '登记时间无法解析 / reported_at unparseable')"), {"f": feed})
    with pytest.raises(IntegrityError, match="feed_files_rows_warned_stored"), engine.begin() as conn:
        conn.execute(text("UPDATE feed_files SET rows_warned = 3"))
    with pytest.raises(IntegrityError, match="feed_files_rows_balance"), engine.begin() as conn:
        conn.execute(text("UPDATE feed_files SET rows_rejected = 2"))  # warned rows are stored: the balance stands
    with pytest.raises(IntegrityError, match="feed_field_warnings_pkey"), engine.begin() as conn:
        conn.execute(text("INSERT INTO feed_field_warnings VALUES (:f, 3, 'phone', 'again')"), {"f": feed})
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM feed_files"))
        assert conn.execute(text("SELECT count(*) FROM feed_field_warnings")).scalar_one() == 0
    migrate.downgrade(engine, "0015")
    assert "feed_field_warnings" not in inspect(engine).get_table_names()
    assert "rows_warned" not in {c["name"] for c in inspect(engine).get_columns("feed_files")}
    migrate.upgrade(engine, "0016")
    assert migrate.current_revision(engine) == "0016"


def _one_stored_record(conn) -> None:
    """A feed file and one record of it, as the revisions before 0017 stored them."""
    feed = conn.execute(text(
        "INSERT INTO feed_files (source, file_name, sha256, rows_read, rows_stored, rows_rejected, default_crs) "
        "VALUES ('a', 'a.csv', 'a', 1, 1, 0, 'wgs84') RETURNING id")).scalar_one()
    conn.execute(text("INSERT INTO source_records (feed_file_id, row_number, source, person_key, sealed, "
                      "id_masked, name_masked) VALUES (:f, 3, 'a', :k, 't', '440605********0010', '张*明')"),
                 {"f": feed, "k": "a" * 64})


def test_0017_keeps_every_stored_record_identified_and_goes_back(database_factory):
    """Records and persons stored before 0017 had valid ID numbers: identified, not provisional; the linkage and
    replay tables come and go with the revision."""
    engine = database_factory("nanhai_0017", upgrade=False)
    migrate.upgrade(engine, "0016")
    with engine.begin() as conn:
        _one_stored_record(conn)
    migrate.upgrade(engine, "0017")
    added = {"record_links", "linkage_pairs", "linkage_decisions", "linkage_models", "replays", "replay_persons",
             "match_runs"}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT identified FROM source_records")).scalar_one() is True
    assert added <= set(inspect(engine).get_table_names())
    migrate.downgrade(engine, "0016")
    assert not added & set(inspect(engine).get_table_names())
    assert "identified" not in {c["name"] for c in inspect(engine).get_columns("source_records")}
    assert "provisional" not in {c["name"] for c in inspect(engine).get_columns("persons")}


def test_0018_leaves_stored_records_without_travel_and_explanations_and_goes_back(database_factory):
    """Records stored before 0018 have no origin or arrival day, and codes and requests made before it no
    explanation; the rules' holds come and go with the revision."""
    engine = database_factory("nanhai_0018", upgrade=False)
    migrate.upgrade(engine, "0017")
    with engine.begin() as conn:
        _one_stored_record(conn)
        conn.execute(text("INSERT INTO persons (person_key, id_masked, name_masked, colour, reason, confidence, "
                          "unplaced_reason) VALUES (:k, 'm', 'n', 'red', 'r', 0, 'x')"), {"k": "a" * 64})
        conn.execute(text("INSERT INTO risk_code_history (person_key, colour, reason, changed_at) "
                          "VALUES (:k, 'red', 'r', now())"), {"k": "a" * 64})
        conn.execute(text("INSERT INTO task_requests (person_key, colour, reason, requested_at) "
                          "VALUES (:k, 'red', 'r', now())"), {"k": "a" * 64})
    migrate.upgrade(engine, "0018")
    with engine.connect() as conn:
        assert tuple(conn.execute(text("SELECT origin, arrived_on FROM source_records")).one()) == (None, None)
        for table in ("persons", "risk_code_history", "task_requests"):
            assert conn.execute(text(f"SELECT explanation FROM {table}")).scalar_one() is None, table
        assert tuple(conn.execute(text("SELECT kind, rule_id FROM task_requests")).one()) == (None, None)
    types = {c["name"]: str(c["type"]) for c in inspect(engine).get_columns("source_records")}
    assert (types["origin"], types["arrived_on"]) == ("TEXT", "DATE")
    assert "explanation" in {c["name"] for c in inspect(engine).get_columns("replay_persons")}
    assert "rule_holds" in inspect(engine).get_table_names()
    migrate.downgrade(engine, "0017")
    assert "rule_holds" not in inspect(engine).get_table_names()
    assert not {"origin", "arrived_on"} & {c["name"] for c in inspect(engine).get_columns("source_records")}
    for table in ("persons", "risk_code_history", "replay_persons", "task_requests"):
        assert "explanation" not in {c["name"] for c in inspect(engine).get_columns(table)}, table
    assert not {"kind", "rule_id"} & {c["name"] for c in inspect(engine).get_columns("task_requests")}
    with engine.connect() as conn:  # the records themselves stay
        assert conn.execute(text("SELECT count(*) FROM source_records")).scalar_one() == 1
