"""SMTP sink: accepts every message and stores it as a .eml file, for development and tests.

One exception lets tests see a delivery fail and be retried: a recipient whose address starts
with ``bounce-once`` is refused permanently (550) the first time, and accepted after that.

Run as ``python -m aimms_deploy.smtp_sink --host 127.0.0.1 --port 1025 --maildir var/mail``.
Tests read what was "sent" with :func:`read_messages` / :func:`wait_for_messages`.
"""

from __future__ import annotations

import argparse
import asyncio
import email.policy
import os
import signal
import time
import uuid
import warnings
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import structlog
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

log = structlog.get_logger("aimms.smtp_sink")

BOUNCE_ONCE = "bounce-once"


class MaildirHandler:
    """aiosmtpd handler that writes each received message to ``<maildir>/<UTC ts>-<uuid>.eml``."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir
        self.maildir.mkdir(parents=True, exist_ok=True)
        self.bounced: set[str] = set()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Store the message bytes exactly as received and accept it."""
        first_bounces = {r for r in envelope.rcpt_tos if r.lower().startswith(BOUNCE_ONCE)} - self.bounced
        if first_bounces:
            self.bounced |= first_bounces
            log.info("message refused once", rcpt_tos=sorted(first_bounces))
            return "550 Mailbox unavailable (bounce-once address: accepted next time)"
        content = envelope.original_content or b""
        path = self.store(content)
        log.info(
            "message stored",
            path=str(path),
            mail_from=envelope.mail_from,
            rcpt_tos=envelope.rcpt_tos,
            size=len(content),
        )
        return "250 Message accepted for delivery"

    def store(self, content: bytes) -> Path:
        """Write ``content`` atomically and return the final path."""
        # Microsecond UTC timestamp first, so sorting file names gives arrival order.
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        name = f"{stamp}-{uuid.uuid4().hex}.eml"
        final = self.maildir / name
        # A dot-file without the .eml suffix: readers globbing *.eml never see a partial file.
        tmp = self.maildir / f".{name}.part"
        tmp.write_bytes(content)
        os.replace(tmp, final)
        return final


def _accept_any_login(*_args: Any) -> AuthResult:
    """Accept any AUTH credentials, so services configured with a username/password still work."""
    return AuthResult(success=True)


def read_messages(maildir: Path, to: str | None = None) -> list[EmailMessage]:
    """Parse the stored messages in ``maildir`` (sorted by file name, i.e. arrival order), or only
    those addressed to ``to`` (the whole address or a part of it, such as a test run's marker).

    Files keep the CRLF line endings of the wire; they are parsed with plain newlines so
    ``get_content()`` returns text as Python code wrote it. With ``to``, a file is parsed only if
    its bytes contain it: a sink that collected thousands of messages is then still read in
    milliseconds, which matters to tests polling it on the event loop their services run on.
    """
    if not maildir.is_dir():
        return []
    parser = BytesParser(policy=email.policy.default)
    wanted = to.encode() if to is not None else b""
    messages: list[EmailMessage] = []
    for path in sorted(maildir.glob("*.eml")):
        raw = path.read_bytes()
        if wanted not in raw:
            continue
        message = parser.parsebytes(raw.replace(b"\r\n", b"\n"))
        assert isinstance(message, EmailMessage)  # guaranteed by policy.default
        if to is None or to in str(message["To"] or ""):
            messages.append(message)
    return messages


def wait_for_messages(maildir: Path, count: int, timeout: float = 10.0) -> list[EmailMessage]:
    """Poll until at least ``count`` messages are stored; raise TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        messages = read_messages(maildir)
        if len(messages) >= count:
            return messages
        if time.monotonic() >= deadline:
            raise TimeoutError(f"expected {count} message(s) in {maildir}, found {len(messages)}")
        time.sleep(0.1)


async def serve(host: str, port: int, maildir: Path) -> None:
    """Serve SMTP on ``host:port`` until SIGTERM/SIGINT."""
    # aiosmtpd warns about its own internal use of Session.login_data on every AUTH.
    warnings.filterwarnings("ignore", message="Session.login_data is deprecated")
    loop = asyncio.get_running_loop()
    handler = MaildirHandler(maildir)

    def protocol() -> SMTP:
        return SMTP(
            handler,
            enable_SMTPUTF8=True,
            auth_require_tls=False,
            authenticator=_accept_any_login,
            loop=loop,
        )

    server = await loop.create_server(protocol, host=host, port=port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("smtp sink listening", host=host, port=port, maildir=str(maildir))
    async with server:
        await stop.wait()
    log.info("smtp sink stopped")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--maildir", type=Path, required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.maildir.resolve()))


if __name__ == "__main__":
    main()
