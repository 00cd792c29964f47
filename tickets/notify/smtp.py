"""The e-mail channel: one SMTP session per notification (STARTTLS or implicit TLS, optional AUTH).

`build_email` is pure: the same notification always gives the same message, down to its
`Message-ID`, so a message delivered twice (a retry after a lost answer) is recognisable as one.
SMTP reply codes decide retries: 4xx is transient, 5xx permanent (RFC 5321).
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from tickets.notify.message import Notification
from tickets.notify.result import DeliveryResult, SendingChannel, describe

SECURITY_MODES = ("starttls", "ssl", "none")
_URL_RE = re.compile(r"https?://[^\s<>\"]+")
_ADDRESS_RE = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.?[^@\s<>,;\"]*")


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to submit mail. `ca_file` adds a trusted CA (a private relay's certificate)."""

    host: str
    port: int = 587
    security: str = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    from_addr: str = "edgewatch@localhost"
    timeout: float = 30.0
    ca_file: str | None = None

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise ValueError(f"security: must be one of {', '.join(SECURITY_MODES)}, got {self.security!r}")
        if not self.host:
            raise ValueError("host: the SMTP server is not set")
        if not 0 < self.port < 65536:
            raise ValueError(f"port: must be 1-65535, got {self.port}")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password: set both or neither")
        if self.username is not None and self.security == "none":
            # AUTH over a clear connection would send the password readable to anyone on the path.
            raise ValueError("security: AUTH needs starttls or ssl, not none")
        if not _ADDRESS_RE.fullmatch(self.from_addr):
            raise ValueError(f"from_addr: not an e-mail address: {self.from_addr!r}")


def _digest(idempotency_key: str) -> str:
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


def message_id(idempotency_key: str, from_addr: str) -> str:
    """A Message-ID that depends only on the idempotency key (and the sender's domain)."""
    return f"<{_digest(idempotency_key)}.notify@{from_addr.rpartition('@')[2]}>"


def _html(subject: str, text: str, language: str = "en") -> str:
    paragraphs = []
    for block in text.strip().split("\n\n"):
        lines = []
        for line in block.splitlines():
            escaped = html.escape(line)
            lines.append(_URL_RE.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped))
        paragraphs.append("<p>" + "<br>\n".join(lines) + "</p>")
    return (
        f'<!DOCTYPE html>\n<html lang="{html.escape(language)}"><head><meta charset="utf-8"></head>'
        '<body style="font-family: sans-serif">\n'
        f"<h3>{html.escape(subject)}</h3>\n" + "\n".join(paragraphs) + "\n</body></html>\n"
    )


def build_email(n: Notification, from_addr: str) -> EmailMessage:
    """The message for one notification: plain text plus a simple HTML alternative."""
    msg = EmailMessage()
    msg["From"] = Address("edgewatch", addr_spec=from_addr)
    msg["To"] = n.address
    msg["Subject"] = n.subject
    msg["Date"] = format_datetime(n.created_at)
    msg["Message-ID"] = message_id(n.idempotency_key, from_addr)
    # RFC 3834: machine-generated; asks auto-responders (and Exchange, below) not to answer.
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["X-Edgewatch-Idempotency-Key"] = n.idempotency_key
    msg["X-Edgewatch-Event"] = n.event
    msg.set_content(n.text)
    msg.add_alternative(_html(n.subject, n.text, n.language), subtype="html")
    # A fixed boundary (instead of a random one) makes a repeated delivery byte-for-byte the same.
    msg.set_boundary(f"=_edgewatch_{_digest(n.idempotency_key)}")
    # RFC 3282: the language subject and text are written in (set last: building the parts moves
    # Content-* headers into the first part).
    msg["Content-Language"] = n.language
    return msg


class EmailChannel(SendingChannel):
    """Submits each notification to the configured SMTP server (a new session each time)."""

    kind = "email"

    def __init__(self, settings: SmtpSettings) -> None:
        super().__init__()
        self.settings = settings

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.settings.ca_file)

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.security == "ssl":
            return smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self._tls())
        smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            smtp.ehlo()
            if s.security == "starttls":
                # starttls() raises SMTPNotSupportedError when the server does not offer it: we never
                # fall back to a clear connection.
                smtp.starttls(context=self._tls())
                smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _deliver(self, n: Notification) -> tuple[DeliveryResult, str]:
        return self._submit(n), self.settings.host

    def _submit(self, n: Notification) -> DeliveryResult:
        if not _ADDRESS_RE.fullmatch(n.address):
            return DeliveryResult.failed(f"not an e-mail address: {n.address!r}")
        try:
            msg = build_email(n, self.settings.from_addr)
        except (ValueError, TypeError) as exc:
            return DeliveryResult.failed(f"cannot build the message: {exc}")
        try:
            smtp = self._connect()
            try:
                if self.settings.username is not None and self.settings.password is not None:
                    smtp.login(self.settings.username, self.settings.password)
                smtp.send_message(msg, self.settings.from_addr, [n.address])
            finally:
                # The message is accepted once DATA is answered 250; a failing QUIT changes nothing.
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    smtp.quit()
                smtp.close()
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            return self._by_code(code, reply, "recipient refused")
        except smtplib.SMTPResponseException as exc:
            return self._by_code(exc.smtp_code, exc.smtp_error, type(exc).__name__)
        except smtplib.SMTPNotSupportedError as exc:
            return DeliveryResult.failed(f"the SMTP server does not support what is configured: {exc}")
        except ssl.SSLCertVerificationError as exc:
            return DeliveryResult.failed(f"the SMTP server's certificate is not trusted: {exc.verify_message}")
        except (OSError, smtplib.SMTPException) as exc:  # refused, reset, timed out, TLS failure
            return DeliveryResult.retry(describe(exc, n))
        return DeliveryResult.delivered(f"accepted by {self.settings.host}", status_code=250)

    @staticmethod
    def _by_code(code: int, reply: bytes | str, what: str) -> DeliveryResult:
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        detail = f"{what}: SMTP {code} {text}"[:300]
        if 400 <= code < 500:
            return DeliveryResult.retry(detail, status_code=code)
        return DeliveryResult.failed(detail, status_code=code)
