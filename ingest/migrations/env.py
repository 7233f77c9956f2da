"""Alembic environment: the URL comes from Nattero's settings, never from a file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from ingest.models import Base

url = context.config.get_main_option("sqlalchemy.url")
if url is None:
    raise RuntimeError("sqlalchemy.url is not set; run migrations with `nattero migrate`")
engine = create_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
