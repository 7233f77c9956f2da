"""The ways a call reaches a person's pocket, behind one small interface.

- ``Channel``: ``reachable`` (has the person an address on it?) and ``deliver`` (one try,
  raising ``ChannelFailed`` with what went wrong).
- ``EmailChannel``: SMTP (stdlib ``smtplib``) to the account's e-mail address: a mail
  server, or the SMS gateway of a phone operator that takes e-mail.
- ``PushChannel``: Web Push to the account's own subscriptions (``api.push.PushSender``,
  which retries each subscription itself).
- ``deliver_with_retry``: tries a channel with a doubling pause, and says how it went; a
  failure is returned (and logged), never dropped: the caller shows it on the alert. Before
  each try it asks the caller whether the message is still wanted (a call taken on the
  board meanwhile is not sent on: "cancelled").

Blocking (smtplib, requests): call them in a thread, never on the event loop.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Literal, Protocol

import psycopg
from psycopg_pool import ConnectionPool

from api.push import PushMessage, PushSender
from core.errors import NatteroError
from core.metrics import ESCALATION_FAILURES
from core.settings import Settings
from ingest import push as push_store
from ingest import roster as store

log = logging.getLogger(__name__)

__all__ = ["Channel", "ChannelFailed", "Delivery", "EmailChannel", "PushChannel",
           "deliver_with_retry"]

ChannelName = Literal["email", "push"]


class ChannelFailed(NatteroError):
    """One try of a channel failed; ``retry``: another try may help."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class Channel(Protocol):
    name: ChannelName

    def reachable(self, conn: psycopg.Connection, username: str, site: str) -> bool: ...

    def deliver(self, username: str, message: PushMessage) -> None: ...


@dataclass(frozen=True, slots=True)
class Delivery:
    status: Literal["sent", "failed", "cancelled"]
    attempts: int
    error: str | None = None


class EmailChannel:
    name: ChannelName = "email"

    def __init__(self, pool: ConnectionPool, settings: Settings) -> None:
        self._pool = pool
        self._settings = settings

    def reachable(self, conn: psycopg.Connection, username: str, site: str) -> bool:
        return self._settings.smtp_host is not None and \
            store.contact_email(conn, username) is not None

    def deliver(self, username: str, message: PushMessage) -> None:
        s = self._settings
        with self._pool.connection() as conn:
            address = store.contact_email(conn, username)
        if address is None or s.smtp_host is None:
            raise ChannelFailed(f"account {username!r} has no e-mail address any more; set it "
                                f"with: nattero roster contact {username} --email ADDRESS",
                                retry=False)
        mail = EmailMessage()
        mail["From"] = s.smtp_from
        mail["To"] = address
        mail["Subject"] = message.title
        mail["X-Nattero-Key"] = message.key
        mail.set_content(message.body)
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_s) as smtp:
                if s.smtp_starttls:
                    # smtplib's own default context checks no certificate: anyone on the
                    # way could take the password. Verify it, and its name.
                    smtp.starttls(context=ssl.create_default_context(
                        cafile=None if s.smtp_ca_file is None else str(s.smtp_ca_file)))
                if s.smtp_username and s.smtp_password:
                    smtp.login(s.smtp_username, s.smtp_password)
                smtp.send_message(mail)
        except smtplib.SMTPResponseException as exc:
            raise ChannelFailed(f"mail server {s.smtp_host}:{s.smtp_port} answered "
                                f"{exc.smtp_code}: {exc.smtp_error!r}") from exc
        except ssl.SSLCertVerificationError as exc:
            raise ChannelFailed(f"mail server {s.smtp_host}:{s.smtp_port} showed a certificate "
                                f"this installation does not trust ({exc.verify_message}); set "
                                "NATTERO_SMTP_CA_FILE to the CA that signed it", retry=False
                                ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise ChannelFailed(f"mail server {s.smtp_host}:{s.smtp_port} unreachable: "
                                f"{type(exc).__name__}: {exc}") from exc


class PushChannel:
    name: ChannelName = "push"

    def __init__(self, sender: PushSender) -> None:
        self._sender = sender

    def reachable(self, conn: psycopg.Connection, username: str, site: str) -> bool:
        return bool(push_store.recipients(conn, site, username))

    def deliver(self, username: str, message: PushMessage) -> None:
        result = self._sender.send(message, username)
        if result.sent == 0 and result.failed:
            # The sender retried each subscription already (push_attempts).
            raise ChannelFailed(f"no push reached {username}'s phones ({result.failed} "
                                f"failed; see push_deliveries)", retry=False)


def deliver_with_retry(channel: Channel, username: str, message: PushMessage,
                       attempts: int, retry_s: float,
                       sleep: Callable[[float], None] = time.sleep,
                       wanted: Callable[[], bool] = lambda: True) -> Delivery:
    """Up to ``attempts`` tries with a doubling pause; ``wanted`` is asked before every
    try, and a message no longer wanted is not tried (again): "cancelled"."""
    error = ""
    attempt = 0
    for attempt in range(1, attempts + 1):
        if not wanted():
            log.info("%s %s to %s not retried: no longer wanted after %d attempt(s)",
                     channel.name, message.key, username, attempt - 1)
            return Delivery("cancelled", attempt - 1, error)
        try:
            channel.deliver(username, message)
        except ChannelFailed as exc:
            error = str(exc)[:500]
            log.warning("%s %s to %s failed (attempt %d of %d): %s", channel.name,
                        message.key, username, attempt, attempts, error)
            if not exc.retry:
                break
            if attempt < attempts:
                sleep(retry_s * 2 ** (attempt - 1))
        else:
            return Delivery("sent", attempt)
    ESCALATION_FAILURES.labels(channel=channel.name).inc()
    log.error("%s %s to %s given up after %d attempts: %s", channel.name, message.key,
              username, attempt, error)
    return Delivery("failed", attempt, error)
