"""Single sign-on's settings and the directory's groups → role and sites (no provider
needed: ``tests/test_sso.py`` runs the real login)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from api.oidc import Refused, SsoRefused, assignment, browser_hash, check_pending
from api.redaction import redact
from api.users import Role
from core.settings import Settings
from ingest.sso import PendingLogin

pytestmark = pytest.mark.pure

SSO = {"oidc_issuer": "https://login.example/tenant/v2.0", "oidc_client_id": "nattero",
       "oidc_client_secret": "s" * 40}


def sso_settings(**more: object) -> Settings:
    return Settings.model_validate({**SSO, "oidc_roles": {"admins": "admin",
                                                          "nat-sol": "staff",
                                                          "nat-mos": "staff",
                                                          "evaluering": "evaluator"},
                                    "oidc_sites": {"nat-sol": ["solsikken"],
                                                   "nat-mos": ["mosebo"]}, **more})


def test_strongest_role_and_all_sites_of_the_users_groups() -> None:
    settings = sso_settings()
    assert assignment(settings, ("evaluering", "admins")) == (Role.ADMIN, [])
    assert assignment(settings, ("nat-sol", "nat-mos", "evaluering", "andet")) == (
        Role.STAFF, ["mosebo", "solsikken"])


def test_groups_that_map_to_no_role_are_refused() -> None:
    with pytest.raises(SsoRefused) as refused:
        assignment(sso_settings(), ("kantine", "alle-ansatte"))
    assert refused.value.reason == Refused.NO_ROLE


def test_staff_without_a_site_is_refused() -> None:
    settings = sso_settings(oidc_roles={"nat": "staff"}, oidc_sites={})
    with pytest.raises(SsoRefused) as refused:
        assignment(settings, ("nat",))
    assert refused.value.reason == Refused.NO_SITES


def test_half_a_configuration_names_what_is_missing() -> None:
    with pytest.raises(ValidationError, match="NATTERO_OIDC_CLIENT_SECRET"):
        Settings.model_validate({"oidc_issuer": SSO["oidc_issuer"],
                                 "oidc_client_id": "nattero"})


def test_no_role_mapping_is_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match="NATTERO_OIDC_ROLES"):
        Settings.model_validate(SSO)


def test_production_wants_an_https_issuer() -> None:
    with pytest.raises(ValidationError, match="https"):
        sso_settings(mode="production", oidc_issuer="http://adfs.kommune.dk/adfs",
                     gateway_client_id="gw-" + "a" * 30)


def test_sites_of_a_group_without_a_role_are_refused() -> None:
    with pytest.raises(ValidationError, match="nat-ukendt"):
        sso_settings(oidc_sites={"nat-ukendt": ["solsikken"]})


def test_the_callback_must_come_from_the_browser_that_started_in_time() -> None:
    now = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    login = PendingLogin(state="s", nonce="n", code_verifier="v", browser=browser_hash("mine"),
                         next_path="/", created_at=now)
    assert check_pending(login, "mine", now + timedelta(minutes=1)) is login
    for pending, cookie, at in ((None, "mine", now), (login, None, now),
                                (login, "theirs", now),
                                (login, "mine", now + timedelta(minutes=11))):
        with pytest.raises(SsoRefused) as refused:
            check_pending(pending, cookie, at)
        assert refused.value.reason == Refused.STATE


def test_the_callbacks_code_never_reaches_a_log() -> None:
    line = ('127.0.0.1:5 - "GET /api/v1/auth/oidc/callback?state=abc&code=Xy-12_z&iss=http'
            '%3A%2F%2Fidp HTTP/1.1" 303')
    assert "Xy-12_z" not in redact(line)
    assert "state=abc" in redact(line) and "code=[redacted]" in redact(line)
