"""The report and the handover as a person reads them, from figures built in the test:
Danish by default with no English left over, English on request, honest staff time."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.night_window import NightWindow
from evaluation.baseline import RoundsByNight
from evaluation.benefit import (
    Durations,
    NightFigures,
    SiteFigures,
    compare,
    has_data,
    tally_alerts,
)
from evaluation.decision import pilot_values
from evaluation.economics import load_settings
from evaluation.experience import Experience
from evaluation.handover import Handover, HandoverAlert, SensorProblem, render_handover
from evaluation.period import Period, SiteInfo
from evaluation.report import BenefitReport, render_html, render_pdf, site_economics
from evaluation.staff_time import Assumptions, estimate
from ingest.evaluation import PeriodAlert
from tests.support.reading import english_left, visible_text

pytestmark = pytest.mark.pure

TZ = ZoneInfo("Europe/Copenhagen")
SITE = SiteInfo("havnely", "Havnely", NightWindow(time(22), time(7), TZ))
NIGHTS = [date(2026, 12, 1), date(2026, 12, 2)]

def alert(rule: str, outcome: str | None, night: date, minute: int, room: str = "f1",
          acked: bool = True, called: bool = True) -> PeriodAlert:
    first = datetime.combine(night, time(22), TZ).astimezone(UTC) + timedelta(minutes=minute)
    return PeriodAlert(room, rule, outcome, first, first, first + timedelta(minutes=3)
                       if acked else None, first + timedelta(minutes=10)
                       if outcome else None, called)


def figures(rows: list[PeriodAlert], flats: int = 8, nights: list[date] = NIGHTS,
            reporting: int = 8) -> SiteFigures:
    by_night = {night: NightFigures(night) for night in nights}
    tally = tally_alerts(SITE, by_night, rows)
    for n in by_night.values():
        n.flats_reporting = reporting
        n.flats_at_rest = max(0, reporting - len({r for r, d in tally.alerted if d == n.night}))
    observed = [n for n in by_night.values() if has_data(n, {})]
    handling = tally.handling_minutes
    rest = (sum(n.flats_at_rest for n in observed) / sum(n.flats_reporting for n in observed)
            if observed and any(n.flats_reporting for n in observed) else 0.0)
    return SiteFigures(
        site=SITE.id, name=SITE.name, period=Period(nights[0], nights[-1]),
        night_hours=SITE.night_hours(), flats=flats, nights=observed,
        empty_nights=[n for n in by_night if by_night[n] not in observed],
        alerts_by_rule={rule: dict(c) for rule, c in tally.by_rule.items()},
        acknowledge=Durations.of(tally.ack_seconds),
        resolve=Durations.of(tally.resolve_seconds),
        ack_seconds=tally.ack_seconds, resolve_seconds=tally.resolve_seconds,
        activity={n.night: {} for n in observed},
        staff_time=estimate(Assumptions(), flats, len(observed), tally.visits,
                            sum(handling) / len(handling) if handling else None, rest,
                            unhandled=tally.unhandled),
        quiet_situations=tally.quiet, calls=tally.visits, unhandled_calls=tally.unhandled,
        needless_calls=tally.needless_calls)


def report_of(f: SiteFigures) -> BenefitReport:
    return BenefitReport(f, compare([f]), datetime(2026, 12, 6, 6, 30, tzinfo=UTC))


def test_every_unresolved_alert_is_a_visit_and_frees_no_time() -> None:
    # 8 flats, 3 rounds of 2 minutes: 48 minutes of rounds a night. 20 alerts a night that
    # nobody resolved cost 20 visits x 8 minutes (assumed, nothing measured) = 160 minutes.
    rows = [alert("left_flat", None, night, m, acked=False)
            for night in NIGHTS for m in range(20)]
    staff = figures(rows).staff_time
    assert staff.visits_per_night == 20
    assert staff.unhandled_per_night == 20
    assert staff.freed_hours_per_night == pytest.approx((48 - 160) / 60, abs=0.01)
    assert staff.freed_hours_per_night < 0 and staff.freed_hours_per_year < 0
    assert staff.basis["freed_hours_per_night"] == "estimate"
    assert staff.basis["handling_minutes"] == "assumed"


def test_a_quiet_situation_sent_nobody_and_is_neither_a_visit_nor_a_needless_call() -> None:
    # Each night: 10 outings back in time (quiet, never a call), one call nobody took and
    # one that was a false alarm.
    rows = [alert("left_flat", "cleared_automatically", night, m, acked=False, called=False)
            for night in NIGHTS for m in range(10)]
    rows += [alert("left_flat", None, night, 30, acked=False) for night in NIGHTS]
    rows += [alert("bed_exit_not_back", "false_alarm", night, 40) for night in NIGHTS]
    # and three outings still going at the end of the data: quiet, open, nobody called
    rows += [alert("left_flat", None, NIGHTS[1], 50 + m, acked=False, called=False)
             for m in range(3)]
    f = figures(rows)
    assert f.staff_time.visits_per_night == 2 and f.staff_time.unhandled_per_night == 1
    assert (f.quiet_situations, f.needless_calls) == (23, 2)
    values = pilot_values(f, site_economics(load_settings(), f), None)
    # One call a night nobody handled: the handled calls (all false alarms) stand for it.
    assert values["needless_per_night"] == (2.0, True)
    text = visible_text(render_html(report_of(f)))
    assert re.search(r"Stille situationer pr\. nat \(vist på tavlen, intet kald\)\s+11,50", text)
    assert "2 alarmer blev aldrig håndteret" in text
    assert re.search(r"Alarmbesøg pr\. nat \(hvert kald om en beboer\)\s+2,00", text)


def test_handled_and_unhandled_alerts_count_alike_as_visits() -> None:
    rows = [alert("left_flat", "help_given", NIGHTS[0], 10),
            alert("bed_exit_not_back", None, NIGHTS[0], 20),
            alert("common_motion", "cleared_automatically", NIGHTS[1], 30),
            alert("sensor_offline", "cleared_automatically", NIGHTS[1], 40)]
    staff = figures(rows).staff_time
    assert staff.visits_per_night == 1.5  # three resident alerts over two nights
    assert staff.unhandled_per_night == 0.5
    assert staff.handling_measured and staff.handling_minutes == 7


def test_noisy_unattended_site_does_not_rank_above_a_quiet_one() -> None:
    noisy = figures([alert("left_flat", None, night, m, acked=False)
                     for night in NIGHTS for m in range(30)])
    quiet = figures([alert("left_flat", "help_given", NIGHTS[0], 5)])
    quiet.site, quiet.name = "solsikken", "Solsikken"
    ranking = compare([noisy, quiet])
    assert [r["site"] for r in ranking.rows] == ["solsikken", "havnely"]


def test_a_night_without_any_data_is_not_counted() -> None:
    # Two simulated nights asked for up to the morning after: the third evening is empty.
    nights = [*NIGHTS, NIGHTS[-1] + timedelta(days=1)]
    by_night = {n: NightFigures(n) for n in nights}
    for n in NIGHTS:
        by_night[n].flats_reporting = 8
    assert [n for n in nights if has_data(by_night[n], {})] == NIGHTS
    assert has_data(NightFigures(nights[-1]), {23: 2})  # activity alone is data
    f = figures([alert("left_flat", "help_given", NIGHTS[0], 5)], nights=nights, reporting=0)
    assert len(f.nights) == 1 and len(f.empty_nights) == 2


def test_danish_report_has_no_english_left_and_says_what_is_assumed() -> None:
    rows = [alert("left_flat", "help_given", NIGHTS[0], 10),
            alert("bed_exit_not_back", None, NIGHTS[1], 20, acked=False)]
    page = render_html(report_of(figures(rows)))
    text = visible_text(page)
    assert '<html lang="da">' in page
    assert not english_left(text), english_left(text)
    assert "Gevinstvurdering: Havnely" in text
    assert "1 alarm blev aldrig håndteret" in text
    assert "estimat (bygger på antagelser)" in text and "antaget" in text and "målt" in text
    assert "1. december 2026" in text
    assert page.count("<svg") == 4


def test_english_report_is_the_alternative() -> None:
    page = render_html(report_of(figures([alert("left_flat", None, NIGHTS[0], 1),
                                          alert("left_flat", None, NIGHTS[1], 1)])), "en")
    text = visible_text(page)
    assert '<html lang="en">' in page
    assert "Benefit evaluation: Havnely" in text
    assert "2 alerts were never handled" in text
    assert "Gevinstvurdering" not in text and "alarmer" not in text


def test_response_times_without_acknowledgements_say_so_instead_of_an_empty_plot() -> None:
    rows = [alert("left_flat", None, NIGHTS[0], 5, acked=False)]
    page = render_html(report_of(figures(rows)))
    assert "ingen kvitteringer i perioden" in visible_text(page)
    assert page.count("<svg") == 3
    assert "no acknowledgements in the period" in visible_text(
        render_html(report_of(figures(rows)), "en"))


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")
def test_danish_pdf_text_extracts_in_danish(tmp_path: Path) -> None:
    rows = [alert("left_flat", None, NIGHTS[0], 5, acked=False) for _ in range(30)]
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(render_pdf(report_of(figures(rows))))
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert "Gevinstvurdering: Havnely" in text
    assert "Personaletimer frigjort pr. nat" in text
    assert "ingen kvitteringer i perioden" in text
    assert "30 alarmer blev aldrig håndteret" in text
    assert "estimat (bygger på antagelser)" in text
    assert "−" in text  # the freed time is negative and printed so
    assert not english_left(text), english_left(text)


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")
def test_pdf_has_the_measured_rounds_beside_the_baseline_and_the_questionnaire(
        tmp_path: Path) -> None:
    f = figures([alert("left_flat", "help_given", NIGHTS[0], 5)])
    baseline = [date(2026, 11, 20), date(2026, 11, 21)]
    f.rounds = RoundsByNight(Period(baseline[0], baseline[-1]),
                             {baseline[0]: (4, 32), baseline[1]: (3, 24)},
                             {NIGHTS[0]: (1, 8), NIGHTS[1]: (0, 0)})
    f.staff_time = estimate(Assumptions(), 8, 2, 1, 7.0, 0.9, rounds=f.rounds.measured)
    f.experience = Experience(
        answers=6, k=5, question_answers={"calm": 6, "workload": 6, "trust": 5,
                                          "residents_rest": 6},
        question_means={"calm": 4.5, "workload": 3.0, "trust": 4.2, "residents_rest": 4.0},
        comments=["Rolig nat, kun én tur ud"], outcome_notes=3, outcome_flats=2,
        self_reliance_mean=3.5, quality_of_life_mean=4.0)
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(render_pdf(report_of(f)))
    text = subprocess.run(["pdftotext", "-f", "3", "-l", "3", "-layout", str(pdf), "-"],
                          capture_output=True, text=True, check=True).stdout
    assert "Runder: baseline og pilot" in text
    baseline_row = next(line for line in text.splitlines() if line.startswith("Baseline"))
    # nights, rounds, flat-checks; per night: rounds, flat-checks; measured
    assert baseline_row.split()[-6:] == ["2", "7", "56", "3,50", "28,00", "målt"]
    assert "Pilot" in text.split(baseline_row)[1]
    assert "Natten føltes rolig" in text and "4,50 af 5 (6 svar)" in text
    assert "Rolig nat, kun én tur ud" in text
    assert not english_left(text), english_left(text)


def handover(alerts: list[HandoverAlert], sensors: list[SensorProblem] | None = None,
             rested: list[str] | None = None) -> Handover:
    start, end = SITE.night_window(NIGHTS[0])
    return Handover(SITE, NIGHTS[0], start, end, alerts, rested or [], 40, sensors or [],
                    datetime(2026, 12, 2, 6, 10, tzinfo=UTC))


def at(hour: int, minute: int) -> datetime:
    day = NIGHTS[0] if hour >= 12 else NIGHTS[0] + timedelta(days=1)
    return datetime.combine(day, time(hour, minute), TZ)


def test_handover_groups_by_flat_and_situation_with_event_times_exceptions_first() -> None:
    alerts = [HandoverAlert("Lejl. 3", "bed_exit_not_back", 1, at(23, 5), "false_alarm", 2.0),
              HandoverAlert("Lejl. 3", "bed_exit_not_back", 1, at(2, 40), "no_action_needed",
                            3.5),
              HandoverAlert("Lejl. 7", "left_flat", 1, at(3, 12), "unresolved", None),
              HandoverAlert("Lejl. 1", "left_flat", 1, at(4, 1), "help_given", 1.0)]
    h = handover(alerts, [SensorProblem("Lejl. 2", "bed", "silent", None, None)],
                 ["Lejl. 4", "Lejl. 5"])
    page = render_handover(h)
    text = visible_text(page)
    assert not english_left(text), english_left(text)
    assert "Natten fra 1. december til 2. december 2026 (22:00–07:00)" in text
    assert "4 alarmer i 3 rum" in text and "1 ikke håndteret" in text
    # the two flats with exceptions first (in the order they happened), then the rest
    order = [text.index(room) for room in ("Lejl. 7", "Lejl. 1", "Lejl. 3")]
    assert order == sorted(order)
    assert "23:05, 02:40" in text  # when it happened, grouped on one line
    assert "Ikke håndteret" in text and "Hjælp givet" in text
    assert "Seng" in text and "sendte intet hele natten" in text


def test_handover_folds_a_long_night_to_fit_one_screen() -> None:
    alerts = [HandoverAlert(f"Lejl. {i}", "left_flat", 1, at(23, i % 60), "false_alarm", 2.0)
              for i in range(20)]
    page = render_handover(handover(alerts))
    shown, folded = page.split("<details>", 1)
    assert shown.count("<tr") == 1 + 8  # header and eight situations
    assert "12 flere ..." in visible_text(page)
    assert folded.count("<tr") == 12


def test_handover_in_english() -> None:
    page = render_handover(handover([HandoverAlert("Flat 3", "left_flat", 1, at(1, 15),
                                                   "help_given", 1.0)]), "en")
    text = visible_text(page)
    assert "The night from 1 December to 2 December 2026" in text and "1 alert in 1 room" in text
    assert "01:15" in text and "Overlevering" not in text
