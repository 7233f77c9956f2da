"""Every error is JSON ``{"detail": "<what went wrong and what to do>"}``.

Validation errors keep the field list in ``errors`` for programs but lead with one
sentence for people; unexpected exceptions are logged with the request and answered
with a generic 500 that leaks nothing.

The ``detail`` is in the request's language (``api.language``: ``?lang=``, else
``Accept-Language``, else Danish), from the message catalogue (``core.i18n``). Raise a
``Refusal`` with an English message template and its values, and it is translated as a
whole: ``Refusal(404, "site {site} does not exist", site=site)``. A plain
``HTTPException`` whose detail is exactly a catalogue message is translated too; any
other detail is sent as it is. Messages shown in a browser never name a CLI flag.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import psycopg
import sqlalchemy.exc
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.language import of_request
from core.i18n import Localizer, localizer, mark

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    detail: str


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorBody(BaseModel):
    detail: str
    errors: list[FieldError] = Field(default_factory=list)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for the error codes a route may answer."""
    text = {400: "The body could not be parsed", 401: "Not logged in, or the token expired",
            403: "The role may not do this",
            404: "Not found, or not visible to the caller", 409: "Conflicts with current state",
            422: "The request is not valid", 429: "Too many attempts; try again later",
            503: "A dependency (database, broker) is unavailable"}
    return {code: {"model": ValidationErrorBody if code == 422 else ErrorBody,
                   "description": text[code]} for code in codes}


class Refusal(StarletteHTTPException):
    """An HTTP error whose message is translated as a whole: ``message`` is the English
    catalogue message with ``{name}`` fields, ``values`` fill them in. ``detail`` holds
    the English text, for logs and for code that reads it."""

    def __init__(self, status_code: int, message: str,
                 given: Mapping[str, object] | None = None, *,
                 headers: dict[str, str] | None = None, **values: object) -> None:
        values = {**(given or {}), **values}
        super().__init__(status_code, message.format(**values) if values else message,
                         headers)
        self.message = message
        self.values = values

    def text(self, t: Localizer) -> str:
        return t.gettext(self.message, **self.values)


class Invalid(ValueError):
    """A request body's own check failed (a pydantic ``model_validator``): ``message`` is the
    English catalogue message with ``{name}`` fields, ``values`` fill them in, so the 422's
    detail is in the reader's language like every other refusal."""

    def __init__(self, message: str, **values: object) -> None:
        super().__init__(message.format(**values) if values else message)
        self.message = message
        self.values = values


# Plain details raised as they are elsewhere (api/routes/auth.py, api/security.py,
# api/deps.py, FastAPI's own), translated by exact match: listed so the catalogue has them.
PLAIN_MESSAGES = (
    mark("wrong username or password"),
    mark("the token has expired; log in again"),
    mark("the token is not valid; log in again"),
    mark("not logged in: send a bearer token from POST /api/v1/auth/token"),
    mark("the account of this token no longer exists or is disabled"),
    mark("give at least one site"),
    mark("this board was revoked by an admin; enrol it again with a new pairing code"),
    mark("Not Found"),
    mark("Method Not Allowed"),
    mark("Not authenticated"),
)


def _answer(request: Request, exc: Exception) -> tuple[Localizer, dict[str, str]]:
    language = of_request(request)
    return localizer(language), {"Content-Language": language}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    t, headers = _answer(request, exc)
    if isinstance(exc, Refusal):
        detail: Any = exc.text(t)
    elif isinstance(exc.detail, str):
        detail = t.gettext(exc.detail)  # exact catalogue messages only; others as they are
    else:
        detail = exc.detail
    return JSONResponse({"detail": detail}, status_code=exc.status_code,
                        headers={**(exc.headers or {}), **headers})


_WHERE = {"body": mark("field '{name}'"), "query": mark("query parameter '{name}'"),
          "path": mark("path parameter '{name}'"), "header": mark("header '{name}'")}

