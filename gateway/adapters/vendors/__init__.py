"""Vendor mappings for codec-decoded ChirpStack objects, by versioned name.

``nattero device add ... --source chirpstack --mapping NAME`` records which one a device uses.
"""

from __future__ import annotations

from .elsys import elsys
from .mapping import Reading, VendorMapping
from .milesight import ws202, ws301, ws301_legacy

MAPPINGS: dict[str, VendorMapping] = {
    "milesight-ws301": ws301,
    "milesight-ws301-legacy": ws301_legacy,
    "milesight-ws202": ws202,
    "elsys": elsys,
}

__all__ = ["MAPPINGS", "Reading", "VendorMapping"]
