"""Notifications' use cases over an in-memory store: queueing an event's messages once, waking those that waited
for details, erasure and withdrawal, a coordinator's retry, the open proposals a digest lists, opt-outs, digests."""

from datetime import timedelta
from typing import Any

import pytest

from aimms_notifications import use_cases
from aimms_notifications.domain import digest, messages
from aimms_notifications.domain.compose import Contact, Programme
from aimms_notifications.handlers import MESSAGES
from aimms_shared.contracts import matching as m
from aimms_shared.errors import Missing, RuleBroken, StateConflict
from aimms_shared.events import Event, wrap
from aimms_shared.mongo import utcnow
from tests.fakes import FakeNotificationStore
from tests.unit.test_notifications_templates import MENTEE, MENTOR, NOW, PAIR, proposed, registered

WAIT = 3600.0  # seconds a message waits for missing details
LEASE = timedelta(seconds=30)
AIMMS = "aimms-mentoring"
HER = Contact(MENTEE, AIMMS, "demo-university", "Dr Amina Okafor", "amina@demo-university.ac.uk")
COORDINATOR = "coordinator@aimms.example"


async def queued(store: FakeNotificationStore, event: Event) -> list[dict[str, Any]]:
    """The messages an event causes, queued as notifications' handlers queue them."""
    notes = MESSAGES[type(event)](event, wrap(event, producer="test"))
    return await use_cases.queue(store, notes, message_id_domain="aimms.test", details_wait_seconds=WAIT, lease=LEASE)


async def waiting_for(store: FakeNotificationStore, doc: dict[str, Any], *missing: str) -> None:
    """What the delivery worker records when details a message names have not arrived."""
    await store.mark_waiting(doc["_id"], list(missing), utcnow() + timedelta(minutes=10))


def due_now(store: FakeNotificationStore, doc: dict[str, Any]) -> bool:
    return store.notifications[doc["_id"]]["send_due"] <= utcnow()


# -- queueing


async def test_an_events_messages_are_queued_once_claimed_for_the_caller_and_a_redelivery_adds_none() -> None:
    store = FakeNotificationStore()
    event = proposed()
    envelope = wrap(event, producer="matching")
    notes = messages.match_proposed(event, envelope)

    first = await use_cases.queue(store, notes, message_id_domain="aimms.test", details_wait_seconds=WAIT, lease=LEASE)
    again = await use_cases.queue(store, notes, message_id_domain="aimms.test", details_wait_seconds=WAIT, lease=LEASE)

    assert again == [] and len(store.notifications) == 2
    assert sorted(d["recipient_id"] for d in first) == sorted([MENTEE, MENTOR])
    for doc in first:
        assert (doc["status"], doc["attempts"], doc["message_id"]) == ("pending", 0, f"<{doc['_id']}@aimms.test>")
        assert doc["send_due"] - doc["created_at"] == LEASE  # the caller's, not the worker's search's
        assert abs(doc["details_deadline"] - (doc["created_at"] + timedelta(seconds=WAIT))) < timedelta(seconds=1)
        assert "recipient_email" not in doc  # a participant is addressed by id; her address is looked up on sending


# -- details arriving


async def test_her_details_arriving_wake_the_messages_that_waited_for_them() -> None:
    store = FakeNotificationStore()
    [confirmation] = await queued(store, registered())
    await waiting_for(store, confirmation, f"participant:{MENTEE}")

    woken = await use_cases.record_contact(store, HER, NOW)

    assert woken == 1 and due_now(store, confirmation)
    assert (await store.contact(MENTEE) or {})["email"] == HER.email


async def test_an_older_copy_of_her_details_neither_replaces_newer_ones_nor_wakes_anything() -> None:
    store = FakeNotificationStore()
    await use_cases.record_contact(store, HER, NOW)
    [confirmation] = await queued(store, registered())
    await waiting_for(store, confirmation, f"participant:{MENTEE}")

    woken = await use_cases.record_contact(
        store, Contact(MENTEE, AIMMS, "demo-university", "Old Name", "old@x.org"), NOW - timedelta(days=1)
    )

    assert woken == 0 and not due_now(store, confirmation)
    assert (await store.contact(MENTEE) or {})["name"] == "Dr Amina Okafor"


