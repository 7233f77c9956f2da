"""Secrets of this installation, kept in the database so every process shares them.

``signing_secret`` is what API tokens are signed with and room pseudonyms are keyed on
when ``NATTERO_SECRET_KEY`` is not configured: random, made by the migration (or here,
on first use), never a constant of the source code.
"""

from __future__ import annotations

import secrets

import psycopg

__all__ = ["SIGNING", "installation_secret", "signing_secret"]

SIGNING = "signing"


def installation_secret(conn: psycopg.Connection, name: str = SIGNING) -> str:
    """The named secret, created (random, 64 characters) if it does not exist yet. Two
    processes racing to create it agree: the first insert wins, both read it back."""
    with conn.transaction():
        conn.execute("INSERT INTO installation_secrets (name, value) VALUES (%s, %s) "
                     "ON CONFLICT (name) DO NOTHING", (name, secrets.token_urlsafe(48)))
        row = conn.execute("SELECT value FROM installation_secrets WHERE name = %s",
                           (name,)).fetchone()
    assert row is not None  # inserted just above, and never deleted
    value: str = row[0]
    return value


def signing_secret(conn: psycopg.Connection, configured: str | None) -> str:
    """The configured ``NATTERO_SECRET_KEY``, else the installation's own."""
    return configured if configured else installation_secret(conn)
