"""Security headers on every HTTP response: pages, scripts, API answers and errors alike.

A pure ASGI middleware (not ``BaseHTTPMiddleware``): it only adds headers to the
``http.response.start`` message, so streamed responses and the WebSocket stream pass as
they are. The board keeps its token in ``localStorage``, so the policy's first job is that
no script runs unless it is one of the board's own files (``script-src 'self'``: no inline
script, no ``eval``, nothing from another host) and that no other site can frame a page
(``frame-ancestors 'none'``, clickjacking).

Styles may be inline: the reports are self-contained pages with a ``<style>`` element and
Matplotlib's SVG charts with ``style`` attributes, shown in a sandboxed ``srcdoc`` frame
that inherits the board's policy. Inline styles cannot run code.

``Strict-Transport-Security`` is sent only on responses served over HTTPS (uvicorn with a
certificate, or a reverse proxy that sets ``X-Forwarded-Proto`` for a trusted
``--forwarded-allow-ips``): browsers ignore it over plain HTTP, and sending it there would
only mislead someone reading the headers.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_SECURITY_POLICY", "HSTS", "SecurityHeaders"]

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-src 'self' blob:",
    "frame-ancestors 'none'",
))
#: Two years, the preload list's minimum; subdomains too (a municipality's host names).
HSTS = "max-age=63072000; includeSubDomains"

_ALWAYS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),  # for browsers older than frame-ancestors
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
)


class SecurityHeaders:
    """Adds the headers above to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = _ALWAYS + (((b"strict-transport-security", HSTS.encode()),)
                           if scope.get("scheme") == "https" else ())

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend((name, value) for name, value in extra if name not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
