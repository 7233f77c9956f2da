"""What a vendor mapping is: a pure function from a codec's decoded object to readings.

A ChirpStack device profile's codec (the vendor's JavaScript decoder) turns the LoRaWAN
bytes into an ``object``; its keys drift between decoder versions, so each mapping is named
with the decoder version it reads (``milesight-ws301`` vs ``milesight-ws301-legacy``) and
refuses an object shaped like another version instead of guessing.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from core.events import DeviceKind, EventKind

from ..base import AdapterError

# One thing the object says, with the battery level it reported (0-100) if any. An object
# with no door/motion/presence/bed reading yields ``(EventKind.HEARTBEAT, battery)``.
Reading = tuple[EventKind, int | None]

VendorMapping = Callable[[Mapping[str, Any], DeviceKind], list[Reading]]


def require_kind(
    mapping: str, device_kind: DeviceKind, allowed: Collection[DeviceKind]
) -> None:
    """Refuse a mapping used for a kind of device it cannot describe."""
    if device_kind not in allowed:
        kinds = "/".join(sorted(str(kind) for kind in allowed))
        raise AdapterError(
            "mapping_kind_mismatch",
            f"mapping {mapping!r} reads {kinds} sensors, but the device is provisioned as "
            f"kind {device_kind}; fix the device's --kind or --mapping",
        )


def require_known_keys(mapping: str, decoded: Mapping[str, Any], known: Collection[str]) -> None:
    """Refuse an object that has none of the keys this mapping's decoder version writes."""
    if not any(key in decoded for key in known):
        found = ", ".join(sorted(decoded)) or "none"
        raise AdapterError(
            "unrecognised_object",
            f"mapping {mapping!r} found none of its keys ({', '.join(sorted(known))}) in the "
            f"decoded object (keys: {found}); check the device profile's codec and --mapping",
        )


def refuse_other_version(
    mapping: str, decoded: Mapping[str, Any], own_key: str, other_key: str, other_mapping: str
) -> None:
    """Refuse an object written by another decoder version (its state key, not ours)."""
    if other_key in decoded and own_key not in decoded:
        raise AdapterError(
            "mapping_version_mismatch",
            f"the decoded object has {other_key!r} but mapping {mapping!r} reads {own_key!r}: "
            f"the codec is another decoder version; use --mapping {other_mapping}",
        )


def invalid_value(mapping: str, key: str, value: object, expected: str) -> AdapterError:
    """The error for a known key with a value this decoder version never writes."""
    return AdapterError(
        "invalid_value",
        f"mapping {mapping!r}: {key!r} must be {expected}, got {value!r}",
    )
