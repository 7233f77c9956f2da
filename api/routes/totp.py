"""A local admin's second factor (``api.totp``):

- ``POST /api/v1/auth/totp/enrol``: username and password (the login form's fields,
  counted by the same lockout) for a new secret, shown this once; the next login with a
  code from it confirms it. Refused while a confirmed one exists: another admin resets it.
- ``DELETE /api/v1/users/{username}/totp``: an admin resets another admin's second factor
  (a lost phone); that account's logins end, and it enrols again at its next login.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from api import totp
from api.deps import ConnDep, CurrentAdmin, NowDep, SecretDep
from api.errors import Refusal, responses
from api.routes.admin import Done, Username
from api.routes.auth import checked_password
from api.users import Role, normalise_username
from ingest.audit import audit
from ingest.users import clear_totp, set_totp_pending

router = APIRouter(tags=["auth"])


class Enrolment(BaseModel):
    """Shown once: the secret as text (typed into an app), as an ``otpauth://`` URI, and
    that URI as a QR code (an SVG ``data:`` URL)."""

    secret: str
    otpauth_uri: str
    qr_code: str


@router.post("/auth/totp/enrol", response_model=Enrolment,
             responses=responses(400, 401, 409, 422, 429, 503))
def enrol(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()],
          conn: ConnDep, secret: SecretDep, now: NowDep,
          client_key: Annotated[str | None, Form(max_length=200)] = None) -> Enrolment:
    """A new second-factor secret for a local admin account (username and password as
    form fields); confirmed by the next login with its code."""
    stored, _, address = checked_password(request, conn, secret, now, form.username,
                                          form.password, client_key)
    if stored.role != Role.ADMIN or stored.password_hash is None:
        raise Refusal(status.HTTP_422_UNPROCESSABLE_CONTENT, "only local admin accounts set "
                      "up a second factor here")
    if stored.totp_confirmed:
        raise Refusal(status.HTTP_409_CONFLICT, "this account has a second factor already; "
                      "another admin can reset it if the phone is lost")
    new = totp.new_secret()
    with conn.transaction():
        set_totp_pending(conn, stored.id, new)
        audit(conn, stored.username, "totp.enrol_started", target=stored.username,
              detail={"address": address})
    uri = totp.provisioning_uri(new, stored.username)
    return Enrolment(secret=new, otpauth_uri=uri, qr_code=totp.qr_code(uri))


@router.delete("/users/{username}/totp", response_model=Done,
               responses=responses(401, 403, 404, 422, 503))
def reset(username: Username, admin: CurrentAdmin, conn: ConnDep) -> Done:
    """Remove another admin's second factor; their logins end, and they set up a new one
    at their next login (when one is required)."""
    name = normalise_username(username)
    if name == admin.username:
        raise Refusal(status.HTTP_422_UNPROCESSABLE_CONTENT, "you cannot reset your own "
                      "second factor; ask another admin")
    with conn.transaction():
        had = clear_totp(conn, name)
        if had is None:
            raise Refusal(status.HTTP_404_NOT_FOUND, "user {username} does not exist",
                          username=name)
        audit(conn, admin.username, "user.totp_reset", None, name, {"had": had})
    return Done(message=f"second factor of {name} reset")