async def test_a_message_a_worker_claimed_meanwhile_is_not_woken_to_be_taken_twice() -> None:
    store = FakeNotificationStore()
    [confirmation] = await queued(store, registered())
    await waiting_for(store, confirmation, f"participant:{MENTEE}")
    claimed_until = utcnow() + LEASE
    store.notifications[confirmation["_id"]]["send_due"] = claimed_until  # what a worker's claim writes

    assert await use_cases.record_contact(store, HER, NOW) == 0
    assert store.notifications[confirmation["_id"]]["send_due"] == claimed_until


async def test_a_programme_or_institution_arriving_wakes_what_waited_for_it_and_an_older_copy_changes_nothing() -> None:
    store = FakeNotificationStore()
    [to_mentee, to_mentor] = await queued(store, proposed())
    await waiting_for(store, to_mentee, f"programme:{AIMMS}")
    await waiting_for(store, to_mentor, "institution:northgate")
    wording = Programme(AIMMS, "AIMMS Mentoring", term="P6M", trial_period="P1M")

    assert await use_cases.record_programme(store, wording, NOW) == 1
    assert await use_cases.record_institution(store, "northgate", "Northgate School of Medicine") == 1
    assert due_now(store, to_mentee) and due_now(store, to_mentor)

    older = Programme(AIMMS, "An old name", term="P3M", trial_period="P1M")
    await use_cases.record_programme(store, older, NOW - timedelta(hours=1))
    assert (store.programmes[AIMMS]["name"], store.programmes[AIMMS]["term"]) == ("AIMMS Mentoring", "P6M")
    assert store.institution_names == {"northgate": "Northgate School of Medicine"}


# -- erasure and withdrawal


async def test_erasure_forgets_her_cancels_what_was_hers_and_lets_her_partners_messages_go_without_her() -> None:
    store = FakeNotificationStore()
    event = proposed()
    await use_cases.proposal_opened(store, event, wrap(event, producer="matching"))
    to_mentee, to_mentor = sorted(await queued(store, event), key=lambda d: d["recipient_id"] != MENTEE)
    for doc in (to_mentee, to_mentor):
        await waiting_for(store, doc, f"participant:{MENTEE}")
    await use_cases.record_contact(store, HER, NOW - timedelta(days=1))
    await use_cases.set_reminders(store, use_cases.subscriber_of(MENTEE), reminders=False, by="participant")

    cancelled = await use_cases.erase(store, MENTEE)

    assert cancelled == 1
    assert store.statuses() == [(MENTEE, "match_proposed", "cancelled"), (MENTOR, "match_proposed", "pending")]
    assert store.notifications[to_mentee["_id"]]["last_error"] == "recipient erased"
    assert due_now(store, to_mentor)  # it goes out naming "your mentee", not waiting for details that will not come
    assert set(store.contacts[MENTEE]) == {"_id", "erased", "erased_at"}
    assert await use_cases.reminders_of(store, use_cases.subscriber_of(MENTEE)) == {
        "_id": use_cases.subscriber_of(MENTEE),
        "reminders": True,
    }
    assert await store.open_proposals(AIMMS) == []
    assert MENTEE not in store.proposals[PAIR["pair_id"]].values()
    # A late copy of her details is refused: she stays erased.
    assert await use_cases.record_contact(store, HER, NOW) == 0
    assert set(store.contacts[MENTEE]) == {"_id", "erased", "erased_at"}


async def test_withdrawal_cancels_what_was_still_to_go_to_her_and_marks_her_so_nothing_more_is_sent() -> None:
    store = FakeNotificationStore()
    await use_cases.record_contact(store, HER, NOW - timedelta(days=1))
    await queued(store, registered())
    await queued(store, proposed())

    cancelled = await use_cases.withdraw(store, MENTEE)
    await use_cases.record_contact(store, HER, NOW)  # her details may still change; she stays withdrawn

    assert cancelled == 2 and await use_cases.withdraw(store, MENTEE) == 0
    assert store.statuses() == [
        (MENTEE, "match_proposed", "cancelled"),
        (MENTEE, "registered", "cancelled"),
        (MENTOR, "match_proposed", "pending"),
    ]
    contact = store.contacts[MENTEE]
    assert contact["withdrawn"] is True and contact["as_of"] == NOW
    assert all("send_due" not in d for d in store.notifications.values() if d["status"] == "cancelled")


