"""A local admin's second factor: a TOTP code (RFC 6238, 6 digits, 30 s) from an
authenticator app, with pyotp.

Enrolment: a new secret is kept *pending* and shown once (as an ``otpauth://`` URI and as
text); the first login whose code matches it confirms it. From then on the admin's
password login also needs a code. A code is accepted in its own 30 s step or the one
before or after (the phone's clock), and never twice: the account keeps the last step it
accepted, and only a later one passes (``ingest.users.use_totp_step``, atomic).

Single sign-on accounts have no TOTP here: their second factor is the directory's.
"""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp
import segno

__all__ = ["ISSUER", "STEP_S", "matching_step", "new_secret", "provisioning_uri", "qr_code"]

ISSUER = "Nattero"
STEP_S = 30
#: steps either side of now a code may come from (the phone's clock may be a little off)
DRIFT_STEPS = 1


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (from a QR code or a tap)."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def qr_code(uri: str) -> str:
    """``uri`` as a QR code for the phone's camera: an SVG ``data:`` URL (the pages' policy
    allows ``data:`` images; no script, no request to anyone)."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=4, border=2))


def matching_step(secret: str, code: str, now: datetime, after: int | None) -> int | None:
    """The time step whose code ``code`` is, if it is within the drift of ``now`` and
    later than ``after`` (the last step accepted); None otherwise."""
    code = "".join(code.split())
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // STEP_S
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if after is not None and step <= after:
            continue
        if hmac.compare_digest(totp.at(step * STEP_S), code):
            return step
    return None
