"""The schema Alembic's migrations build is the schema the code declares and queries.

The tables are declared twice on purpose: the migrations are history (never edited once shipped),
the declarations are what the adapters build their SQL from. This test keeps the two from drifting
apart: a column added to one and not the other, a type or nullability changed on one side, an
index or foreign key forgotten."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData

from adapters import db_schema, screening_store
from adapters.db import create_engine


def _declared() -> MetaData:
    """Every table the adapters declare (the screening tables keep a metadata of their own)."""
    combined = MetaData()
    for declared in (db_schema.metadata, screening_store.metadata):
        for table in declared.tables.values():
            table.to_metadata(combined)
    return combined


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, _declared()))


async def test_the_migrated_schema_is_the_declared_schema(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
    finally:
        await engine.dispose()
