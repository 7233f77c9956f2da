"""Single sign-on and TOTP (issue 17 §3).

- ``users.sso_issuer``/``sso_subject``: an account made by an OpenID Connect login is
  bound to the provider's issuer and its ``sub`` (never to the username, which a
  directory may rename or hand to someone else). It has no password (``password_hash``
  NULL): a local password never logs it in.
- ``users.totp_secret``/``totp_confirmed``/``totp_last_step``: a local admin's second
  factor; the last accepted time step, so a code is never accepted twice.
- ``oidc_logins``: a login on its way through the provider (state, nonce, PKCE verifier,
  the browser it started in), used once.
- ``sso_handoffs``: the one-time code the callback hands the login page, which the page
  exchanges for the bearer token (the token itself never travels in a URL).
- The token-version trigger also counts the removal or change of a confirmed second
  factor: an admin's reset of it ends the account's logins.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

TZ = sa.TIMESTAMP(timezone=True)

_TRIGGER = """
    CREATE OR REPLACE FUNCTION users_bump_token_version() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.password_hash IS DISTINCT FROM OLD.password_hash
           OR NEW.role IS DISTINCT FROM OLD.role
           OR NEW.sites IS DISTINCT FROM OLD.sites
           OR NEW.disabled IS DISTINCT FROM OLD.disabled
           OR NEW.username IS DISTINCT FROM OLD.username{extra} THEN
            NEW.token_version := OLD.token_version + 1;
        END IF;
        RETURN NEW;
    END $$"""


def upgrade() -> None:
    op.alter_column("users", "password_hash", nullable=True)
    op.add_column("users", sa.Column("sso_issuer", sa.Text))
    op.add_column("users", sa.Column("sso_subject", sa.Text))
    op.add_column("users", sa.Column("totp_secret", sa.Text))
    op.add_column("users", sa.Column("totp_confirmed", sa.Boolean, nullable=False,
                                     server_default="false"))
    op.add_column("users", sa.Column("totp_last_step", sa.BigInteger))
    op.create_check_constraint("user_sso_pair", "users",
                               "(sso_issuer IS NULL) = (sso_subject IS NULL)")
    op.create_check_constraint("user_can_log_in", "users",
                               "password_hash IS NOT NULL OR sso_subject IS NOT NULL")
    op.create_index("users_sso_identity", "users", ["sso_issuer", "sso_subject"], unique=True)
    # Only a confirmed second factor's removal or change ends logins (an admin's reset);
    # enrolling one does not end the login that enrols it.
    op.execute(_TRIGGER.format(extra="\n           OR (OLD.totp_confirmed AND (NEW.totp_confirmed "
                               "IS DISTINCT FROM OLD.totp_confirmed OR NEW.totp_secret IS "
                               "DISTINCT FROM OLD.totp_secret))"))
    op.create_table(
        "oidc_logins",
        sa.Column("state", sa.Text, primary_key=True),
        sa.Column("nonce", sa.Text, nullable=False),
        sa.Column("code_verifier", sa.Text, nullable=False),
        sa.Column("browser", sa.Text, nullable=False),
        sa.Column("next_path", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "sso_handoffs",
        sa.Column("code_hash", sa.Text, primary_key=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sso_handoffs")
    op.drop_table("oidc_logins")
    op.execute(_TRIGGER.format(extra=""))
    op.execute("DELETE FROM users WHERE password_hash IS NULL")
    op.drop_index("users_sso_identity", "users")
    op.drop_constraint("user_can_log_in", "users", type_="check")
    op.drop_constraint("user_sso_pair", "users", type_="check")
    for column in ("totp_last_step", "totp_confirmed", "totp_secret", "sso_subject",
                   "sso_issuer"):
        op.drop_column("users", column)
    op.alter_column("users", "password_hash", nullable=False)
