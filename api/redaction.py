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

__all__ = ["LOGGERS", "TokenRedaction", "install", "redact"]

#: Loggers that write request lines or errors about requests.
LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error", "fastapi", "websockets")

_PATTERNS = (
    (re.compile(r"((?:access_)?token=)[^&\s\"']+", re.IGNORECASE), r"\1[redacted]"),
    (re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE), r"\1[redacted]"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), "[redacted-jwt]"),
)


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class TokenRedaction(logging.Filter):
    """Formats the record's message once, redacted, and keeps the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = TokenRedaction()


def install() -> None:
    """Attach the filter to the request loggers (idempotent). A logger's filter sees only
    records logged on that logger itself, so each is named."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
