"""``nattero simulate``'s face: its options, a clear error for a bad speed, the summary."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from core.settings import Settings
from nattero.commands.simulation import _summary, simulate
from simulators.command import SimulationResult, print_summary, run_simulation
from simulators.credentials import CredentialStore
from simulators.devices import DeliveryRates
from simulators.ground_truth import AlertRecord
from simulators.plan import Delivery, EventDelivery
from simulators.profile import load_profile
from simulators.publisher import PublishStats


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(simulate)

    @app.command()
    def other() -> None:  # a second command keeps `simulate` a named sub-command
        pass

    return app


@pytest.mark.pure
def test_simulate_rejects_a_bad_speed_before_doing_anything() -> None:
    result = CliRunner().invoke(_cli(), ["simulate", "--speed", "fast"])
    assert result.exit_code == 2
    assert "positive number" in result.output


@pytest.mark.pure
def test_simulate_help_lists_its_options() -> None:
    result = CliRunner().invoke(_cli(), ["simulate", "--help"])
    assert result.exit_code == 0
    for option in ("--site", "--nights", "--speed", "--seed", "--start", "--truth-out",
                   "--no-provision", "--lost", "--duplicated", "--late"):
        assert option in result.output


@pytest.mark.pure
@pytest.mark.parametrize("option", ["--lost", "--duplicated", "--late"])
def test_simulate_refuses_a_delivery_rate_above_one(option: str) -> None:
    result = CliRunner().invoke(_cli(), ["simulate", option, "1.5"])
    assert result.exit_code == 2
    assert option in result.output


@pytest.mark.pure
def test_lost_messages_are_not_published_and_the_summary_shows_delays(tmp_path: Path) -> None:
    settings = Settings.model_validate({"state_dir": tmp_path})
    store = CredentialStore.in_state_dir(tmp_path)
    for spec in load_profile("solsikken").device_specs:
        store.put("solsikken", spec.id, f"solsikken.{spec.id}", "secret")
    published: list[Delivery] = []

    def no_broker(deliveries: Sequence[Delivery], *_args: object, **_kw: object
                  ) -> PublishStats:
        published.extend(deliveries)
        return PublishStats(events={"solsikken": len(deliveries)})

    def no_alerts(site: str, start: datetime, end: datetime) -> list[AlertRecord]:
        return []

    def run(lost: float) -> SimulationResult:
        published.clear()
        return run_simulation(
            settings, ["solsikken"], nights=2, speed="max", seed=3, provision=False,
            progress=False, publisher=no_broker, fetch_alerts=no_alerts,
            delivery=DeliveryRates(lost=lost), console=Console(record=True, width=160))

    whole = run(0.0)
    everything = len(whole.sent_events["solsikken"])
    halved = run(0.5)
    lost = halved.lost_events["solsikken"]
    assert whole.lost_events == {"solsikken": 0}
    # every distinct event is either sent (so the store must hold it) or lost, never both
    assert len(halved.sent_events["solsikken"]) + lost == everything
    assert lost == pytest.approx(everything / 2, rel=0.1)
    assert not {(d.device, d.payload["id"]) for d in published if isinstance(d, EventDelivery)
                } & {(e.device, e.id) for e in whole.sent_events["solsikken"]} - {
                    (e.device, e.id) for e in halved.sent_events["solsikken"]}
    assert halved.truth.episodes == whole.truth.episodes    # what happened did not change
    console = Console(record=True, width=160)
    print_summary(halved, console)
    text = console.export_text()
    assert "detection delay" in text and "fall_bed_sensor" in text
    summary = _summary(halved)
    assert summary["per_site"]["solsikken"]["lost"] == halved.lost_events["solsikken"]
    assert set(summary["total"]["delay_s"]) == {"building_exit", "outing", "fall_bed_sensor"}


@pytest.mark.pure
def test_summary_says_alerts_are_not_available_without_the_hook(tmp_path: Path) -> None:
    settings = Settings.model_validate({"state_dir": tmp_path})
    store = CredentialStore.in_state_dir(tmp_path)
    for spec in load_profile("solsikken").device_specs:
        store.put("solsikken", spec.id, f"solsikken.{spec.id}", "secret")

    def no_broker(deliveries: Sequence[Delivery], *_args: object, **_kw: object
                  ) -> PublishStats:
        return PublishStats(events={"solsikken": len(deliveries)})

    console = Console(record=True, width=140)
    result = run_simulation(settings, ["solsikken"], speed="max", provision=False,
                            console=console, progress=False, publisher=no_broker)
    print_summary(result, console)
    text = console.export_text()
    assert "alerts: not available" in text and "solsikken" in text
    assert result.score is None


@pytest.mark.pure
def test_simulators_import_nothing_of_nattero_but_core() -> None:
    import ast

    allowed = {"core", "simulators"}
    project = {"core", "provisioning", "nattero", "gateway", "ingest", "rules", "api",
               "simulators", "deploy", "evaluation"}
    offenders = []
    for path in sorted((Path(__file__).parent.parent / "simulators").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                top = name.split(".")[0]
                if top in project and top not in allowed:
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []


def test_provisioning_twice_adds_nothing_and_a_lost_file_rotates(
        migrated: object, tmp_path: Path) -> None:
    import uuid

    from simulators.provisioner import provision_sites

    profile = load_profile("egely")
    profile = profile.model_copy(update={"site": f"egely-p{uuid.uuid4().hex[:8]}"})
    settings = Settings.model_validate({})
    store = CredentialStore(tmp_path / "first.json")
    devices = len(profile.device_specs)
    assert provision_sites(settings, [profile], store) == devices
    assert provision_sites(settings, [profile], store) == 0
    lost = CredentialStore(tmp_path / "lost.json")
    assert provision_sites(settings, [profile], lost) == devices
    spec = profile.device_specs[0]
    assert lost.get(profile.site, spec.id) != store.get(profile.site, spec.id)
