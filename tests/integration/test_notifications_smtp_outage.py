"""SMTP down, then up: every message is retried, recorded, and delivered exactly once."""

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from aimms_deploy.smtp_sink import MaildirHandler, read_messages
from aimms_notifications.app import create_app as create_notifications
from aimms_notifications.settings import NotificationsSettings
from tests.factories import interest_events

from .conftest import Infrastructure, _free_port, eventually, running, service_settings
from .test_notifications_digest import PEOPLE, AsAdmin, log_of
from .test_notifications_flow import address, pair_of, proposal, publish, read_models

pytestmark = pytest.mark.integration


async def test_messages_queued_while_smtp_is_down_are_retried_then_delivered_once(
    infrastructure: Infrastructure, namespace: str, tmp_path: Path
) -> None:
    infra, ns = infrastructure, namespace
    port = _free_port()  # nothing listens here until the sink starts
    settings = service_settings(
        NotificationsSettings, infra, ns, smtp_port=port, smtp_timeout_seconds=2.0, delivery_max_attempts=100
    )
    app = create_notifications(settings)
    sink = Controller(MaildirHandler(tmp_path), hostname="127.0.0.1", port=port)
    async with running(app) as notifications:
        AsAdmin(app)
        await publish(infra, ns, *read_models(ns, PEOPLE), producer="registration")
        welcome = interest_events(email=f"amina.{ns}@demo-university.ac.uk")
        [interest, _] = await publish(infra, ns, *welcome, producer="registration")
        [proposed] = await publish(
            infra, ns, proposal(pair_of("pair-1", "p-amina", "p-priya"), datetime.now(UTC) + timedelta(days=14))
        )
        events = (str(interest.event_id), str(proposed.event_id))

        async def log() -> list[dict[str, Any]]:
            return [d for e in events for d in await log_of(notifications, source_event_id=e)]

        # While SMTP is down: pending, with the attempts and the connection error recorded.
        retried = await eventually(lambda: _all(log, lambda d: d["attempts"] >= 2), timeout=60)
        assert len(retried) == 3 and {d["status"] for d in retried} == {"pending"}
        assert all("Connect" in d["last_error"] or "refused" in d["last_error"] for d in retried), retried
        assert read_messages(tmp_path) == []

        sink.start()
        try:
            up = time.monotonic()
            sent = await eventually(lambda: _all(log, lambda d: d["status"] == "sent"), timeout=60)
            recovery = time.monotonic() - up
            mails = await eventually(lambda: len(read_messages(tmp_path)) == 3 and read_messages(tmp_path))
            # Nothing more follows: every notification is final, and the sink has one mail per message.
            assert sorted(str(m["Message-ID"]) for m in mails) == sorted(
                f"<{d['notification_id']}@aimms.local>" for d in sent
            )
            recipients = sorted(str(m["To"]) for m in mails)
            assert len(recipients) == 3 and any(address("p-priya", ns) in r for r in recipients)
            assert all(d["attempts"] >= 3 for d in sent)  # the failed tries and the one that got through
        finally:
            sink.stop()
    print(f"\nSMTP back up -> all 3 queued messages accepted: {recovery * 1000:.0f} ms")


async def _all(log: Any, condition: Any) -> list[dict[str, Any]] | None:
    entries = await log()
    return entries if len(entries) == 3 and all(condition(d) for d in entries) else None
