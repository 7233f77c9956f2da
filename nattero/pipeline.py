"""Gateway + rules in one process: events in, alerts out (the API serves them)."""

from __future__ import annotations

from dataclasses import dataclass

from core.settings import Settings
from gateway.service import Gateway
from ingest.maintenance import Maintenance
from rules.runtime import RulesRuntime


@dataclass
class Pipeline:
    gateway: Gateway
    rules: RulesRuntime
    maintenance: Maintenance | None = None

    def stop(self) -> None:
        # The rules first: a writer in the middle of a burst's rules work then commits its
        # batch at once instead of finishing the work (the next start replays it).
        self.rules.request_stop()
        self.gateway.stop()
        self.rules.stop()
        if self.maintenance is not None:
            self.maintenance.stop()


def start_pipeline(settings: Settings) -> Pipeline:
    rules = RulesRuntime(settings.resolved_database_url(), sites=settings.gateway_sites or None,
                         budget_s=settings.rules_batch_budget_s)
    rules.load()
    gateway = Gateway(settings, hooks=[rules.on_batch])
    rules.start()
    gateway.start()
    maintenance: Maintenance | None = None
    if settings.maintenance == "thread":
        maintenance = Maintenance(settings.resolved_database_url(),
                                  every_s=settings.maintenance_every_s,
                                  reconcile_every_s=settings.maintenance_reconcile_every_s)
        maintenance.start()
    return Pipeline(gateway, rules, maintenance)
