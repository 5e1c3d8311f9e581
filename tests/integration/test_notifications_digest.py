"""Coordinators' digest once a day, opt-out links that stop reminders only, and the delivery log's retention.

Matching's and registration's events are published straight into the test's namespace (as in
test_notifications_flow.py), so each behaviour is exercised without running the other services.
"""

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from aimms_notifications.app import create_app as create_notifications
from aimms_notifications.settings import NotificationsSettings
from aimms_shared.contracts.matching import MatchAccepted, MatchDeclined
from tests.factories import interest_events

from .conftest import ADMIN_CLIENT_ID, Infrastructure, eventually, mails_to, running, service_settings
from .test_notifications_flow import address, pair_of, proposal, publish, read_models, reminder, subject

pytestmark = pytest.mark.integration

PEOPLE = {"p-amina": "Dr Amina Okafor", "p-priya": "Prof Priya Raman", "p-zara": "Dr Zara Ahmed"}


class AsAdmin:
    """Admin calls to notifications without registration: every token passes as the administrator."""

    def __init__(self, *apps: Any) -> None:
        from aimms_shared.auth import ADMIN, Principal

        class Verifier:
            async def verify(self, token: str) -> Principal:
                return Principal(ADMIN_CLIENT_ID, None, frozenset({ADMIN}))

        for app in apps:
            app.state.token_verifier = Verifier()

    headers = {"Authorization": "Bearer test"}


