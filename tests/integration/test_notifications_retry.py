"""A coordinator retries a failed email: it is sent once, and only a failed delivery may be retried.

Registration and notifications run in-process against the real broker, store and SMTP sink. The
sink refuses an address starting with `bounce-once` permanently (550) the first time and accepts it
after that, so her registration confirmation fails, and the retry gets through.
"""

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from aimms_notifications.store import NOTIFICATIONS
from aimms_notifications.workers import POLL_SECONDS
from aimms_shared.contracts.notifications import DELIVERIES
from aimms_shared.events import in_namespace

from .conftest import Infrastructure, Platform, bearer, eventually, mails_to, read_topic
from .test_notifications_flow import register

pytestmark = pytest.mark.integration

PROBLEM_JSON = "application/problem+json"


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    return response.json()


async def test_a_failed_email_is_retried_by_a_coordinator_and_sent_exactly_once(
    platform: Platform, infrastructure: Infrastructure
) -> None:
    infra, notifications = infrastructure, platform.notifications
    as_admin, as_portal = bearer(platform.admin_token), bearer(platform.portal_token)
    participant_id, email = await register(platform, "bounce-once", "Dr Amina Okafor", role="mentee")

    async def log() -> list[dict[str, Any]]:
        response = await notifications.get("/deliveries", params={"participant_id": participant_id}, headers=as_admin)
        assert response.status_code == 200, response.text
        return response.json()

    # The sink refused her confirmation permanently: failed at once, with the SMTP server's answer.
    [failed] = await eventually(lambda: _with_status(log, "failed"), timeout=60)
    assert failed["template"] == "registered" and failed["attempts"] == 1
    assert "550" in failed["last_error"]
    assert mails_to(infra, email) == []
    retry = f"/deliveries/{failed['notification_id']}/retry"

    # Coordinators only; an unknown notification is 404.
    forbidden = problem(await notifications.post(retry, headers=as_portal), 403)
    assert forbidden["required_scopes"] == ["admin"]
    unknown = problem(await notifications.post("/deliveries/no-such-notification/retry", headers=as_admin), 404)
    assert unknown["field"] == "notification_id"
    assert (await log()) == [failed]  # neither changed anything

    # A coordinator clicks twice: one retry is taken, the other refused (it is no longer failed).
    started = time.monotonic()
    first, second = await asyncio.gather(*(notifications.post(retry, headers=as_admin) for _ in range(2)))
    [taken] = [r for r in (first, second) if r.status_code == 200]
    [refused] = [r for r in (first, second) if r.status_code != 200]
    assert (problem(refused, 409)["field"], refused.json()["rule"]) == ("status", "failed-only")
    requeued = taken.json()
    assert requeued["notification_id"] == failed["notification_id"]
    # The worker's next search may already have sent it; if not, it starts again from nothing.
    assert requeued["status"] == "sent" or (requeued["status"], requeued["attempts"]) == ("pending", 0)

    # Sent by the worker's next search (every POLL_SECONDS), once, under its stable Message-ID.
    [sent] = await eventually(lambda: _with_status(log, "sent"), timeout=60)
    latency = time.monotonic() - started
    [mail] = await eventually(lambda: mails_to(infra, email))
    assert mail["Message-ID"] == f"<{failed['notification_id']}@aimms.local>"
    assert mail["Subject"] == "Your registration with AIMMS Mentoring is complete"
    assert sent["attempts"] == 1 and sent["sent_at"] is not None
    client: AsyncMongoClient = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    try:
        stored = await client[platform.notifications_settings.mongodb_database][NOTIFICATIONS].find_one(
            {"_id": failed["notification_id"]}
        )
    finally:
        await client.close()
    assert stored is not None and "failed_at" not in stored and "send_due" not in stored
    assert stored["retried_at"] <= stored["sent_at"]

    # The deliveries topic tells the whole story: failed, then (after the retry) sent.
    records = await read_topic(infra, in_namespace(DELIVERIES.name, platform.namespace), expect=2)
    story = [
        dict(r.headers)["event_type"].decode()
        for r in records
        if json.loads(r.value)["payload"]["notification_id"] == failed["notification_id"]
    ]
    assert story == ["NotificationFailed", "NotificationSent"]

    # A sent delivery is never retried (she would get it twice); nothing more arrives after another poll.
    again = problem(await notifications.post(retry, headers=as_admin), 409)
    assert (again["field"], again["rule"]) == ("status", "failed-only")
    await asyncio.sleep(POLL_SECONDS + 1)
    assert len(mails_to(infra, email)) == 1
    assert [(d["status"], d["attempts"]) for d in await log()] == [("sent", 1)]
    print(f"\nretry accepted -> email sent: {latency * 1000:.0f} ms (worker poll interval {POLL_SECONDS:.0f} s)")


async def test_a_failed_delivery_whose_details_were_purged_cannot_be_retried(
    platform: Platform, infrastructure: Infrastructure
) -> None:
    now = datetime.now(UTC)
    purged = {
        "_id": "n-purged",
        "template": "registered",
        "source_event_id": "e-old",
        "recipient_id": "p-old",
        "message_id": "<n-purged@aimms.local>",
        "status": "failed",
        "attempts": 1,
        "created_at": now - timedelta(days=100),
        "details_deadline": now - timedelta(days=99),
        "failed_at": now - timedelta(days=100),
        "purged_at": now,
    }
    client: AsyncMongoClient = AsyncMongoClient(infrastructure.mongodb_uri, tz_aware=True)
    try:
        collection = client[platform.notifications_settings.mongodb_database][NOTIFICATIONS]
        await collection.insert_one(purged)

        refused = await platform.notifications.post("/deliveries/n-purged/retry", headers=bearer(platform.admin_token))

        body = problem(refused, 409)
        assert (body["field"], body["rule"]) == ("notification_id", "details-kept")
        after = await collection.find_one({"_id": "n-purged"})
        assert after is not None and after["status"] == "failed" and "send_due" not in after
    finally:
        await client.close()


async def _with_status(log: Any, status: str) -> list[dict[str, Any]] | None:
    entries = await log()
    return entries if entries and all(d["status"] == status for d in entries) else None
