"""Tokens that can die: a per-installation signing secret and a version per account.

- ``installation_secrets``: random secrets of this installation, created here (and on
  first use, if a row is missing), shared by every API process: tokens are signed with
  ``signing`` unless ``NATTERO_SECRET_KEY`` is configured. Never a constant.
- ``users.token_version``: carried in every token; a trigger raises it whenever the
  password, role, sites or disabled flag change, so the account's older tokens stop
  working at once. A re-added username gets a new ``users.id`` (never reused), which
  tokens also carry, so it inherits nothing.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "installation_secrets",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("length(value) >= 32", name="installation_secret_length"),
    )
    op.get_bind().execute(
        sa.text("INSERT INTO installation_secrets (name, value) VALUES ('signing', :value)"),
        {"value": secrets.token_urlsafe(48)})
    op.add_column("users", sa.Column("token_version", sa.BigInteger, nullable=False,
                                     server_default="1"))
    # In the database, not in the code that updates: no path (CLI, API, psql) can change
    # who an account is while its old tokens keep working.
    op.execute("""
        CREATE FUNCTION users_bump_token_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.password_hash IS DISTINCT FROM OLD.password_hash
               OR NEW.role IS DISTINCT FROM OLD.role
               OR NEW.sites IS DISTINCT FROM OLD.sites
               OR NEW.disabled IS DISTINCT FROM OLD.disabled
               OR NEW.username IS DISTINCT FROM OLD.username THEN
                NEW.token_version := OLD.token_version + 1;
            END IF;
            RETURN NEW;
        END $$""")
    op.execute("CREATE TRIGGER users_token_version BEFORE UPDATE ON users "
               "FOR EACH ROW EXECUTE FUNCTION users_bump_token_version()")


def downgrade() -> None:
    op.execute("DROP TRIGGER users_token_version ON users")
    op.execute("DROP FUNCTION users_bump_token_version()")
    op.drop_column("users", "token_version")
    op.drop_table("installation_secrets")
