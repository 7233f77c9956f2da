"""Engine and session factories for the store (SQLAlchemy 2)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

# Session is named here so provisioning can type the sessions it is handed without
# importing SQLAlchemy (only the store does).
__all__ = ["Session", "engine_for", "session_scope"]


@lru_cache(maxsize=4)
def engine_for(sqlalchemy_url: str) -> Engine:
    # No pool: provisioning and the CLI connect rarely, and a pool's idle connections would
    # outlive the command (the API keeps its own pool).
    return create_engine(sqlalchemy_url, poolclass=NullPool)


@contextmanager
def session_scope(sqlalchemy_url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    factory = sessionmaker(engine_for(sqlalchemy_url), expire_on_commit=False)
    with factory() as session, session.begin():
        yield session
