"""A native device's setup: where it connects and as whom, as one JSON document for a file
and a QR code (segno), made when its password is made (added or renewed) and shown once.

The document holds the password: it is built in memory for the one answer that carries the
password and never stored or logged.
"""

from __future__ import annotations

import io
import json
from urllib.parse import urlsplit

import segno
from pydantic import BaseModel, Field

from core.settings import Settings
from provisioning.errors import ProvisioningError
from provisioning.names import DeviceCredentials, device_topic_prefix

__all__ = ["SETUP_FORMAT", "DeviceSetup", "device_setup", "setup_qr_file", "setup_qr_svg",
           "setup_text"]

SETUP_FORMAT = "nattero-device-setup/1"
_DEFAULT_PORTS = {"mqtts": 8883, "mqtt": 1883}


class DeviceSetup(BaseModel):
    """Everything a native device needs to publish (protocol v1, ``docs/devices.md``)."""

    format: str = Field(SETUP_FORMAT, description="this document's format and version")
    site: str
    device: str
    broker_host: str = Field(description="the broker's host name as the care home reaches it")
    broker_port: int = Field(description="the broker's port: its TLS port when ``tls``")
    tls: bool = Field(description="connect with TLS (mqtts); false only on one machine")
    topic: str = Field(description="publish events here (QoS 1)")
    status_topic: str = Field(description="retained online/offline, and the Last Will")
    username: str
    client_id: str = Field(description="connect with exactly this client id")
    password: str = Field(description="shown once; stored nowhere but the broker")


def device_setup(settings: Settings, site: str, device: str,
                 credentials: DeviceCredentials) -> DeviceSetup:
    """The setup of ``device`` with its new ``credentials``, for the broker address devices
    are given (``NATTERO_DEVICE_BROKER_URL``, see ``Settings.device_broker``)."""
    url = settings.device_broker()
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ProvisioningError(
            f"the device broker address {url!r} is not mqtts://host:port or mqtt://host:port; "
            "set NATTERO_DEVICE_BROKER_URL, e.g. mqtts://mqtt.example-kommune.dk:8883")
    prefix = device_topic_prefix(site, device)
    return DeviceSetup(
        site=site, device=device, broker_host=parts.hostname,
        broker_port=parts.port or _DEFAULT_PORTS[parts.scheme], tls=parts.scheme == "mqtts",
        topic=f"{prefix}/events", status_topic=f"{prefix}/status",
        username=credentials.username, client_id=credentials.client_id,
        password=credentials.password)


def setup_text(setup: DeviceSetup) -> str:
    """The document as the file holds it and the QR code encodes it: compact JSON."""
    return json.dumps(setup.model_dump(), ensure_ascii=False, separators=(",", ":"))


def _qr(setup: DeviceSetup) -> segno.QRCode:
    return segno.make(setup_text(setup), error="m", micro=False)


def setup_qr_svg(setup: DeviceSetup) -> str:
    """The document as a QR code: an SVG ``data:`` URI for an ``<img>``."""
    return str(_qr(setup).svg_data_uri(scale=4, border=4))


def setup_qr_file(setup: DeviceSetup) -> str:
    """The document as a QR code: an SVG file's text (with its XML declaration)."""
    out = io.BytesIO()
    _qr(setup).save(out, kind="svg", scale=4, border=4)
    return out.getvalue().decode("utf-8")
