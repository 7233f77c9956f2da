"""The language of an answer a person reads: ``?lang=da|en``, else ``Accept-Language``,
else Danish (``core.i18n.negotiate``). Pages and error messages use the same choice."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from core.i18n import Language, negotiate


def of_request(request: Request) -> Language:
    return negotiate(request.query_params.get("lang"), request.headers.get("accept-language"))


def _language(request: Request, lang: Annotated[str | None, Query(
        pattern="^(da|en)$", description="da (default) or en; else Accept-Language")] = None
              ) -> Language:
    return of_request(request)


LanguageDep = Annotated[Language, Depends(_language)]
