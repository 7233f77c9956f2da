"""Prometheus metrics of the process (served by the API at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_INGESTED = Counter("nattero_events_ingested_total", "Events stored (new rows)")
EVENTS_DUPLICATE = Counter("nattero_events_duplicate_total", "Redelivered events stored once")
DEAD_LETTERS = Counter("nattero_dead_letters_total", "Rejected messages", ["reason"])
STORE_RETRIES = Counter("nattero_store_retries_total", "Batch commits retried (database away)")
BATCH_SECONDS = Histogram("nattero_ingest_batch_seconds", "Time to commit one batch",
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5))
ALERTS_RAISED = Counter("nattero_alerts_raised_total", "Alerts raised", ["rule"])
ACK_SECONDS = Histogram("nattero_alert_ack_seconds", "Time from alert to acknowledgement",
                        buckets=(5, 15, 30, 60, 120, 180, 300, 600, 1800))
WEBSOCKET_CLIENTS = Gauge("nattero_websocket_clients", "Connected board WebSockets")
PIPELINE_LAG = Gauge("nattero_pipeline_lag_seconds", "Receipt-to-commit lag of the last batch")
RULES_OVER_BUDGET = Counter(
    "nattero_rules_over_budget_total",
    "Sites put behind because a writer batch's rules work ran past its budget")
RULES_DEFERRED = Gauge("nattero_rules_deferred_inputs",
                       "Stored events and statuses the rules have not evaluated yet")
RULES_SITES_BEHIND = Gauge("nattero_rules_sites_behind",
                           "Sites whose rules are catching up outside the writer")
