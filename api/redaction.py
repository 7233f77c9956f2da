"""Keeps bearer tokens out of the server's logs, whatever logs a request.

The board no longer sends its token in a URL, but an old board, a script or a proxy
might: uvicorn would then write it into the access log and the WebSocket log line
(``"WebSocket /api/v1/alerts/stream?token=..."``). ``TokenRedaction`` rewrites any
``token=...`` query value, ``Bearer ...`` credential or JWT-shaped string in a record
before a handler sees it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

__all__ = ["LOGGERS", "TokenRedaction", "install", "redact"]

#: Loggers that write request lines or errors about requests.
LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error", "fastapi", "websockets")

_PATTERNS = (
    (re.compile(r"((?:access_)?token=)[^&\s\"']+", re.IGNORECASE), r"\1[redacted]"),
    (re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE), r"\1[redacted]"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), "[redacted-jwt]"),
    # The single sign-on callback's authorization code (api/routes/oidc.py): used once and
    # useless without the client secret and PKCE verifier, but no log needs it either.
    (re.compile(r"(/api/v1/auth/oidc/callback\?[^\s\"']*?\bcode=)[^&\s\"']+"),
     r"\1[redacted]"),
)


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class TokenRedaction(logging.Filter):
    """Redacts the record's message and string arguments in place and keeps the record.

    The arguments keep their shape: uvicorn's access formatter reads them one by one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg
                                for arg in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {key: redact(value) if isinstance(value, str) else value
                           for key, value in record.args.items()}
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:  # a token inside an argument of another type
            record.msg, record.args = cleaned, ()
        return True


_FILTER = TokenRedaction()


def install() -> None:
    """Attach the filter to the request loggers (idempotent). A logger's filter sees only
    records logged on that logger itself, so each is named."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
