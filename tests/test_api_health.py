"""Health, readiness and metrics of the API process."""

from __future__ import annotations

from types import SimpleNamespace


def test_healthz_answers_ok(http) -> None:
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_with_database_and_broker_up(http) -> None:
    response = http.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "broker": "ok",
                                         "alert_listener": "ok"}


def test_metrics_expose_the_nattero_metrics_in_prometheus_text(http, make_user,
                                                               headers_for) -> None:
    response = http.get("/metrics", headers=headers_for(make_user("admin")))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for name in ("nattero_events_ingested_total", "nattero_dead_letters_total",
                 "nattero_alerts_raised_total", "nattero_alert_ack_seconds",
                 "nattero_websocket_clients", "nattero_pipeline_lag_seconds",
                 "nattero_rules_over_budget_total", "nattero_rules_deferred_inputs",
                 "nattero_rules_sites_behind"):
        assert name in response.text


def test_readyz_names_rules_that_are_behind_but_stays_ready(api, http) -> None:
    # Events are stored and the alerts follow: degraded, not down (rules.runtime, budget).
    api.app.state.pipeline = SimpleNamespace(
        gateway=SimpleNamespace(connected=True),
        rules=SimpleNamespace(behind=lambda: {"havnely": 4200}))
    try:
        response = http.get("/readyz")
    finally:
        api.app.state.pipeline = None
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["degraded"] == {"rules": "behind, catching up: havnely (4200 inputs to evaluate)"}
    assert body["detail"] == "ready (degraded: rules)"


def test_readyz_stays_ready_while_one_central_broker_is_away_and_says_which(
        api, http, stack) -> None:
    from tests.support.api import free_port

    settings = api.app.state.settings
    away = f"127.0.0.1:{free_port()}"
    here = f"{stack.mqtt_host}:{stack.mqtt_port}"
    try:
        api.app.state.settings = settings.model_copy(update={"mqtt_brokers": [here, away]})
        one_away = http.get("/readyz")
        api.app.state.settings = settings.model_copy(update={"mqtt_brokers": [away]})
        all_away = http.get("/readyz")
    finally:
        api.app.state.settings = settings
    assert one_away.status_code == 200, one_away.text
    assert one_away.json()["checks"]["broker"] == "ok"
    assert away in one_away.json()["degraded"]["brokers"]
    assert all_away.status_code == 503, all_away.text
    assert all_away.json()["checks"]["broker"].startswith(f"down: cannot connect to {away}")


def test_unknown_path_answers_json_with_a_message(http) -> None:
    response = http.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert isinstance(response.json()["detail"], str)


def test_openapi_lists_the_contract_paths(http) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    for path in ("/api/v1/auth/token", "/api/v1/alerts", "/api/v1/alerts/{alert_id}/ack",
                 "/api/v1/alerts/{alert_id}/resolve", "/api/v1/sites/{site}/rooms",
                 "/api/v1/sites/{site}/health", "/healthz", "/readyz", "/metrics"):
        assert path in paths


def test_the_board_pages_scripts_and_styles_are_served_and_nothing_else_of_its_folder(
        http) -> None:
    for path in ("/", "/index.html", "/login.html", "/admin.html", "/evaluator.html",
                 "/handover.html"):
        response = http.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html"), path
    assert "<script" in http.get("/").text
    assert http.get("/js/board.js").status_code == 200
    assert http.get("/css/board.css").status_code == 200
    for path in ("/package.json", "/package-lock.json", "/__init__.py",
                 "/node_modules/axe-core/axe.min.js", "/nothing.html", "/js/../package.json"):
        assert http.get(path).status_code == 404, path
