"""Schemathesis (its real command line) against the app's own OpenAPI: no input makes the
server fail (5xx), and answers match the documented status codes, types and schemas."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance," \
         "response_schema_conformance"


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(api, make_user, headers_for, tmp_path) -> None:
    st = Path(sys.executable).parent / "schemathesis"
    if not st.exists() and shutil.which("schemathesis") is None:
        pytest.skip("schemathesis is not installed in this environment")
    token = headers_for(make_user("admin"))["Authorization"]
    run = subprocess.run(
        [str(st) if st.exists() else "schemathesis", "run", f"{api.url}/openapi.json",
         "--checks", CHECKS, "--max-examples", "30", "--header", f"Authorization: {token}",
         "--generation-deterministic", "--report-dir", str(tmp_path), "--no-color"],
        capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
