"""Sends digests over SMTP, one message per digest message the ledger hands over.

smtplib runs in a worker thread (``asyncio.to_thread``) with a timeout on every socket
operation, so a slow server never blocks the event loop nor holds a send for ever. What the
server says decides the outcome (RFC 5321): a 4xx reply is transient (greylisting, a full
queue, a rate limit) and is retried by the ledger; a 5xx reply is permanent (the address is
refused, the login is wrong) and pauses the destination until a human resumes it. A dropped
connection or a timeout is retried; once the whole message has been handed over (after DATA)
it may have been accepted, so it is retried marked "maybe sent".
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY

from adapters.email.render import digest_message, notice_message
from adapters.email.settings import KIND, EmailSettings, is_address
from bridge.delivery import (
    Destination,
    DigestItem,
    DigestRun,
    DigestSubscription,
    Notice,
    SendOutcome,
)

log = logging.getLogger(__name__)


class _Sending:
    """How far one send got: past DATA the server may have the message."""

    def __init__(self) -> None:
        self.data_started = False


class EmailPublisher:
    """Posts digests to ``mailto:ADDRESS`` destinations."""

    kind = KIND

    def __init__(
        self,
        settings: EmailSettings,
        *,
        smtp_factory: Callable[..., smtplib.SMTP] | None = None,
    ) -> None:
        self.settings = settings
        self.max_papers_per_message = settings.papers_per_message
        self._smtp_factory = smtp_factory
        self._tls_context: ssl.SSLContext | None = None

    async def send_digest(
        self,
        destination: Destination,
        items: Sequence[DigestItem],
        *,
        subscription: DigestSubscription | None = None,
        run: DigestRun | None = None,
    ) -> SendOutcome:
        if not is_address(destination.address):
            return SendOutcome.permanent(f"mailto:{destination.address} is not one plain address")
        message = digest_message(self.settings, destination.address, items, subscription, run)
        return await self.send(destination.address, message)

    async def send_notice(self, destination: Destination, notice: Notice) -> SendOutcome:
        if not is_address(destination.address):
            return SendOutcome.permanent(f"mailto:{destination.address} is not one plain address")
        return await self.send(
            destination.address, notice_message(self.settings, destination.address, notice)
        )

    async def send(self, to: str, message: EmailMessage) -> SendOutcome:
        sending = _Sending()
        try:
            await asyncio.to_thread(self._send_blocking, to, message, sending)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (550, b"refused"))
            return _reply_outcome(code, reply, f"recipient {to} refused")
        except smtplib.SMTPResponseException as exc:
            # A reply to the final dot that is not 250 means the server did not take it.
            return _reply_outcome(exc.smtp_code, exc.smtp_error, _what(exc))
        except smtplib.SMTPNotSupportedError as exc:
            return SendOutcome.permanent(f"SMTP server {self._where()}: {exc}")
        except ssl.SSLCertVerificationError as exc:
            # Not going away on its own: a wrong host name or a CA to add (ca_file).
            return SendOutcome.permanent(
                f"SMTP server {self._where()}: its TLS certificate is not trusted"
                f" ({exc.verify_message}); set outputs.email.ca_file for a private CA"
            )
        except (TimeoutError, smtplib.SMTPServerDisconnected, ssl.SSLError, OSError) as exc:
            reason = f"SMTP server {self._where()}: {_describe(exc)}"
            return SendOutcome.retry(reason, maybe_sent=sending.data_started)
        except smtplib.SMTPException as exc:
            # smtplib's own refusals without a reply code (no AUTH mechanism both sides know).
            return SendOutcome.permanent(f"SMTP server {self._where()}: {exc}")
        return SendOutcome.sent()

    def _where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        if self._smtp_factory is not None:
            return self._smtp_factory(settings)
        if settings.security == "tls":
            return smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=self._tls()
            )
        return smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)

    def _tls(self) -> ssl.SSLContext:
        # Made once: loading the system's CA bundle costs tens of milliseconds, and one
        # context serves every connection (wrapping sockets with it is thread-safe).
        if self._tls_context is None:
            context = ssl.create_default_context()
            if self.settings.ca_file:
                context.load_verify_locations(cafile=self.settings.ca_file)
            self._tls_context = context
        return self._tls_context

    def _send_blocking(self, to: str, message: EmailMessage, sending: _Sending) -> None:
        settings = self.settings
        smtp = self._connect()
        try:
            smtp.ehlo_or_helo_if_needed()
            if settings.security == "starttls":
                # Refuses to go on in the clear when the server offers no STARTTLS.
                smtp.starttls(context=self._tls())
                smtp.ehlo()
            if settings.username:
                assert settings.password is not None  # checked with the settings
                smtp.login(settings.username, settings.password)
            data = message.as_bytes(policy=SMTP_POLICY)
            code, reply = smtp.mail(settings.sender)  # 7-bit, ASCII addresses: no options
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, reply, settings.sender)
            code, reply = smtp.rcpt(to)
            if code not in (250, 251):
                raise smtplib.SMTPRecipientsRefused({to: (code, reply)})
            sending.data_started = True
            code, reply = smtp.data(data)
            if code != 250:
                raise smtplib.SMTPDataError(code, reply)
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


def _reply_outcome(code: int, reply: bytes | str, what: str) -> SendOutcome:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    reason = f"{what}: {code} {' '.join(text.split())[:200]}"
    if 400 <= code < 500:
        return SendOutcome.retry(reason)
    if 500 <= code < 600:
        return SendOutcome.permanent(reason)
    # -1 (smtplib: no reply) and anything outside the two classes: try again.
    return SendOutcome.retry(reason)


def _what(exc: smtplib.SMTPResponseException) -> str:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return "SMTP login refused (check username and PAPERBRIDGE_SMTP_PASSWORD)"
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return f"sender {exc.sender} refused"
    if isinstance(exc, smtplib.SMTPDataError):
        return "message refused"
    return "SMTP server"


def _describe(exc: BaseException) -> str:
    # smtplib reports a read that timed out as a disconnection; the timeout is its cause.
    if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
        return "did not answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
