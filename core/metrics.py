"""Prometheus metrics of the process (served by the API at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_INGESTED = Counter("nattero_events_ingested_total", "Events stored (new rows)")
EVENTS_DUPLICATE = Counter("nattero_events_duplicate_total", "Redelivered events stored once")
DEAD_LETTERS = Counter("nattero_dead_letters_total", "Rejected messages", ["reason"])
DEAD_LETTER_COPIES = Counter("nattero_dead_letter_copies_total",
                             "Rejected messages heard again from another central broker "
                             "(one dead letter is kept)")
STORE_RETRIES = Counter("nattero_store_retries_total", "Batch commits retried (database away)")
BATCH_SECONDS = Histogram("nattero_ingest_batch_seconds", "Time to commit one batch",
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5))
ALERTS_RAISED = Counter("nattero_alerts_raised_total", "Alerts raised", ["rule"])
ACK_SECONDS = Histogram("nattero_alert_ack_seconds", "Time from alert to acknowledgement",
                        buckets=(5, 15, 30, 60, 120, 180, 300, 600, 1800))
WEBSOCKET_CLIENTS = Gauge("nattero_websocket_clients", "Connected board WebSockets")
RULES_SKIPPED = Counter("nattero_rules_skipped_total",
                        "Stored events not given to the rules (too old, stamped in the future)",
                        ["reason"])
PIPELINE_LAG = Gauge("nattero_pipeline_lag_seconds", "Receipt-to-commit lag of the last batch")
RULES_OVER_BUDGET = Counter(
    "nattero_rules_over_budget_total",
    "Sites put behind because a writer batch's rules work ran past its budget")
RULES_DEFERRED = Gauge("nattero_rules_deferred_inputs",
                       "Stored events and statuses the rules have not evaluated yet")
RULES_SITES_BEHIND = Gauge("nattero_rules_sites_behind",
                           "Sites whose rules are catching up outside the writer")
PUSH_SENT = Counter("nattero_push_sent_total", "Web Push messages accepted by a push service")
PUSH_FAILURES = Counter("nattero_push_failures_total",
                        "Web Push messages given up after every retry (logged and recorded)")
PUSH_GONE = Counter("nattero_push_subscriptions_gone_total",
                    "Push subscriptions removed because the push service said 404/410")
ESCALATION_STEPS = Counter("nattero_escalation_steps_total",
                           "Unacknowledged calls sent on to a person (roster), per step",
                           ["step"])
ESCALATION_FAILURES = Counter("nattero_escalation_failures_total",
                              "Sends to a person given up after every retry (shown on the "
                              "alert)", ["channel"])
BOARD_SILENCES = Counter("nattero_board_silences_total",
                         "Nights where no board of a site was connected for too long", ["site"])
