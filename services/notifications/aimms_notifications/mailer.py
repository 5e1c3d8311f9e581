"""SMTP delivery with aiosmtplib."""

from dataclasses import dataclass
from email.charset import QP, Charset
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import formataddr, formatdate, parseaddr

import aiosmtplib

from aimms_notifications.settings import NotificationsSettings

# Bodies in UTF-8 quoted-printable: 7-bit safe for any relay, and readable in the raw message.
UTF8_QP = Charset("utf-8")
UTF8_QP.body_encoding = QP
# Lines end in CRLF as SMTP wants; headers are written as built, unfolded (a long link stays whole).
WIRE = compat32.clone(linesep="\r\n", max_line_length=None)


@dataclass(frozen=True)
class Outgoing:
    """A message as it goes over SMTP: the envelope and the bytes of the message."""

    sender: str
    recipient: str
    data: bytes


@dataclass(frozen=True)
class SmtpRejection(Exception):
    """The SMTP server refused, or could not be reached (code None)."""

    code: int | None
    message: str


class Mailer:
    """Sends messages to the configured SMTP server over connections it keeps open between messages.

    Opening a connection (TCP, greeting, EHLO, STARTTLS, AUTH) took longer than sending a message, and a
    welcome rush sends hundreds; idle connections are reused, and one the server has closed meanwhile is
    replaced before the message is retried on it once.
    """

    def __init__(self, settings: NotificationsSettings, *, max_idle: int) -> None:
        self._settings = settings
        self._max_idle = max_idle
        self._idle: list[aiosmtplib.SMTP] = []

    def build(
        self,
        *,
        to_email: str,
        to_name: str,
        subject: str,
        text: str,
        html: str,
        message_id: str,
        unsubscribe_url: str | None = None,
    ) -> Outgoing:
        """The message: plain text with an HTML alternative and a stable Message-ID.

        An optional message carries its opt-out link as `List-Unsubscribe`, with one-click
        unsubscription by POST (RFC 8058), so mail clients can offer it without opening a page.
        A line break in a name or subject (they come from people) is written as a space.
        """
        name, address = parseaddr(self._settings.sender)
        sender = (name, _ascii_address(address))
        recipient = (_one_line(to_name), _ascii_address(to_email))
        headers = {"Subject": _one_line(subject), "Message-ID": message_id, "Date": formatdate(usegmt=True)}
        if unsubscribe_url:
            headers |= {
                "List-Unsubscribe": f"<{unsubscribe_url}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            }
        return Outgoing(sender[1], recipient[1], _mime(sender, recipient, headers, text, html))

    async def send(self, message: Outgoing) -> None:
        """Hand the message to the SMTP server; raise SmtpRejection on any failure."""
        try:
            smtp = await self._send_on_idle(message) or await self._send_on_new(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0] if exc.recipients else None
            raise SmtpRejection(first.code if first else 550, str(exc)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise SmtpRejection(exc.code, exc.message) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise SmtpRejection(None, f"{type(exc).__name__}: {exc}") from exc
        if len(self._idle) < self._max_idle:
            self._idle.append(smtp)
        else:
            smtp.close()

    def close(self) -> None:
        """Drop the idle connections."""
        while self._idle:
            self._idle.pop().close()

    async def _send_on_idle(self, message: Outgoing) -> aiosmtplib.SMTP | None:
        """Send on an idle connection; None if there was none left that the server had kept open.

        A connection found closed (the server timed it out, or restarted) is dropped and the next one
        tried. Were it closed in the middle of the message, that message may have gone: the copy carries
        the same Message-ID, by which mail systems recognise it.
        """
        while self._idle:
            smtp = self._idle.pop()
            try:
                await _send_on(smtp, message)
                return smtp
            except (aiosmtplib.SMTPServerDisconnected, OSError):
                smtp.close()
            except BaseException:
                smtp.close()
                raise
        return None

    async def _send_on_new(self, message: Outgoing) -> aiosmtplib.SMTP:
        s = self._settings
        smtp = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            start_tls=s.smtp_starttls,
            use_tls=s.smtp_tls,
            timeout=s.smtp_timeout_seconds,
        )
        try:
            await smtp.connect()
            await _send_on(smtp, message)
        except BaseException:
            smtp.close()
            raise
        return smtp


def _mime(sender: tuple[str, str], recipient: tuple[str, str], headers: dict[str, str], text: str, html: str) -> bytes:
    """Written with the `email.mime` classes: `EmailMessage` parses every header it is given into
    objects, which was a third of the service's time in a welcome rush."""
    message = MIMEMultipart("alternative")
    message["From"] = formataddr(sender, "utf-8")
    message["To"] = formataddr(recipient, "utf-8")
    for name, value in headers.items():
        # As RFC 2047 words on folded lines of 76 characters; unfolded, a long subject would be one long word.
        message[name] = value if value.isascii() else Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    message.attach(MIMEText(text, "plain", UTF8_QP))
    message.attach(MIMEText(html, "html", UTF8_QP))
    return message.as_bytes(policy=WIRE)


def _ascii_address(address: str) -> str:
    """The address as SMTP without extensions carries it: a domain in IDNA (punycode); a mailbox name
    that is not ASCII would need SMTPUTF8 end to end, which the platform does not send."""
    local, _, domain = address.rpartition("@")
    try:
        if not local.isascii():
            raise UnicodeError("the mailbox name is not ASCII")
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError as exc:
        raise SmtpRejection(553, f"cannot send to {address!r}: {exc}") from exc


def _one_line(value: str) -> str:
    return " ".join(value.split())


async def _send_on(smtp: aiosmtplib.SMTP, message: Outgoing) -> None:
    await smtp.sendmail(message.sender, [message.recipient], message.data)