# Pydantic's commonest problems in words a person reads; others keep pydantic's English.
_PROBLEMS = {
    "missing": mark("is required"),
    "string_pattern_mismatch": mark("does not have the expected form"),
    "date_parsing": mark("is not a date (YYYY-MM-DD)"),
    "date_from_datetime_parsing": mark("is not a date (YYYY-MM-DD)"),
    "float_parsing": mark("is not a number"),
    "int_parsing": mark("is not a whole number"),
    "greater_than_equal": mark("must be at least {ge}"),
    "less_than_equal": mark("must be at most {le}"),
    "string_too_long": mark("is too long (at most {max_length} characters)"),
    "string_too_short": mark("is too short (at least {min_length} characters)"),
    "enum": mark("must be one of: {expected}"),
    "literal_error": mark("must be one of: {expected}"),
}


def _where(t: Localizer, loc: tuple[Any, ...]) -> str:
    if not loc:
        return t.gettext("request")
    head, *rest = loc
    name = ".".join(str(part) for part in rest) or str(head)
    return t.gettext(_WHERE[str(head)], name=name) if str(head) in _WHERE else name


def _problem(t: Localizer, error: Any) -> str:
    kind = str(error.get("type", ""))
    cause = (error.get("ctx") or {}).get("error")
    if kind == "value_error" and isinstance(cause, Invalid):
        return t.gettext(cause.message, **cause.values)
    context = {key: str(value) for key, value in (error.get("ctx") or {}).items()}
    if kind in _PROBLEMS:
        try:
            return t.gettext(_PROBLEMS[kind], **context)
        except KeyError:  # a pydantic version without that context value
            pass
    return str(error.get("msg", "invalid"))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    t, headers = _answer(request, exc)
    errors = [{"loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
               "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
              for e in exc.errors()]
    first = exc.errors()[0] if exc.errors() else {}
    loc = tuple(first.get("loc", ()))
    # A check of the body as a whole (``Invalid``) names no field: its message says it all.
    message = (_problem(t, first) if loc == ("body",)
               else f"{_where(t, loc)}: {_problem(t, first)}")
    if len(errors) > 1:
        message += " " + t.ngettext("(and {n} more problem, see 'errors')",
                                    "(and {n} more problems, see 'errors')", len(errors) - 1)
    return JSONResponse({"detail": message, "errors": errors}, headers=headers,
                        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable during %s %s: %s", request.method, request.url.path, exc)
    t, headers = _answer(request, exc)
    return JSONResponse(
        {"detail": t.gettext("the database is not reachable right now; try again shortly")},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "5", **headers})


async def _unstorable_value(request: Request, exc: Exception) -> JSONResponse:
    # A value that passed validation but that PostgreSQL cannot store (e.g. a NUL in a form
    # field): the request's fault, not the server's; nothing was written.
    cause = exc.orig if isinstance(exc, sqlalchemy.exc.DBAPIError) else exc
    reason = str(cause).strip().splitlines()[0] if str(cause).strip() else "invalid value"
    log.info("refused %s %s: %s", request.method, request.url.path, reason)
    t, headers = _answer(request, exc)
    return JSONResponse(
        {"detail": t.gettext("a value in the request cannot be stored: {reason}", reason=reason)},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, headers=headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
    t, headers = _answer(request, exc)
    return JSONResponse({"detail": t.gettext("internal error; it has been logged, please tell "
                                             "the operator if it happens again")},
                        status_code=status.HTTP_500_INTERNAL_SERVER_ERROR, headers=headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(PoolTimeout, _database_unavailable)
    app.add_exception_handler(psycopg.OperationalError, _database_unavailable)
    app.add_exception_handler(sqlalchemy.exc.OperationalError, _database_unavailable)
    app.add_exception_handler(psycopg.DataError, _unstorable_value)
    app.add_exception_handler(sqlalchemy.exc.DataError, _unstorable_value)
    app.add_exception_handler(Exception, _unexpected)