async def log_of(client: Any, **query: str) -> list[dict[str, Any]]:
    response = await client.get("/deliveries", params=query, headers=AsAdmin.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_daily_digest_goes_once_per_programme_and_day_across_replicas_and_restarts(
    infrastructure: Infrastructure, namespace: str
) -> None:
    infra, ns = infrastructure, namespace
    settings = service_settings(NotificationsSettings, infra, ns, details_wait_seconds=2.0)
    first, second = create_notifications(settings), create_notifications(settings)  # two replicas
    async with running(first) as one, running(second) as two:
        AsAdmin(first, second)
        now = datetime.now(UTC)
        await publish(infra, ns, *read_models(ns, PEOPLE), producer="registration")
        answered, declined, stuck = (
            pair_of("pair-1", "p-amina", "p-priya"),
            pair_of("pair-2", "p-zara", "p-priya"),
            pair_of("pair-3", "p-zara", "p-ghost"),  # details never arrive: both messages fail
        )
        await publish(
            infra,
            ns,
            proposal(answered, now + timedelta(days=14)),
            proposal(declined, now + timedelta(days=14)),
            proposal(stuck, now + timedelta(days=3)),
            MatchAccepted(**answered, side="mentee"),
            MatchDeclined(**declined, side="mentor"),
        )
        zara = address("p-zara", ns)
        await eventually(lambda: len(mails_to(infra, zara)) == 2, timeout=60)  # proposal 2, its decline
        await eventually(lambda: _statuses(one, "match_proposed", {"sent": 4, "failed": 2}), timeout=60)

        # Bad input is refused as problem+json.
        refused = await one.put(
            "/programmes/aimms-mentoring/digest", json={"recipients": [], "hour_utc": 7}, headers=AsAdmin.headers
        )
        assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["field"] == "recipients"
        invalid = await one.put(
            "/programmes/aimms-mentoring/digest",
            json={"recipients": ["not-an-address"], "hour_utc": 24},
            headers=AsAdmin.headers,
        )
        assert invalid.status_code == 422 and invalid.headers["content-type"] == "application/problem+json"
        missing = await one.get("/programmes/other/digest", headers=AsAdmin.headers)
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"

        # Enabled after today's hour: today's digest goes at once, from whichever replica claims it.
        coordinators = [f"office.{ns}@northgate.ac.uk", f"lead.{ns}@demo-university.ac.uk"]
        body = {"recipients": coordinators, "hour_utc": datetime.now(UTC).hour}
        started = time.monotonic()
        configured = await one.put("/programmes/aimms-mentoring/digest", json=body, headers=AsAdmin.headers)
        assert configured.status_code == 200, configured.text
        await eventually(lambda: all(mails_to(infra, c) for c in coordinators), timeout=60)
        latency = time.monotonic() - started
        [digest] = mails_to(infra, coordinators[0])
        assert subject(digest).endswith("2 proposals awaiting answers, 2 failed deliveries")
        text = digest.get_body(("plain",)).get_content()
        assert "Dr Amina Okafor (mentee) and Prof Priya Raman (mentor), pair pair-1" in text
        assert "waiting for: mentor\n" in text  # the mentee accepted
        assert "p-ghost (mentor), pair pair-3" in text and "pair-2" not in text  # declined: closed
        assert "ghost" in text and "@" not in text.split("FAILED DELIVERIES")[1].split("--")[0]
        assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert digest["List-Unsubscribe"].startswith("<http://notifications.test/opt-out/")

        # The same settings again, on the other replica: today's went already, the next is tomorrow.
        again = await two.put("/programmes/aimms-mentoring/digest", json=body, headers=AsAdmin.headers)
        today = datetime.now(UTC).date().isoformat()
        assert again.json()["last_digest"] == today
        assert datetime.fromisoformat(again.json()["next_due_at"]).replace(tzinfo=UTC) > datetime.now(UTC)

        # A crash after queuing but before recording it (then a restart): the digest is due again
        # and claimed again, and its per-day notification ids queue nothing new.
        client: AsyncMongoClient = AsyncMongoClient(infra.mongodb_uri)
        try:
            digests = client[settings.mongodb_database]["digests"]
            await digests.update_one(
                {"_id": "aimms-mentoring"}, {"$set": {"digest_due": datetime.now(UTC)}, "$unset": {"last_digest": ""}}
            )
            await eventually(lambda: _recorded(digests, today), timeout=30)
            sent = (
                await client[settings.mongodb_database]["notifications"]
                .find({"template": "coordinator_digest"})
                .to_list()
            )
        finally:
            await client.close()
        assert [(d["source_event_id"], d["status"]) for d in sent] == [(f"digest:aimms-mentoring:{today}", "sent")] * 2
        assert [len(mails_to(infra, c)) for c in coordinators] == [1, 1]
    print(f"\ndigest enabled -> both coordinators' digests accepted by SMTP: {latency * 1000:.0f} ms")


async def _statuses(client: Any, template: str, expected: dict[str, int]) -> bool:
    counts: dict[str, int] = {}
    for d in await log_of(client, programme_id="aimms-mentoring"):
        if d["template"] == template:
            counts[d["status"]] = counts.get(d["status"], 0) + 1
    return counts == expected


async def _recorded(digests: Any, day: str) -> bool:
    doc = await digests.find_one({"_id": "aimms-mentoring"})
    return doc.get("last_digest") == day and doc["digest_due"].replace(tzinfo=UTC) > datetime.now(UTC)


async def test_an_opt_out_link_stops_her_reminders_but_never_a_proposal(
    infrastructure: Infrastructure, namespace: str
) -> None:
    infra, ns = infrastructure, namespace
    app = create_notifications(service_settings(NotificationsSettings, infra, ns))
    async with running(app) as notifications:
        AsAdmin(app)
        amina, priya = address("p-amina", ns), address("p-priya", ns)
        await publish(infra, ns, *read_models(ns, PEOPLE), producer="registration")
        first, second = pair_of("pair-1", "p-amina", "p-priya"), pair_of("pair-2", "p-amina", "p-priya")
        reply_by = datetime.now(UTC) + timedelta(days=14)
        await publish(infra, ns, proposal(first, reply_by), reminder(first, reply_by))
        await eventually(lambda: len(mails_to(infra, amina)) == 2 and len(mails_to(infra, priya)) == 2, timeout=60)
        [her_reminder] = [m for m in mails_to(infra, amina) if subject(m).startswith("Reminder")]
        [proposed] = [m for m in mails_to(infra, amina) if not subject(m).startswith("Reminder")]
        assert proposed["List-Unsubscribe"] is None  # a procedure message: no opt-out
        url = her_reminder["List-Unsubscribe"].strip("<>")
        assert url in her_reminder.get_body(("plain",)).get_content()
        path = url.removeprefix("http://notifications.test")

        # Opening the link (or a mail scanner following it) changes nothing; a forged one is refused.
        page = await notifications.get(path)
        assert page.status_code == 200 and "<button>" in page.text
        preferences = "/participants/p-amina/preferences"
        assert (await notifications.get(preferences, headers=AsAdmin.headers)).json()["reminders"] is True
        forged = await notifications.post(path[:-3] + "AAA", data={"List-Unsubscribe": "One-Click"})
        assert forged.status_code == 404

        # The mail client's one-click POST (RFC 8058) opts her out.
        done = await notifications.post(path, data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200
        preference = (await notifications.get(preferences, headers=AsAdmin.headers)).json()
        assert preference["reminders"] is False and preference["changed_by"] == "link"

        # The next proposal reaches her; its reminder goes to Priya only, and hers is logged as skipped.
        [_, reminded] = await publish(infra, ns, proposal(second, reply_by), reminder(second, reply_by))
        await eventually(lambda: len(mails_to(infra, amina)) == 3 and len(mails_to(infra, priya)) == 4, timeout=60)
        skipped = await eventually(lambda: _log_with(notifications, str(reminded.event_id), "p-amina", "skipped"))
        assert skipped["last_error"] == "recipient opted out of reminders and digests"
        assert [subject(m).startswith("We propose") for m in mails_to(infra, amina)].count(True) == 2

        # A coordinator turns them back on.
        back = await notifications.put(preferences, json={"reminders": True}, headers=AsAdmin.headers)
        assert back.json()["reminders"] is True and back.json()["changed_by"] == f"admin:{ADMIN_CLIENT_ID}"
        bad = await notifications.put(preferences, json={"reminders": "sometimes"}, headers=AsAdmin.headers)
        assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"


async def _log_with(client: Any, source_event_id: str, recipient_id: str, status: str) -> dict[str, Any] | None:
    for d in await log_of(client, source_event_id=source_event_id):
        if d["recipient_id"] == recipient_id and d["status"] == status:
            return d
    return None


async def test_a_messages_details_are_purged_after_the_retention_period_and_its_status_stays(
    infrastructure: Infrastructure, namespace: str
) -> None:
    infra, ns = infrastructure, namespace
    settings = service_settings(NotificationsSettings, infra, ns, delivery_log_retention="PT2S")
    app = create_notifications(settings)
    async with running(app) as notifications:
        AsAdmin(app)
        email = f"amina.{ns}@demo-university.ac.uk"
        await publish(infra, ns, *read_models(ns, {}), producer="registration")  # the welcome is worded from it
        [welcomed, _] = await publish(infra, ns, *interest_events(email=email), producer="registration")
        # A message still pending (waiting for details that never come) keeps what it needs to be sent.
        [waiting] = await publish(infra, ns, proposal(pair_of("pair-9", "p-ghost", "p-nobody"), datetime.now(UTC)))
        await eventually(lambda: mails_to(infra, email), timeout=60)

        client: AsyncMongoClient = AsyncMongoClient(infra.mongodb_uri)
        try:
            notes = client[settings.mongodb_database]["notifications"]
            purged = await eventually(
                lambda: notes.find_one({"source_event_id": str(welcomed.event_id), "purged_at": {"$exists": True}}),
                timeout=30,
            )
            pending = await notes.find({"source_event_id": str(waiting.event_id)}).to_list()
        finally:
            await client.close()
        assert not {"context", "recipient_email", "recipient_name", "last_error"} & set(purged)
        assert email not in str(purged) and "Amina" not in str(purged)
        assert purged["status"] == "sent" and purged["template"] == "welcome"
        assert purged["created_at"] and purged["sent_at"]
        assert all(d["status"] == "pending" and d["context"] and "purged_at" not in d for d in pending)
        [entry] = await log_of(notifications, source_event_id=str(welcomed.event_id))
        assert entry["status"] == "sent" and entry["details_purged"] is True
