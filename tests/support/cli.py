"""The real ``nattero`` command line in a subprocess, as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support import REPO


def nattero_cli(*args: str, input_text: str | None = None,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nattero.cli", *args], capture_output=True,
                          text=True, input=input_text, timeout=120,
                          env={**os.environ, **(env or {})}, cwd=REPO)
