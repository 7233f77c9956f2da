"""The systemd unit is sandboxed: `systemd-analyze security` rates it, offline, as an IT
department would before approving it (it rated 8.5 "EXPOSED" before)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "deploy" / "systemd" / "nattero.service"
MOST_EXPOSURE = 2.0  # systemd calls < 2 "OK"; 0 would need no network at all


@pytest.mark.pure
def test_the_unit_is_rated_ok_by_systemd_analyze_security() -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt install systemd)")
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", str(UNIT)],
                            capture_output=True, text=True, timeout=60, check=False)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", result.stdout)
    assert found is not None, result.stdout + result.stderr
    assert float(found.group(1)) <= MOST_EXPOSURE, (
        f"exposure {found.group(1)} {found.group(2)}; the findings:\n" + "\n".join(
            line for line in result.stdout.splitlines() if line.startswith("✗")))


@pytest.mark.pure
def test_the_unit_runs_in_production_mode_as_the_operations_guide_says() -> None:
    # docs/operations.md: TOTP is required for admins "in production mode, as the container
    # and the systemd unit run"; an env file without NATTERO_MODE must not fall back to
    # development (optional TOTP).
    lines = UNIT.read_text().splitlines()
    assert "Environment=NATTERO_MODE=production" in lines
