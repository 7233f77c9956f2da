"""Alerts over HTTP: who sees what, acknowledge, resolve with outcome, the audit trail."""

from __future__ import annotations

import pytest

from core.events import RoomKind


def test_staff_of_one_site_do_not_see_another_sites_alerts(http, make_user, site, raise_alert,
                                                           headers_for) -> None:
    import provisioning
    from core.settings import get_settings
    from tests.support.store import unique

    other = unique("t")
    provisioning.add_site(get_settings(), other, "Naboen")
    provisioning.add_room(get_settings(), other, "f1", RoomKind.FLAT)
    mine = raise_alert(site)
    theirs = raise_alert(other)
    nurse = headers_for(make_user("staff", site))
    ids = {alert["id"] for alert in http.get("/api/v1/alerts", headers=nurse).json()}
    assert mine in ids
    assert theirs not in ids
    assert http.get(f"/api/v1/alerts?site={other}", headers=nurse).status_code == 404
    assert http.get(f"/api/v1/alerts/{theirs}", headers=nurse).status_code == 404
    assert http.get(f"/api/v1/sites/{other}/rooms", headers=nurse).status_code == 404


def test_staff_cannot_acknowledge_another_sites_alert(http, make_user, site, raise_alert,
                                                      headers_for, db) -> None:
    import provisioning
    from core.settings import get_settings
    from tests.support.store import unique

    other = unique("t")
    provisioning.add_site(get_settings(), other, "Naboen")
    provisioning.add_room(get_settings(), other, "f1", RoomKind.FLAT)
    theirs = raise_alert(other)
    nurse = headers_for(make_user("staff", site))
    response = http.post(f"/api/v1/alerts/{theirs}/ack", headers=nurse)
    assert response.status_code == 404
    assert "not on one of your sites" in response.json()["detail"]
    assert db.execute("SELECT status FROM alerts WHERE id = %s", (theirs,)).fetchone()[0] == "open"


def test_acknowledge_then_resolve_with_outcome_is_recorded_and_audited(
        http, make_user, site, raise_alert, headers_for, db) -> None:
    alert = raise_alert(site)
    nurse = make_user("staff", site)
    headers = headers_for(nurse)
    acked = http.post(f"/api/v1/alerts/{alert}/ack", headers=headers)
    assert acked.status_code == 200, acked.text
    assert acked.json()["status"] == "acknowledged"
    assert acked.json()["acknowledged_by"] == nurse.username
    db.execute("UPDATE sites SET resolve_notes = true WHERE id = %s", (site,))  # off by default
    resolved = http.post(f"/api/v1/alerts/{alert}/resolve", headers=headers,
                         json={"outcome": "help_given", "note": "fulgt tilbage"})
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"
    assert resolved.json()["outcome"] == "help_given"
    assert resolved.json()["outcome_note"] == "fulgt tilbage"
    rows = db.execute("SELECT action, site, target, detail->>'outcome' FROM audit_log "
                      "WHERE actor = %s AND action LIKE 'alert.%%' ORDER BY id",
                      (nurse.username,)).fetchall()
    assert rows == [("alert.ack", site, str(alert), None),
                    ("alert.resolve", site, str(alert), "help_given")]
    changes = db.execute("SELECT change FROM alert_changes WHERE alert_id = %s ORDER BY seq",
                         (alert,)).fetchall()
    assert [c for (c,) in changes] == ["raised", "acknowledged", "resolved"]


def test_resolving_a_resolved_alert_is_409_with_a_message(http, make_user, site, raise_alert,
                                                          headers_for) -> None:
    alert = raise_alert(site)
    headers = headers_for(make_user("staff", site))
    body = {"outcome": "false_alarm"}
    assert http.post(f"/api/v1/alerts/{alert}/resolve", headers=headers,
                     json=body).status_code == 200
    again = http.post(f"/api/v1/alerts/{alert}/resolve", headers=headers, json=body)
    assert again.status_code == 409
    assert again.json()["detail"].startswith(f"alert {alert} is already resolved")
    ack = http.post(f"/api/v1/alerts/{alert}/ack", headers=headers)
    assert ack.status_code == 409


@pytest.mark.parametrize("outcome", ["slept_through_it", "cleared_automatically"])
def test_an_outcome_staff_cannot_choose_is_422_with_a_human_message(
        http, make_user, site, raise_alert, headers_for, outcome) -> None:
    alert = raise_alert(site)
    response = http.post(f"/api/v1/alerts/{alert}/resolve",
                         headers=headers_for(make_user("staff", site)),
                         json={"outcome": outcome})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("field 'outcome'")


def test_status_filter_lists_only_open_alerts(http, make_user, site, raise_alert,
                                              headers_for) -> None:
    first, second = raise_alert(site), raise_alert(site, "lounge", "common_motion")
    headers = headers_for(make_user("staff", site))
    http.post(f"/api/v1/alerts/{first}/ack", headers=headers)
    open_ids = [a["id"] for a in http.get(f"/api/v1/alerts?status=open&site={site}",
                                          headers=headers).json()]
    assert open_ids == [second]


