"""Reading the source records back for a match run: every value as stored, types the rules rely on."""

import math

import pandas as pd
from sqlalchemy import text

from matching.repository import RECORD_COLUMNS, load_records


def test_load_records_reads_every_value_back(seeded_engine):
    with seeded_engine.connect() as conn:
        conn.execute(text("DELETE FROM source_records"))
        assert load_records(conn).empty
        feed = conn.execute(text(
            "INSERT INTO feed_files (source, file_name, sha256, rows_read, rows_stored, rows_rejected, default_crs, "
            "imported_at) VALUES ('卫健局', 'a.csv', repeat('a', 64), 2, 2, 0, 'wgs84', "
            "'2026-11-20 10:00:00+08') RETURNING id")).scalar_one()
        conn.execute(text(
            "INSERT INTO source_records (feed_file_id, row_number, source, person_key, sealed, id_masked, name_masked, "
            "phone_masked, address_sealed, lon, lat, crs, category, reported_at) VALUES "
            "(:f, 3, '卫健局', repeat('b', 64), 'token', '440605********1234', '张*明', '138****5678', "
            "'gAAAAB-address-token==', 113.123456789012, 23.0000001, 'wgs84', '密切接触者 \"东平\",\n3 号', "
            "'2026-11-19 08:30:00.123456+08'), "
            "(:f, 4, '卫健局', repeat('c', 64), 'token', '440605********5678', '李*', NULL, NULL, NULL, NULL, NULL, "
            "NULL, NULL)"), {"f": feed})
        frame = load_records(conn)
        conn.rollback()
    assert tuple(frame.columns) == RECORD_COLUMNS
    first, second = frame.sort_values("row_number").to_dict("records")
    assert first["address_sealed"] == "gAAAAB-address-token==" and first["category"] == '密切接触者 "东平",\n3 号'
    assert (first["lon"], first["lat"]) == (113.123456789012, 23.0000001)
    assert first["reported_at"] == pd.Timestamp("2026-11-19 00:30:00.123456", tz="UTC")
    assert first["phone_masked"] == "138****5678" and first["feed_file_id"] == feed
    assert pd.isna(second["phone_masked"]) and second["address_sealed"] == "" and second["category"] == ""
    assert math.isnan(second["lon"]) and math.isnan(second["lat"])
    assert second["reported_at"] == pd.Timestamp("2026-11-20 02:00:00", tz="UTC")  # the file's import time
