"""The installed wheel, not only the checkout, serves the night board."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

import api.app
from api.app import DashboardMissing, create_app, dashboard_dir
from core.settings import Settings, StackInfo

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.pure
def test_board_folder_is_found_as_a_package_resource() -> None:
    assert (dashboard_dir() / "index.html").is_file()


@pytest.mark.pure
def test_app_refuses_to_start_without_the_board_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "index.html").write_text("<!doctype html>")
    monkeypatch.setattr(api.app, "files", lambda package: tmp_path)
    with pytest.raises(DashboardMissing, match=r"'js/board\.js'.*reinstall nattero"):
        create_app(Settings())


@pytest.mark.pure
def test_app_refuses_to_start_when_the_board_package_is_not_installed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_package(package: str) -> Path:
        raise ModuleNotFoundError(package)

    monkeypatch.setattr(api.app, "files", no_package)
    with pytest.raises(DashboardMissing, match="not installed beside the API"):
        create_app(Settings())


def _run(*args: str | Path, cwd: Path) -> None:
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"{args[:4]} failed:\n{result.stdout}\n{result.stderr}"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
def test_wheel_installed_in_a_fresh_venv_serves_the_board(
        tmp_path: Path, migrated: StackInfo) -> None:
    # Built from a copy: setuptools builds in the source tree, and a stale build/ would
    # ship modules that no longer exist.
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", ".nattero*", "build", "artifacts", "*.egg-info",
        "__pycache__", ".*_cache"))
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", source, "-w", tmp_path,
         cwd=tmp_path)
    [wheel] = tmp_path.glob("nattero-*.whl")
    shipped = zipfile.ZipFile(wheel).namelist()
    assert "dashboard/index.html" in shipped and "dashboard/js/board.js" in shipped
    assert not [name for name in shipped if "node_modules" in name or name.endswith(
        "package-lock.json")]

    # A venv without pip, whose dependencies come from this venv's site-packages through a
    # .pth (no network); that directory's own .pth files, such as the editable install's
    # finder, are not run, so only the wheel provides nattero's packages.
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    [new_site] = (venv / "lib").glob("python3*/site-packages")
    (new_site / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
         wheel, cwd=tmp_path)
    where = subprocess.run([python, "-c", "import api, dashboard; print(api.__file__); "
                            "print(dashboard.__file__)"], cwd=tmp_path, capture_output=True,
                           text=True, check=True).stdout.split()
    assert all(path.startswith(str(new_site)) for path in where), where
    # The Danish catalogue and the page templates travel in the wheel, and the .po is
    # compiled from there (no build step, no .mo to forget).
    assert "core/locale/da/LC_MESSAGES/nattero.po" in shipped
    assert "evaluation/templates/report.html" in shipped
    assert "evaluation/templates/handover.html" in shipped
    danish = subprocess.run([python, "-c", "from core.i18n import localizer; "
                             "print(localizer('da').ngettext('{n} alert', '{n} alerts', 2)); "
                             "from evaluation.pages import _ENV; "
                             "print(_ENV.get_template('handover.html').filename)"],
                            cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert danish.splitlines()[0] == "2 alarmer"
    assert danish.splitlines()[1].startswith(str(new_site)), danish

    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen([venv / "bin" / "nattero", "serve", "--no-pipeline",
                                   "--port", str(port)], cwd=tmp_path, env=dict(os.environ),
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, f"nattero serve exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no answer in 30 s:\n{log.read_text()[-3000:]}"
            try:
                board = httpx.get(f"{url}/", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert board.status_code == 200
        assert board.headers["content-type"].startswith("text/html")
        assert '<script type="module"' in board.text
        script = httpx.get(f"{url}/js/board.js", timeout=5)
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]
        assert script.text == (REPO / "dashboard" / "js" / "board.js").read_text()
    finally:
        server.terminate()
        server.wait(20)
