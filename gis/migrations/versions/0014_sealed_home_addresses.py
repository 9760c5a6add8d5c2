"""Home addresses sealed at rest: ``source_records.address`` (clear text) becomes ``address_sealed``, a Fernet
token under the platform's key like the record's other personal fields (``sealed``).

Locating opens the addresses it uses in memory, for its run (``matching.pipeline``), and writes nothing back in
clear; what it concludes is kept on the person (method, confidence, grid), the text is not. The records stored
before this revision are sealed here, a batch at a time, with the keys in use (environment, else the data
folder's secrets.json, as every command finds them). Their clear text would stay in the table's dead row
versions until the space is reused, so the table is then rewritten (``VACUUM FULL``, once the migration's
transaction has committed: :func:`gis.migrate.rewrite_after`) when there was any.

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op

from gis.migrate import rewrite_after

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BATCH = 50_000


def upgrade() -> None:
    op.add_column("source_records", sa.Column("address_sealed", sa.Text()))
    conn = op.get_bind()
    sealed = 0
    if conn.execute(sa.text("SELECT EXISTS (SELECT FROM source_records WHERE address IS NOT NULL)")).scalar():
        from matching.privacy import load_vault  # only a database with clear addresses needs the keys
        vault = load_vault()
        while rows := conn.execute(sa.text(
                "SELECT feed_file_id, row_number, address FROM source_records WHERE address IS NOT NULL "
                "LIMIT :n"), {"n": BATCH}).all():
            tokens = vault.seal_texts([r.address for r in rows])
            conn.execute(sa.text(
                "UPDATE source_records r SET address_sealed = v.token, address = NULL "
                "FROM unnest(CAST(:f AS int[]), CAST(:r AS int[]), CAST(:t AS text[])) AS v(f, r, token) "
                "WHERE r.feed_file_id = v.f AND r.row_number = v.r"),
                {"f": [r.feed_file_id for r in rows], "r": [r.row_number for r in rows], "t": tokens})
            sealed += len(rows)
    op.drop_column("source_records", "address")
    config = op.get_context().config
    if sealed and config is not None:  # None only for a context made without a Config (gis.migrate always has one)
        rewrite_after(config, "source_records")


def downgrade() -> None:
    op.add_column("source_records", sa.Column("address", sa.Text()))
    conn = op.get_bind()
    if conn.execute(sa.text("SELECT EXISTS (SELECT FROM source_records WHERE address_sealed IS NOT NULL)")).scalar():
        from matching.privacy import load_vault
        vault = load_vault()
        while rows := conn.execute(sa.text(
                "SELECT feed_file_id, row_number, address_sealed FROM source_records WHERE address_sealed IS NOT NULL "
                "LIMIT :n"), {"n": BATCH}).all():
            conn.execute(sa.text(
                "UPDATE source_records r SET address = v.address, address_sealed = NULL "
                "FROM unnest(CAST(:f AS int[]), CAST(:r AS int[]), CAST(:a AS text[])) AS v(f, r, address) "
                "WHERE r.feed_file_id = v.f AND r.row_number = v.r"),
                {"f": [r.feed_file_id for r in rows], "r": [r.row_number for r in rows],
                 "a": vault.open_texts([r.address_sealed for r in rows])})
    op.drop_column("source_records", "address_sealed")
