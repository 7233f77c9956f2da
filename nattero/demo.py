"""``nattero demo``: the whole system on one machine, with five simulated pilot sites.

Starts the local stack, migrates, provisions the five pilot sites (through the simulators'
provisioning, with each device's own broker account), creates demo users (passwords kept in
the state directory so a second run prints the same ones), starts ``nattero serve`` and
plays the sites' nights at a watchable speed until Ctrl-C. Running it again works: every
step finds what is already there.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import typer

from core.errors import NatteroError
from core.settings import Settings, get_settings

DEMO_USERS_FILE = "demo-users.json"


class DemoError(NatteroError):
    """The demo's server did not start or did not become ready."""


def _demo_users(settings: Settings, sites: list[str]) -> dict[str, dict[str, object]]:
    """Create (once) an admin, an evaluator and one night-staff account per site."""
    import psycopg

    from api.users import Role, UserError, create_user

    path = settings.state_dir.resolve() / DEMO_USERS_FILE
    users: dict[str, dict[str, object]] = json.loads(path.read_text()) if path.exists() else {}
    wanted: dict[str, tuple[Role, list[str]]] = {
        "admin": (Role.ADMIN, []), "evaluator": (Role.EVALUATOR, []),
        **{f"nattevagt-{site}": (Role.STAFF, [site]) for site in sites},
    }
    with psycopg.connect(settings.resolved_database_url(), autocommit=True) as conn:
        for username, (role, user_sites) in wanted.items():
            if username in users:
                continue
            password = secrets.token_urlsafe(9)
            try:
                create_user(conn, username, password, role, user_sites)
            except UserError:
                continue  # exists from an earlier run whose file was deleted
            users[username] = {"password": password, "role": role.value, "sites": user_sites}
    path.write_text(json.dumps(users, indent=2))
    path.chmod(0o600)
    return users


def _wait_ready(url: str, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise DemoError("`nattero serve` exited; see the output above")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise DemoError(f"the API at {url} did not become ready within {timeout:.0f} s")


def run_demo(host: str = "127.0.0.1", port: int = 8000, speed: str = "60",
             nights: int = 7) -> None:
    from deploy.stack import up
    from ingest.migrate import upgrade
    from simulators.command import run_simulation
    from simulators.profile import all_profiles

    settings = get_settings()
    info = up(settings)
    typer.echo(f"stack: database {info.database_url.split('@')[-1]}, "
               f"broker {info.mqtt_host}:{info.mqtt_port}")
    upgrade(settings.sqlalchemy_url())
    sites = [profile.site for profile in all_profiles()]
    # Provision before the gateway starts, so its session covers every device from the start.
    from simulators.credentials import CredentialStore
    from simulators.provisioner import provision_sites

    store = CredentialStore.in_state_dir(settings.state_dir.resolve())
    provision_sites(settings, all_profiles(), store)
    start = (datetime.now(UTC) - timedelta(days=1)).date()
    users = _demo_users(settings, sites)
    url = f"http://{host}:{port}"
    server = subprocess.Popen([sys.executable, "-m", "nattero.cli", "serve", "--host", host,
                               "--port", str(port)], env=os.environ.copy())
    try:
        _wait_ready(url, server)
        typer.secho(f"\nNattero night board: {url}/", fg=typer.colors.GREEN, bold=True)
        for username, user in users.items():
            typer.echo(f"  {username:28} {user['password']}   ({user['role']})")
        typer.echo(f"\nplaying {nights} nights of five pilot sites at speed {speed}; "
                   "Ctrl-C stops everything\n")
        run_simulation(settings, nights=nights, speed=speed, start=start - timedelta(
            days=nights - 1), provision=True)
        typer.echo("simulation finished; the board stays up until Ctrl-C")
        server.wait()
    except KeyboardInterrupt:
        typer.echo("\nstopping")
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()


__all__ = ["DemoError", "run_demo"]
