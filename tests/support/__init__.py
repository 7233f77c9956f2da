"""What the tests share: fixture modules registered as plugins by tests/conftest.py, and
the helpers that go with them. Import helpers from their module; fixtures are found by name.

    store       the real stack, a migrated database, a fresh site per test, devices
    pipeline    in-process gateways and gateway+rules pipelines for given sites
    threads     fail a test when a background thread died of an exception
    waiting     ``wait_until``: poll a condition with a deadline
    cli         ``nattero_cli``: the real command line in a subprocess
    devices     test-side MQTT devices (real paho clients with a device's account)
    api         the API in a thread (``api_server``), accounts, tokens, alerts
    board       the API as a process (``api_process``) and headless Chromium
    evaluation  a simulated month of two pilot sites, for exports and reports
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
