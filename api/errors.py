"""Every error is JSON ``{"detail": "<what went wrong and what to do>"}``.

Validation errors keep the field list in ``errors`` for programs but lead with one
sentence for people; unexpected exceptions are logged with the request and answered
with a generic 500 that leaks nothing.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import sqlalchemy.exc
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, Field

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


def _where(loc: tuple[Any, ...]) -> str:
    if not loc:
        return "request"
    head, *rest = loc
    name = ".".join(str(part) for part in rest) or str(head)
    return {"body": f"field {name!r}", "query": f"query parameter {name!r}",
            "path": f"path parameter {name!r}", "header": f"header {name!r}"}.get(
        str(head), name)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
               "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
              for e in exc.errors()]
    first = exc.errors()[0] if exc.errors() else {}
    message = f"{_where(tuple(first.get('loc', ())))}: {first.get('msg', 'invalid')}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem(s), see 'errors')"
    return JSONResponse({"detail": message, "errors": errors},
                        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable during %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse({"detail": "the database is not reachable right now; try again shortly"},
                        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": "5"})


async def _unstorable_value(request: Request, exc: Exception) -> JSONResponse:
    # A value that passed validation but that PostgreSQL cannot store (e.g. a NUL in a form
    # field): the request's fault, not the server's; nothing was written.
    cause = exc.orig if isinstance(exc, sqlalchemy.exc.DBAPIError) else exc
    reason = str(cause).strip().splitlines()[0] if str(cause).strip() else "invalid value"
    log.info("refused %s %s: %s", request.method, request.url.path, reason)
    return JSONResponse({"detail": f"a value in the request cannot be stored: {reason}"},
                        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal error; it has been logged, please tell the "
                                   "operator if it happens again"},
                        status_code=status.HTTP_500_INTERNAL_SERVER_ERROR)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(PoolTimeout, _database_unavailable)
    app.add_exception_handler(psycopg.OperationalError, _database_unavailable)
    app.add_exception_handler(sqlalchemy.exc.OperationalError, _database_unavailable)
    app.add_exception_handler(psycopg.DataError, _unstorable_value)
    app.add_exception_handler(sqlalchemy.exc.DataError, _unstorable_value)
    app.add_exception_handler(Exception, _unexpected)
