"""SMTP delivery with aiosmtplib."""

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate

import aiosmtplib

from aimms_notifications.settings import NotificationsSettings


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
    ) -> EmailMessage:
        """The MIME message: plain text with an HTML alternative and a stable Message-ID.

        An optional message carries its opt-out link as `List-Unsubscribe`, with one-click
        unsubscription by POST (RFC 8058), so mail clients can offer it without opening a page.
        """
        message = EmailMessage()
        message["From"] = self._settings.sender
        message["To"] = formataddr((to_name, to_email))
        message["Subject"] = subject
        message["Message-ID"] = message_id
        message["Date"] = formatdate(usegmt=True)
        if unsubscribe_url:
            message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        return message

    async def send(self, message: EmailMessage) -> None:
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

    async def _send_on_idle(self, message: EmailMessage) -> aiosmtplib.SMTP | None:
        """Send on an idle connection; None if there was none left that the server had kept open.

        A connection found closed (the server timed it out, or restarted) is dropped and the next one
        tried. Were it closed in the middle of the message, that message may have gone: the copy carries
        the same Message-ID, by which mail systems recognise it.
        """
        while self._idle:
            smtp = self._idle.pop()
            try:
                await smtp.send_message(message)
                return smtp
            except (aiosmtplib.SMTPServerDisconnected, OSError):
                smtp.close()
            except BaseException:
                smtp.close()
                raise
        return None

    async def _send_on_new(self, message: EmailMessage) -> aiosmtplib.SMTP:
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
            await smtp.send_message(message)
        except BaseException:
            smtp.close()
            raise
        return smtp