# -- a coordinator's retry


async def failed(store: FakeNotificationStore) -> dict[str, Any]:
    """A confirmation the delivery worker gave up on after an attempt and two looks for details."""
    [confirmation] = await queued(store, registered())
    await waiting_for(store, confirmation, f"participant:{MENTEE}")
    await waiting_for(store, confirmation, f"participant:{MENTEE}")
    await store.mark_failed(confirmation["_id"], "rejected by SMTP server (550): mailbox unavailable", [])
    return store.notifications[confirmation["_id"]]


async def test_a_coordinator_retries_a_failed_delivery_which_is_due_at_once_with_fresh_patience() -> None:
    store = FakeNotificationStore()
    before = await failed(store)
    assert (before["status"], before["attempts"], before["detail_checks"]) == ("failed", 1, 2)

    retried = await use_cases.retry_delivery(store, before["_id"], details_wait_seconds=WAIT)

    assert (retried["status"], retried["attempts"], retried["detail_checks"]) == ("pending", 0, 0)
    assert retried["send_due"] == retried["retried_at"] <= utcnow()
    assert retried["details_deadline"] == retried["retried_at"] + timedelta(seconds=WAIT)
    assert "failed_at" not in retried and "waiting_for" not in retried
    assert retried["last_error"].startswith("rejected by SMTP server")  # history, until the next attempt
    with pytest.raises(StateConflict) as twice:
        await use_cases.retry_delivery(store, before["_id"], details_wait_seconds=WAIT)
    assert twice.value.extra["rule"] == "failed-only"
    with pytest.raises(Missing):
        await use_cases.retry_delivery(store, "no-such-notification", details_wait_seconds=WAIT)


async def test_a_sent_delivery_or_one_whose_details_were_purged_cannot_be_retried() -> None:
    store = FakeNotificationStore()
    sent = (await queued(store, proposed(pair_id="pair-sent")))[0]
    await store.mark_sent(sent["_id"], [])
    purged = await failed(store)
    await store.purge_details(utcnow() + timedelta(seconds=1))

    refusals = []
    for doc in (sent, purged):
        with pytest.raises(StateConflict) as refused:
            await use_cases.retry_delivery(store, doc["_id"], details_wait_seconds=WAIT)
        refusals.append(refused.value.extra["rule"])

    assert refusals == ["failed-only", "details-kept"]
    assert [store.notifications[d["_id"]]["status"] for d in (sent, purged)] == ["sent", "failed"]


async def test_a_retry_that_another_coordinators_retry_overtook_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    store = FakeNotificationStore()
    doc = await failed(store)
    requeue = store.requeue_failed

    async def overtaken(retried: Any, now: Any) -> bool:
        assert await requeue(retried, now)  # the other coordinator's retry lands first
        return await requeue(retried, now)

    monkeypatch.setattr(store, "requeue_failed", overtaken)
    with pytest.raises(StateConflict) as refused:
        await use_cases.retry_delivery(store, doc["_id"], details_wait_seconds=WAIT)

    assert refused.value.extra["rule"] == "failed-only"
    assert store.notifications[doc["_id"]]["status"] == "pending"  # retried once, by the other


# -- open proposals, as the digest lists them


