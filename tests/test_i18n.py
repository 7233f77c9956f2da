"""The message catalogue: complete, with Danish plurals and number formats, and chosen
the way a browser asks (``?lang=``, ``Accept-Language``, else Danish)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

from core.i18n import catalogue_path, localizer, negotiate

REPO = Path(__file__).resolve().parent.parent
# The names the code marks messages with: the page's Localizer, the templates' _/ngettext,
# the tables' mark(), and the errors built from a message template.
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "mark": None, "Refusal": (2,),
            "PeriodError": None, "UnknownSite": None,
            "BacktestError": None, "ProposalError": None, "PeriodTooLong": None}


def used_messages() -> set[str]:
    found: set[str] = set()
    for folder in ("core", "api", "evaluation", "backtest", "provisioning"):
        for path in sorted((REPO / folder).rglob("*.py")):
            with path.open("rb") as source:
                for _, message, _, _ in extract("python", source, KEYWORDS):
                    found.add(message if isinstance(message, str) else message[0])
    for path in sorted((REPO / "evaluation" / "templates").glob("*.html")):
        with path.open("rb") as source:
            for _, _, text, _ in babel_extract(source, list(KEYWORDS), [], {}):
                if isinstance(text, str):
                    found.add(text)
                elif text:
                    found.add(str(text[0]))
    return found


def danish_catalogue() -> dict[str, object]:
    with (REPO / "core" / catalogue_path("da")).open("rb") as po:
        return {str(m.id if isinstance(m.id, str) else m.id[0]): m.string
                for m in read_po(po) if m.id}


@pytest.mark.pure
def test_every_message_shown_has_a_danish_translation() -> None:
    used = used_messages()
    catalogue = danish_catalogue()
    assert len(used) > 100  # the extraction found the code's messages at all
    missing = sorted(m for m in used if not catalogue.get(m))
    assert not missing, f"add these to {catalogue_path('da')}: {missing}"


@pytest.mark.pure
def test_translations_keep_the_messages_placeholders() -> None:
    for message, translation in danish_catalogue().items():
        forms = translation if isinstance(translation, tuple) else (translation,)
        wanted = set(re.findall(r"\{(\w+)\}", message))
        for form in forms:
            assert set(re.findall(r"\{(\w+)\}", str(form))) <= wanted | {"n"}, message
            assert wanted - {"n"} <= set(re.findall(r"\{(\w+)\}", str(form))), message


@pytest.mark.pure
def test_danish_plurals_come_from_the_catalogue() -> None:
    da, en = localizer("da"), localizer("en")
    assert da.ngettext("{n} alert", "{n} alerts", 1) == "1 alarm"
    assert da.ngettext("{n} alert", "{n} alerts", 2) == "2 alarmer"
    assert da.ngettext("{n} alert", "{n} alerts", 0) == "0 alarmer"
    assert da.ngettext("{n} more ...", "{n} more ...", 12) == "12 flere ..."
    assert en.ngettext("{n} alert", "{n} alerts", 1) == "1 alert"
    assert en.ngettext("{n} alert", "{n} alerts", 1200) == "1,200 alerts"


@pytest.mark.pure
def test_numbers_and_dates_are_written_the_danish_way() -> None:
    from datetime import UTC, date, datetime
    from zoneinfo import ZoneInfo

    da = localizer("da")
    assert da.number(-19.87, 2) == "−19,87"
    assert da.number(4380) == "4.380"
    assert da.percent(0.456) == "45,6 %"
    assert da.date(date(2026, 12, 6)) == "6. december 2026"
    night = datetime(2026, 12, 5, 22, 31, tzinfo=UTC)
    assert da.clock(night, ZoneInfo("Europe/Copenhagen")) == "23:31"
    assert localizer("en").number(-19.87, 2) == "−19.87"


@pytest.mark.pure
@pytest.mark.parametrize(("lang", "header", "expected"), [
    (None, None, "da"),
    ("en", "da", "en"),
    ("fr", None, "da"),
    (None, "en-US,en;q=0.9", "en"),
    (None, "de-DE,de;q=0.9,en;q=0.8,da;q=0.7", "en"),
    (None, "da-DK,da;q=0.9,en-US;q=0.8", "da"),
    (None, "en;q=0.5,da;q=0.9", "da"),
    (None, "fr-FR", "da"),
    (None, "en;q=oops,da", "da"),
    (None, "", "da"),
])
def test_the_language_is_chosen_like_a_browser_asks(
        lang: str | None, header: str | None, expected: str) -> None:
    assert negotiate(lang, header) == expected
