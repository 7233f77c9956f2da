"""Creating the store on a fresh PostgreSQL cluster: the role, the database, the
TimescaleDB extension. The schema itself is Alembic's (``ingest.migrate``).

The statements are psql scripts (they use ``\\gexec``), run by ``deploy.stack`` as the
cluster's superuser over its Unix socket; this module only writes them. Both are
idempotent: running them on a bootstrapped cluster changes nothing but the password.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["BootstrapScripts", "bootstrap_scripts"]


class BootstrapScripts(NamedTuple):
    cluster: str   # run in the ``postgres`` database: role (with password) and database
    database: str  # run in the new database: extension and schema rights


def bootstrap_scripts(role: str, database: str, password: str) -> BootstrapScripts:
    """The two scripts; ``role`` and ``database`` are plain identifiers chosen by deploy."""
    quoted = password.replace("'", "''")
    return BootstrapScripts(
        cluster=(
            "SET password_encryption = 'scram-sha-256';\n"
            f"SELECT format('CREATE ROLE {role} LOGIN')"
            f" WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') \\gexec\n"
            f"ALTER ROLE {role} LOGIN PASSWORD '{quoted}';\n"
            f"SELECT format('CREATE DATABASE {database} OWNER {role}')"
            f" WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{database}') "
            "\\gexec\n"),
        database=(
            "CREATE EXTENSION IF NOT EXISTS timescaledb;\n"
            f"GRANT ALL ON SCHEMA public TO {role};\n"),
    )