async def test_a_proposal_is_listed_until_it_closes_with_the_sides_that_have_answered() -> None:
    store = FakeNotificationStore()
    event = proposed()
    envelope = wrap(event, producer="matching")
    links = {"mentee_links": event.mentee_links, "mentor_links": event.mentor_links}

    await use_cases.proposal_opened(store, event, envelope)
    [opened] = await store.open_proposals(AIMMS)
    accepted = m.MatchAccepted(**PAIR, side="mentee")
    await use_cases.proposal_accepted(store, accepted, wrap(accepted, producer="matching"))
    reminder = m.MatchProposalReminder(**PAIR, awaiting=["mentor"], reply_by=event.reply_by, **links)
    await use_cases.proposal_reminded(store, reminder, wrap(reminder, producer="matching"))
    [answered] = await store.open_proposals(AIMMS)
    declined = m.MatchDeclined(**PAIR, side="mentor")
    await use_cases.proposal_closed(store, declined, wrap(declined, producer="matching"))
    await use_cases.proposal_opened(store, event, envelope)  # a late redelivery does not reopen it

    assert (opened.pair_id, opened.mentee_id, opened.mentor_id) == (PAIR["pair_id"], MENTEE, MENTOR)
    assert (opened.proposed_at, opened.reply_by, opened.answered) == (envelope.occurred_at, event.reply_by, ())
    assert answered.answered == ("mentee",)
    assert await store.open_proposals(AIMMS) == []


# -- opting out of reminders and digests


async def test_reminders_are_received_by_default_and_a_refusal_is_kept_with_who_made_it() -> None:
    store = FakeNotificationStore()
    subscriber = use_cases.subscriber_of(MENTEE)
    assert await use_cases.reminders_of(store, subscriber) == {"_id": subscriber, "reminders": True}

    refused = await use_cases.set_reminders(store, subscriber, reminders=False, by="opt-out link")

    assert (refused["reminders"], refused["changed_by"]) == (False, "opt-out link")
    assert (await use_cases.reminders_of(store, subscriber))["reminders"] is False
    assert (await use_cases.reminders_of(store, use_cases.subscriber_of(MENTOR)))["reminders"] is True


# -- the coordinators' digest


async def test_a_digest_enabled_is_due_at_once_unless_todays_went_out_then_at_tomorrows_hour(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(use_cases, "utcnow", lambda: NOW)  # 09:30 UTC
    store = FakeNotificationStore()
    config = digest.DigestConfig(AIMMS, (" Coordinator@AIMMS.example", COORDINATOR), True, 7)

    first = await use_cases.configure_digest(store, config)
    store.digests[AIMMS]["last_digest"] = NOW.date().isoformat()  # what the worker records once it went out
    moved = await use_cases.configure_digest(store, config)
    disabled = await use_cases.configure_digest(store, digest.DigestConfig(AIMMS, (), False, 7))

    assert first["recipients"] == [COORDINATOR] and first["digest_due"] == NOW
    assert moved["digest_due"] == NOW.replace(hour=7, minute=0) + timedelta(days=1)
    assert disabled["enabled"] is False and "digest_due" not in disabled
    assert await use_cases.digest_config(store, AIMMS) == disabled


async def test_a_digest_that_could_never_be_sent_is_refused_and_changes_nothing() -> None:
    store = FakeNotificationStore()
    await use_cases.configure_digest(store, digest.DigestConfig(AIMMS, (COORDINATOR,), True, 7))
    kept = dict(store.digests[AIMMS])

    with pytest.raises(RuleBroken) as nobody:
        await use_cases.configure_digest(store, digest.DigestConfig(AIMMS, (), True, 7))
    with pytest.raises(RuleBroken) as no_such_hour:
        await use_cases.configure_digest(store, digest.DigestConfig(AIMMS, (COORDINATOR,), True, 24))

    assert (nobody.value.extra["rule"], no_such_hour.value.extra["rule"]) == ("at-least-one", "hour-of-day")
    assert store.digests[AIMMS] == kept
    with pytest.raises(Missing):
        await use_cases.digest_config(store, "another-programme")


async def test_coordinators_are_those_the_digest_names_and_an_alert_that_must_reach_someone_waits_for_them() -> None:
    store = FakeNotificationStore()

    with pytest.raises(use_cases.NoCoordinators):
        await use_cases.coordinators_of(store, AIMMS, required=True)
    assert await use_cases.coordinators_of(store, AIMMS, required=False) == ()

    # Named in a digest they switched off: they still hear of concerns at once.
    await use_cases.configure_digest(store, digest.DigestConfig(AIMMS, (COORDINATOR, "lead@aimms.example"), False, 7))
    assert await use_cases.coordinators_of(store, AIMMS, required=True) == (COORDINATOR, "lead@aimms.example")
