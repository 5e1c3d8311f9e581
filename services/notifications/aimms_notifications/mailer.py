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
    """Sends one message per call to the configured SMTP server."""

    def __init__(self, settings: NotificationsSettings) -> None:
        self._settings = settings

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
        s = self._settings
        try:
            await aiosmtplib.send(
                message,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                start_tls=s.smtp_starttls,
                use_tls=s.smtp_tls,
                timeout=s.smtp_timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0] if exc.recipients else None
            raise SmtpRejection(first.code if first else 550, str(exc)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise SmtpRejection(exc.code, exc.message) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise SmtpRejection(None, f"{type(exc).__name__}: {exc}") from exc
