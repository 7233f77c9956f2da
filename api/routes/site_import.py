"""Bulk import of a site's rooms and devices from CSV (admin only), all or nothing.

The file's format and checks are ``provisioning.csv_import``'s, the same as ``nattero site
import``. A refused file answers 422 with every bad line, in the request's language, under
``problems``; nothing was written. The new devices' passwords are in the answer only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import ConnDep, CurrentAdmin, SettingsDep, existing_site
from api.errors import FieldError, responses
from api.language import of_request
from api.models import SiteId
from api.routes.admin import _provisioning_failed
from core.i18n import localizer
from ingest.audit import audit
from provisioning import ProvisioningError
from provisioning.broker_accounts import BrokerAccountError
from provisioning.csv_import import ImportRefused, import_csv

router = APIRouter(tags=["admin"])

MAX_CSV_CHARS = 1_000_000


class SiteImportIn(BaseModel):
    csv: str = Field(max_length=MAX_CSV_CHARS, description=(
        "the file's text; first line the columns, e.g. "
        "rum;rumtype;betegnelse;sensor;sensortype;hjerteslag"))
    dry_run: bool = Field(False, description="check every line and report; write nothing")


class ImportedDevice(BaseModel):
    device: str
    username: str
    client_id: str
    password: str = Field(description="shown in this answer only; stored nowhere")
    broker: str = Field(description="where the device connects: mqtt(s)://host:port "
                        "(NATTERO_DEVICE_BROKER_URL)")
    topic: str = Field(description="where the device publishes its events")


class SiteImportOut(BaseModel):
    site: str
    dry_run: bool
    rooms_added: list[str]
    rooms_found: list[str] = Field(description="rooms the file names that exist already")
    devices_added: list[str]
    credentials: list[ImportedDevice] = Field(
        description="the new devices' broker accounts; empty for a dry run")


class ImportProblemOut(BaseModel):
    line: int = Field(description="the line of the file (0: the file as a whole)")
    message: str


class ImportRefusedBody(BaseModel):
    detail: str
    errors: list[FieldError] = Field(default_factory=list)
    problems: list[ImportProblemOut] = Field(
        default_factory=list, description="every bad line; nothing was imported")


_IMPORT_RESPONSES = {**responses(400, 401, 403, 404, 503),
                     422: {"model": ImportRefusedBody,
                           "description": "bad lines (every one listed); nothing imported"}}


@router.post("/sites/{site}/import", response_model=SiteImportOut,
             responses=_IMPORT_RESPONSES)
def import_site(site: SiteId, body: Annotated[SiteImportIn, Body()], request: Request,
                admin: CurrentAdmin, conn: ConnDep,
                settings: SettingsDep) -> SiteImportOut | JSONResponse:
    """Add the rooms and devices a CSV file lists to the site: every line is checked
    first, and either all are added or none (``dry_run``: checked only)."""
    existing_site(conn, site)
    try:
        imported = import_csv(settings, site, body.csv, dry_run=body.dry_run,
                              actor=admin.username)
    except ImportRefused as refused:
        t = localizer(of_request(request))
        problems = [ImportProblemOut(line=p.line, message=p.text(t)) for p in refused.problems]
        detail = t.ngettext("nothing was imported: {n} problem in the file",
                            "nothing was imported: {n} problems in the file", len(problems))
        return JSONResponse(
            ImportRefusedBody(detail=detail, problems=problems).model_dump(),
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            headers={"Content-Language": t.language})
    except (ProvisioningError, BrokerAccountError) as exc:
        raise _provisioning_failed(exc) from None
    if not imported.dry_run:
        audit(conn, admin.username, "site.import", site, site,
              {"rooms_added": imported.rooms_added, "devices_added": imported.devices_added})
    return SiteImportOut(
        site=site, dry_run=imported.dry_run, rooms_added=imported.rooms_added,
        rooms_found=imported.rooms_found, devices_added=imported.devices_added,
        credentials=[ImportedDevice(device=device, username=creds.username,
                                    client_id=creds.client_id, password=creds.password,
                                    broker=imported.broker, topic=imported.topic(device))
                     for device, creds in imported.credentials.items()])
