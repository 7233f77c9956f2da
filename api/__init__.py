"""The HTTP and WebSocket face of Nattero: REST under ``/api/v1``, the live alert stream,
auth and roles, health and metrics. It reads and changes the store only through the query
functions of ``ingest`` and through ``provisioning``, and holds no SQL of its own (except the
alert fan-out's ``LISTEN``, until it moves into ``ingest``); it never talks MQTT except to
check the broker is reachable.
"""

from api.app import create_app

__all__ = ["create_app"]
