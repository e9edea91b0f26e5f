"""The migrated schema is exactly the ORM's tables, on every configured database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from farpoint.server import migrate
from farpoint.server.tables import metadata


def test_migrated_schema_matches_tables(db_url):
    engine = create_engine(db_url)
    try:
        migrate.upgrade(engine)
        migrate.upgrade(engine)  # idempotent
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
    finally:
        engine.dispose()
