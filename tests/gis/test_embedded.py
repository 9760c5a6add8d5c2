import shutil
from pathlib import Path

import psycopg
import pytest

from gis.db import database_url
from gis.embedded import EmbeddedServer, find_postgres_bindir
from gis.errors import DatabaseUnavailable


def test_a_second_cluster_starts_stops_and_keeps_its_port(tmp_path):
    server = EmbeddedServer(root=tmp_path / "data")
    try:
        assert server.start() is True
        assert server.start() is False  # idempotent
        status = server.status()
        assert status["running"] and status["initialised"]
        with psycopg.connect(server.dsn()) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            version = conn.execute("SELECT postgis_lib_version()").fetchone()[0]
            listen = conn.execute("SHOW listen_addresses").fetchone()[0]
        assert version.startswith("3") and listen == "127.0.0.1"
        port = status["port"]
        assert server.stop() is True and server.stop() is False
        assert not server.status()["running"]
        assert server.start() is True
        assert server.status()["port"] == port
        assert server.url().startswith("postgresql+psycopg://nanhai:") and f":{port}/nanhai" in server.url()
    finally:
        server.stop()
        shutil.rmtree(Path(server.cluster).parent, ignore_errors=True)


def test_missing_server_binaries_say_what_to_install(tmp_path):
    with pytest.raises(DatabaseUnavailable, match="apt-get install postgresql-15-postgis-3"):
        find_postgres_bindir(lib_root=tmp_path, share_root=tmp_path, use_path=False)


def test_postgres_without_postgis_is_named(tmp_path):
    (tmp_path / "lib" / "15" / "bin").mkdir(parents=True)
    (tmp_path / "lib" / "15" / "bin" / "initdb").touch()
    with pytest.raises(DatabaseUnavailable, match="without PostGIS"):
        find_postgres_bindir(lib_root=tmp_path / "lib", share_root=tmp_path / "share", use_path=False)


def test_database_url_environment_wins_and_starts_nothing(monkeypatch, seeded_url):
    monkeypatch.setenv("DATABASE_URL", seeded_url.replace("postgresql+psycopg://", "postgres://"))
    monkeypatch.setenv("NANHAI_DATA_DIR", "/nonexistent-on-purpose")  # would fail if anything local started
    assert database_url() == seeded_url
