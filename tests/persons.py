"""Test data: one risk-coded person, already masked, flagged to a grid (the matcher's result, without a feed)."""

from __future__ import annotations

from sqlalchemy import Engine, text


def flag_person(engine: Engine, key: str, grid: str, colour: str = "red", name: str = "王*",
                id_masked: str = "440605********0000", phone: str | None = None) -> str:
    """Store a ``colour`` person with ``key`` in ``grid`` and flag him there (nothing if the key exists)."""
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO persons (person_key, id_masked, name_masked, phone_masked, colour, reason, confidence, "
            "grid_id) SELECT :key, :id, :name, :phone, :colour, '确诊 / confirmed', 1.0, id FROM grids "
            "WHERE code = :grid ON CONFLICT DO NOTHING"),
            {"key": key, "id": id_masked, "name": name, "phone": phone, "colour": colour, "grid": grid})
        conn.execute(text("INSERT INTO flags (person_key, colour, grid_id, flagged_at, updated_at) SELECT person_key, "
                          "colour, grid_id, now(), now() FROM persons WHERE person_key = :key ON CONFLICT DO NOTHING"),
                     {"key": key})
    return key
