"""Bridges (admin only): the Zigbee2MQTT and ChirpStack servers' broker accounts, listed,
added and revoked as ``nattero bridge`` does. A bridge serves any site (its devices are
provisioned per site, by external id); the broker account is the bridge, so the list is
read from the broker. A new bridge's password is in the answer that creates it only.
Audited as ``bridge.add`` and ``bridge.revoke``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, Field

from api.deps import ConnDep, CurrentAdmin, SettingsDep
from api.errors import Refusal, responses
from api.models import SITE_PATTERN
from api.routes.admin import Done, _provisioning_failed
from core.events import DeviceSource
from ingest.audit import audit
from provisioning import DeviceCredentials, ProvisioningError
from provisioning.bridges import add_bridge, list_bridges, revoke_bridge
from provisioning.broker_accounts import BrokerAccountError

router = APIRouter(tags=["admin"])

BridgeName = Annotated[str, Path(pattern=SITE_PATTERN, description="the bridge's name")]


class BridgeOut(BaseModel):
    name: str
    username: str = Field(description="its broker account; also the only client id accepted")
    source: DeviceSource | None = Field(description="zigbee2mqtt or chirpstack, from the "
                                        "topics it may publish to")
    topics: list[str] = Field(description="the topic patterns it may publish to")


class NewBridge(BaseModel):
    name: str = Field(pattern=SITE_PATTERN, examples=["zigbee-solsikken"])
    source: DeviceSource
    application_id: str | None = Field(
        None, max_length=64, description="ChirpStack only: publish only under "
        "application/{id}/#")


@router.get("/bridges", response_model=list[BridgeOut], responses=responses(401, 403, 503))
def bridges(admin: CurrentAdmin, settings: SettingsDep) -> list[BridgeOut]:
    """The bridges the broker has, by name."""
    try:
        found = list_bridges(settings)
    except BrokerAccountError as exc:
        raise _provisioning_failed(exc) from None
    return [BridgeOut(name=b.name, username=b.username, source=b.source, topics=list(b.topics))
            for b in found]


@router.post("/bridges", status_code=201, response_model=DeviceCredentials,
             responses=responses(400, 401, 403, 409, 422, 503))
def new_bridge(body: NewBridge, admin: CurrentAdmin, conn: ConnDep,
               settings: SettingsDep) -> DeviceCredentials:
    """Create a bridge's broker account; its password is in this answer only."""
    if body.source is DeviceSource.NATIVE:
        raise Refusal(status.HTTP_422_UNPROCESSABLE_CONTENT,
                      "a bridge is zigbee2mqtt or chirpstack; a native device is added as a "
                      "device of its site")
    try:
        credentials = add_bridge(settings, body.name, body.source,
                                 application_id=body.application_id)
    except ProvisioningError as exc:
        if "exists already" in str(exc):
            raise Refusal(status.HTTP_409_CONFLICT, "bridge '{name}' exists already; revoke "
                          "it first", name=body.name) from None
        raise _provisioning_failed(exc) from None
    except BrokerAccountError as exc:
        raise _provisioning_failed(exc) from None
    audit(conn, admin.username, "bridge.add", None, body.name, {"source": body.source.value})
    return credentials


@router.delete("/bridges/{name}", response_model=Done,
               responses=responses(400, 401, 403, 404, 422, 503))
def delete_bridge(name: BridgeName, admin: CurrentAdmin, conn: ConnDep,
                  settings: SettingsDep) -> Done:
    """Revoke a bridge: the broker disconnects it at once and refuses it after. Its devices
    stay provisioned."""
    try:
        revoke_bridge(settings, name)
    except ProvisioningError:
        raise Refusal(status.HTTP_404_NOT_FOUND, "there is no bridge '{name}'",
                      name=name) from None
    except BrokerAccountError as exc:
        raise _provisioning_failed(exc) from None
    audit(conn, admin.username, "bridge.revoke", None, name)
    return Done(message=f"bridge {name} revoked")
