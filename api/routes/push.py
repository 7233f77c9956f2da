"""Web Push subscriptions of the boards: the installation's VAPID public key, subscribe,
unsubscribe. The pushes themselves go out from ``api.push``."""

from __future__ import annotations

import base64
from typing import Annotated

from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field, field_validator

from api.deps import ConnDep, CurrentStaff, visible_site
from api.errors import Refusal, responses
from api.models import SITE_PATTERN
from ingest import push as store
from ingest.audit import audit

router = APIRouter(prefix="/push", tags=["push"])

# base64url, as browsers give the keys (subscription.toJSON()).
B64URL = r"^[A-Za-z0-9_-]+={0,2}$"


class PushKey(BaseModel):
    public_key: str = Field(description="VAPID public key (uncompressed P-256 point, "
                            "base64url): the board's applicationServerKey")


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SubscriptionKeys(BaseModel):
    p256dh: str = Field(min_length=80, max_length=100, pattern=B64URL,
                        description="the browser's P-256 public key, uncompressed, base64url")
    auth: str = Field(min_length=16, max_length=32, pattern=B64URL,
                      description="the 16-byte authentication secret, base64url")

    @field_validator("p256dh")
    @classmethod
    def a_p256_point(cls, value: str) -> str:
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _b64url(value))
        except ValueError:
            raise ValueError("not a P-256 public key (65 bytes, uncompressed, base64url) as "
                             "a browser's PushSubscription gives it") from None
        return value

    @field_validator("auth")
    @classmethod
    def sixteen_bytes(cls, value: str) -> str:
        try:
            raw = _b64url(value)
        except ValueError:
            raw = b""
        if len(raw) != 16:
            raise ValueError("not a 16-byte secret in base64url, as a browser's "
                             "PushSubscription gives it")
        return value


class SubscriptionIn(BaseModel):
    """A browser's ``PushSubscription.toJSON()``; ``site``: only this site's pushes."""

    endpoint: str = Field(min_length=10, max_length=2000, pattern=r"^https?://")
    keys: SubscriptionKeys
    site: str | None = Field(None, pattern=SITE_PATTERN)


class SubscriptionOut(BaseModel):
    id: int


@router.get("/key", response_model=PushKey, responses=responses(401, 403, 503))
def push_key(user: CurrentStaff, conn: ConnDep) -> PushKey:
    """The installation's VAPID public key (made on first use, kept in the database)."""
    return PushKey(public_key=store.vapid_keys(conn).public_key)


@router.post("/subscriptions", response_model=SubscriptionOut,
             status_code=status.HTTP_201_CREATED,
             responses=responses(400, 401, 403, 404, 422, 503))
def subscribe(body: SubscriptionIn, user: CurrentStaff, conn: ConnDep) -> SubscriptionOut:
    """Send this browser the calls of the caller's sites (or of ``site`` alone)."""
    if body.site is not None:
        visible_site(user, body.site)
    with conn.transaction():
        sub_id = store.save_subscription(conn, user.username, body.endpoint, body.keys.p256dh,
                                         body.keys.auth, body.site)
        audit(conn, user.username, "push.subscribe", body.site, str(sub_id))
    return SubscriptionOut(id=sub_id)


@router.delete("/subscriptions", status_code=status.HTTP_204_NO_CONTENT,
               responses=responses(401, 403, 404, 422, 503))
def unsubscribe(endpoint: Annotated[str, Query(min_length=10, max_length=2000)],
                user: CurrentStaff, conn: ConnDep) -> None:
    """Stop pushes to this browser (only the caller's own subscription)."""
    with conn.transaction():
        if not store.forget_subscription(conn, endpoint=endpoint, username=user.username):
            raise Refusal(status.HTTP_404_NOT_FOUND,
                          "this browser has no push subscription of yours")
        audit(conn, user.username, "push.unsubscribe")