def test_rooms_show_whether_they_are_monitored_and_their_devices(
        http, make_user, site, headers_for, add_device) -> None:
    import provisioning
    from core.settings import get_settings

    provisioning.add_room(get_settings(), site, "f2", RoomKind.FLAT, "Lejlighed 2")
    add_device(site, "door-1")
    rooms = {r["id"]: r for r in http.get(f"/api/v1/sites/{site}/rooms",
                                          headers=headers_for(make_user("staff", site))).json()}
    assert rooms["f1"]["monitored"] is True
    assert rooms["f2"]["monitored"] is False
    assert rooms["lounge"]["monitored"] is True
    assert [d["id"] for d in rooms["f1"]["devices"]] == ["door-1"]


def test_site_health_lists_a_device_that_never_reported_as_silent(
        http, make_user, site, headers_for, add_device) -> None:
    add_device(site, "door-1")
    health = http.get(f"/api/v1/sites/{site}/health",
                      headers=headers_for(make_user("staff", site))).json()
    assert health["ok"] is False
    assert [d["device"] for d in health["silent"]] == ["door-1"]


def test_admin_rule_change_is_stored_and_audited(http, make_user, site, headers_for,
                                                 db) -> None:
    admin = make_user("admin")
    response = http.put(f"/api/v1/sites/{site}/rules", headers=headers_for(admin),
                        json={"rule": "left_flat", "room": "f1", "minutes": 20})
    assert response.status_code == 200, response.text
    assert response.json()["updated_by"] == admin.username
    assert db.execute("SELECT minutes FROM rule_settings WHERE site = %s AND room = 'f1'",
                      (site,)).fetchone()[0] == 20
    assert db.execute("SELECT count(*) FROM audit_log WHERE actor = %s AND action = "
                      "'rules.set'", (admin.username,)).fetchone()[0] == 1


@pytest.mark.parametrize(("language", "expected"), [
    ("da", "minutes=0 betyder 'med det samme' og gælder kun building_exit; giv left_flat 1 "
           "til 720 minutter"),
    ("en", "minutes=0 means 'at once' and is only for building_exit; give left_flat 1 to "
           "720 minutes"),
])
def test_a_body_that_fails_its_own_check_is_refused_in_the_readers_language(
        language: str, expected: str, http, make_user, site, headers_for) -> None:
    # A check of the request as a whole (not one field) says what to do, Danish first.
    admin = {**headers_for(make_user("admin")), "Accept-Language": language}
    refused = http.put(f"/api/v1/sites/{site}/rules", headers=admin,
                       json={"rule": "left_flat", "minutes": 0})
    assert refused.status_code == 422
    assert refused.json()["detail"] == expected
    order = http.put(f"/api/v1/sites/{site}/escalation/high", headers=admin,
                     json={"second_after_minutes": 8, "coordinator_after_minutes": 2})
    assert order.status_code == 422
    assert ("koordinatoren kommer efter" in order.json()["detail"]) == (language == "da")


def test_building_exits_always_call_is_minutes_zero_and_only_for_building_exit(
        http, make_user, site, headers_for, db) -> None:
    admin = headers_for(make_user("admin"))
    refused = http.put(f"/api/v1/sites/{site}/rules", headers=admin,
                       json={"rule": "left_flat", "minutes": 0})
    assert refused.status_code == 422
    assert "only for building_exit" in refused.text
    always = http.put(f"/api/v1/sites/{site}/rules", headers=admin,
                      json={"rule": "building_exit", "minutes": 0})
    assert always.status_code == 200, always.text
    assert db.execute("SELECT rule, minutes FROM rule_settings WHERE site = %s",
                      (site,)).fetchall() == [("building_exit", 0)]


def test_staff_cannot_use_admin_endpoints(http, make_user, site, headers_for) -> None:
    response = http.put(f"/api/v1/sites/{site}/rules",
                        headers=headers_for(make_user("staff", site)),
                        json={"rule": "left_flat", "minutes": 20})
    assert response.status_code == 403


def test_admin_provisioning_error_is_422_with_the_provisioning_message(
        http, make_user, site, headers_for) -> None:
    response = http.post(f"/api/v1/sites/{site}/rooms", headers=headers_for(make_user("admin")),
                         json={"id": "f1", "kind": "flat"})
    assert response.status_code == 422
    assert response.json()["detail"] == f"room 'f1' exists already on site '{site}'"


def test_control_characters_in_free_text_are_422_and_nothing_is_stored(
        http, make_user, site, raise_alert, headers_for, db) -> None:
    admin = headers_for(make_user("admin"))
    response = http.post(f"/api/v1/sites/{site}/rooms", headers=admin,
                         json={"id": "f-nul", "kind": "flat", "label": "Lejlighed\x00 9"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("field 'label'")
    assert db.execute("SELECT count(*) FROM rooms WHERE site = %s AND id = 'f-nul'",
                      (site,)).fetchone() == (0,)
    alert = raise_alert(site)
    response = http.post(f"/api/v1/alerts/{alert}/resolve",
                         headers=headers_for(make_user("staff", site)),
                         json={"outcome": "help_given", "note": "bell\x07"})
    assert response.status_code == 422
    # A login name the database cannot hold is a failed login, not a server error.
    response = http.post("/api/v1/auth/token", data={"username": "nat\x00vagt",
                                                     "password": "whatever-it-is"})
    assert response.status_code in (401, 422)
