"""Nattero's message catalogue: Danish first, English the alternative.

The messages are written in English in the code and the templates (gettext's msgid); the
Danish catalogue ``core/locale/da/LC_MESSAGES/nattero.po`` translates them, with Danish
plural rules from its ``Plural-Forms`` header. The ``.po`` is the only source: it is
compiled in memory on first use (Babel), so a fresh clone and an installed wheel work
alike and no compiled ``.mo`` can go stale. A message missing from the catalogue shows in
English; ``tests/test_i18n.py`` fails when one is.

Numbers and dates are formatted with Babel for the language's locale (``da_DK``: decimal
comma, "6. december 2026"). Never imports anything of the project.
"""

from __future__ import annotations

import io
from datetime import date, datetime, tzinfo
from functools import cache
from importlib.resources import files
from typing import Literal

from babel import Locale
from babel.dates import format_date, format_datetime, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import NullTranslations, Translations

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "Language", "Localizer", "localizer", "mark",
           "negotiate", "translations"]

Language = Literal["da", "en"]
LANGUAGES: tuple[Language, ...] = ("da", "en")
DEFAULT_LANGUAGE: Language = "da"
_LOCALES: dict[Language, str] = {"da": "da_DK", "en": "en_GB"}
DOMAIN = "nattero"


def mark(message: str) -> str:
    """Marks ``message`` for the catalogue where it is defined (a table of names); it is
    translated where it is shown, with ``Localizer.gettext``."""
    return message


def catalogue_path(language: Language) -> str:
    return f"locale/{language}/LC_MESSAGES/{DOMAIN}.po"


@cache
def translations(language: Language) -> NullTranslations:
    """The compiled catalogue of ``language`` (English: the msgids themselves)."""
    if language == "en":
        return NullTranslations()
    source = files("core").joinpath(catalogue_path(language))
    with source.open("rb") as po:
        catalog = read_po(po, locale=_LOCALES[language], domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def negotiate(requested: str | None, accept_language: str | None = None) -> Language:
    """The language to answer in: ``requested`` (``?lang=``/``--lang``) if it is one we
    have, else the best of an ``Accept-Language`` header, else Danish."""
    if requested:
        short = requested.strip().lower()[:2]
        if short in LANGUAGES:
            return short
    if accept_language:
        ranked: list[tuple[float, int, str]] = []
        for position, part in enumerate(accept_language.split(",")):
            tag, _, params = part.strip().partition(";")
            quality = 1.0
            if params.strip().startswith("q="):
                try:
                    quality = float(params.strip()[2:])
                except ValueError:
                    quality = 0.0
            ranked.append((-quality, position, tag.strip().lower()[:2]))
        for quality, _, short in sorted(ranked):
            if quality < 0 and short in LANGUAGES:
                return short
    return DEFAULT_LANGUAGE


class Localizer:
    """Messages, numbers and dates in one language; what templates and renderers use."""

    def __init__(self, language: Language) -> None:
        self.language: Language = language
        self.locale = Locale.parse(_LOCALES[language])
        self._t = translations(language)

    def gettext(self, message: str, **values: object) -> str:
        text = self._t.gettext(message)
        return text.format(**values) if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: object) -> str:
        """``singular``/``plural`` may use ``{n}`` (formatted as a number) and ``values``."""
        text = self._t.ngettext(singular, plural, n)
        return text.format(n=self.number(n), **values)

    def number(self, value: float | int | None, digits: int = 1) -> str:
        if value is None:
            return "–"
        if isinstance(value, int):
            return format_decimal(value, locale=self.locale)
        pattern = "#,##0." + "0" * digits if digits else "#,##0"
        # Babel writes U+2212 for a minus only in some locales; a plain "-" would read as a
        # dash in Danish text, so both languages get the real minus sign.
        return format_decimal(value, format=pattern, locale=self.locale).replace("-", "−")

    def percent(self, share: float | None) -> str:
        if share is None:
            return "–"
        return format_percent(share, format="#,##0.0 %", locale=self.locale)

    def date(self, day: date, form: str = "long") -> str:
        return format_date(day, format=form, locale=self.locale)

    def clock(self, moment: datetime | None, tz: tzinfo) -> str:
        return "–" if moment is None else format_time(moment, "HH:mm", tzinfo=tz,
                                                      locale=self.locale)

    def moment(self, moment: datetime, tz: tzinfo) -> str:
        return format_datetime(moment, "d. MMMM y, HH:mm" if self.language == "da"
                               else "d MMMM y, HH:mm", tzinfo=tz, locale=self.locale)


@cache
def localizer(language: Language) -> Localizer:
    return Localizer(language)
