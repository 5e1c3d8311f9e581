"""Every step of the procedure sends the right email to the right people, once, over real SMTP.

Registration runs for real (participants, contacts, erasure); matching's events are published
straight into the test's namespace, as matching would publish them, so each trigger is exercised
without running a matching round.
"""

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from aimms_notifications.app import create_app as create_notifications
from aimms_notifications.domain.compose import Programme
from aimms_notifications.settings import NotificationsSettings
from aimms_notifications.store import PROGRAMMES, NotificationStore
from aimms_notifications.templates import day
from aimms_shared.contracts import matching as m
from aimms_shared.contracts.notifications import DELIVERIES
from aimms_shared.contracts.registration import InstitutionOnboarded, ParticipantContact
from aimms_shared.events import Envelope, Event, in_namespace, wrap
from tests.factories import interest_events, programme_opened

from .conftest import (
    Infrastructure,
    Platform,
    bearer,
    eventually,
    mails_to,
    metric,
    read_topic,
    running,
    service_settings,
)

pytestmark = pytest.mark.integration

MAIL_SUBJECTS = {
    "proposed_mentee": "We propose Prof Priya Raman as your mentor: please answer by",
    "proposed_mentor": "We propose you as mentor to Dr Amina Okafor: please answer by",
}


async def publish(infra: Infrastructure, namespace: str, *events: Event, producer: str = "matching") -> list[Envelope]:
    """Publish events into the test's namespace as their producer would; return their envelopes."""
    envelopes = [wrap(event, producer=producer) for event in events]
    kafka = AIOKafkaProducer(bootstrap_servers=infra.kafka)
    await kafka.start()
    try:
        for event, envelope in zip(events, envelopes, strict=True):
            await kafka.send_and_wait(
                in_namespace(event.topic.name, namespace),
                envelope.encode(),
                key=event.key().encode(),
                headers=[(k, v.encode()) for k, v in envelope.headers().items()],
            )
    finally:
        await kafka.stop()
    return envelopes


async def register(platform: Platform, who: str, name: str, *, role: str) -> tuple[str, str]:
    """Register someone at the demo university; return her participant id and address."""
    email = f"{who}.{platform.namespace}@demo-university.ac.uk"
    body: dict[str, Any] = {
        "name": name,
        "email": email,
        "programme_id": "aimms-mentoring",
        "role": role,
        "job_title": "Senior lecturer" if role == "mentor" else "Lecturer",
        "seniority": "Senior lecturer" if role == "mentor" else "Lecturer",
        "pathway": "clinical",
        "research_interests": ["global health", "maternal medicine"],
        "consents": {"privacy_notice": "1", "code_of_conduct": "1", "confidentiality": "1"},
        "confirmed_eligibility": ["woman", "ethnic-minority", "academic-medicine"],
    }
    if role == "mentor":
        body |= {"offers": "grant writing", "mentor_capacity": 2, "publish_profile": True}
    else:
        body |= {"seeks": "career advice"}
    response = await platform.registration.post("/participants", json=body)
    assert response.status_code == 201, response.text
    return response.json()["participant_id"], email


def subjects(infra: Infrastructure, address: str) -> list[str]:
    """Subjects of the mails an address received, in no particular order."""
    return sorted(subject(m) for m in mails_to(infra, address))


def subject(mail: Any) -> str:
    """A mail's subject, unfolded (long subjects are folded over lines on the wire)."""
    return " ".join(str(mail["Subject"]).split())


def text_of(infra: Infrastructure, address: str, subject_start: str) -> str:
    """The plain-text body of the one mail to `address` whose subject starts with `subject_start`."""
    [mail] = [m for m in mails_to(infra, address) if subject(m).startswith(subject_start)]
    return mail.get_body(("plain",)).get_content()


def links(pair_id: str, side: str) -> m.ProposalLinks:
    return m.ProposalLinks(
        accept=f"http://matching.test/answers/{pair_id}.{side}.accept.sig",
        decline=f"http://matching.test/answers/{pair_id}.{side}.decline.sig",
    )


def pair_of(pair_id: str, mentee_id: str, mentor_id: str) -> dict[str, str]:
    return {"pair_id": pair_id, "programme_id": "aimms-mentoring", "mentee_id": mentee_id, "mentor_id": mentor_id}


def proposal(pair: dict[str, str], reply_by: datetime) -> m.MatchProposed:
    return m.MatchProposed(
        **pair,
        mentee_institution_id="demo-university",
        mentor_institution_id="demo-university",
        round="stable",
        choice_rank=1,
        fallback_reason=None,
        score=2.0,
        shared_interests=["global health"],
        seniority_gap=1,
        reply_by=reply_by,
        mentee_links=links(pair["pair_id"], "mentee"),
        mentor_links=links(pair["pair_id"], "mentor"),
    )


def reminder(
    pair: dict[str, str], reply_by: datetime, awaiting: tuple[m.Side, ...] = ("mentee", "mentor")
) -> m.MatchProposalReminder:
    return m.MatchProposalReminder(
        **pair,
        awaiting=list(awaiting),
        reply_by=reply_by,
        mentee_links=links(pair["pair_id"], "mentee"),
        mentor_links=links(pair["pair_id"], "mentor"),
    )


async def test_registration_is_confirmed_with_what_happens_next_for_her_role(
    platform: Platform, infrastructure: Infrastructure
) -> None:
    participant_id, email = await register(platform, "amina", "Dr Amina Okafor", role="mentee")

    [mail] = await eventually(lambda: mails_to(infrastructure, email))

    assert mail["Subject"] == "Your registration with AIMMS Mentoring is complete"
    text = mail.get_body(("plain",)).get_content()
    assert "Dear Dr Amina Okafor" in text and "Demo University Medical School" in text
    assert "As a mentee" in text and "As a mentor" not in text
    as_admin = bearer(platform.admin_token)
    log = (
        await platform.notifications.get("/deliveries", params={"participant_id": participant_id}, headers=as_admin)
    ).json()
    assert [(d["template"], d["status"]) for d in log] == [("registered", "sent")]
    assert mail["Message-ID"] == f"<{log[0]['notification_id']}@aimms.local>"


async def test_each_step_of_a_match_mails_the_right_people_once_and_redelivery_sends_nothing_more(
    platform: Platform, infrastructure: Infrastructure
) -> None:
    infra, ns = infrastructure, platform.namespace
    mentee_id, amina = await register(platform, "amina", "Dr Amina Okafor", role="mentee")
    mentor_id, priya = await register(platform, "priya", "Prof Priya Raman", role="mentor")
    await eventually(lambda: mails_to(infra, amina) and mails_to(infra, priya))
    now = datetime.now(UTC)
    first, second = pair_of("pair-1", mentee_id, mentor_id), pair_of("pair-2", mentee_id, mentor_id)

    # A proposal: each side gets her own links; then a reminder to the side still silent; then a decline.
    started = time.monotonic()
    await publish(infra, ns, proposal(first, now + timedelta(days=14)))
    await eventually(lambda: len(mails_to(infra, amina)) == 2 and len(mails_to(infra, priya)) == 2)
    latency = time.monotonic() - started
    mentee_text = text_of(infra, amina, MAIL_SUBJECTS["proposed_mentee"])
    mentor_text = text_of(infra, priya, MAIL_SUBJECTS["proposed_mentor"])
    assert links("pair-1", "mentee").accept in mentee_text and links("pair-1", "mentor").accept not in mentee_text
    assert links("pair-1", "mentor").decline in mentor_text and links("pair-1", "mentee").decline not in mentor_text
    assert "your first choice" in mentee_text and "named you as her first choice" in mentor_text

    await publish(
        infra,
        ns,
        reminder(first, now + timedelta(days=14), awaiting=("mentor",)),
        m.MatchDeclined(**first, side="mentor", reason="no capacity this term"),
    )
    await eventually(lambda: len(mails_to(infra, priya)) == 3 and len(mails_to(infra, amina)) == 3)
    assert "A new proposal is on its way" in text_of(infra, amina, "Your proposed match with Prof Priya Raman")
    assert any(s.startswith("Reminder: your answer") for s in subjects(infra, priya))
    assert not any(s.startswith("Reminder") for s in subjects(infra, amina))

    # A second proposal both accept: the partnership's whole life, each step to both.
    term_ends = now + timedelta(days=182)
    envelopes = await publish(
        infra,
        ns,
        m.MentoringStarted(
            **second,
            mentee_institution_id="demo-university",
            mentor_institution_id="demo-university",
            started_at=now,
            trial_ends_at=now + timedelta(days=30),
            follow_up_at=term_ends,
            term_ends_at=term_ends,
        ),
        m.SixMonthsElapsed(**second, started_at=now, follow_up_at=term_ends),
        m.MentoringTermEnded(**second, term_ended_at=term_ends, reply_by=term_ends + timedelta(days=14)),
        m.MatchExtended(**second, term_ends_at=term_ends + timedelta(days=182)),
        m.MatchEnded(**second, reason="completed", stage="mentoring", ended_by="mentee"),
    )
    await eventually(lambda: len(mails_to(infra, amina)) == 8 and len(mails_to(infra, priya)) == 8)
    assert "priya." in text_of(infra, amina, "Introducing your mentor: Prof Priya Raman")
    assert "amina." in text_of(infra, priya, "Introducing your mentee: Dr Amina Okafor")
    for address in (amina, priya):
        got = subjects(infra, address)
        assert any(s.startswith("Checking in") for s in got)
        assert any(s.endswith("continue or conclude?") for s in got)
        assert any("continues until" in s for s in got)
        assert any(s.endswith("has concluded") for s in got)

    # Kafka redelivers the whole partnership's events (a consumer crash before committing): each copy is
    # handled again, and queues nothing (a message's id is derived from its event's).
    def handled(event_type: str) -> float:
        labels = {"topic": "matching.pairs", "event_type": event_type, "outcome": "processed"}
        return metric(platform.notifications_app, "aimms_events_consumed_total", **labels)

    event_types = (
        "MatchProposed",
        "MatchProposalReminder",
        "MatchDeclined",
        "MentoringStarted",
        "MatchEnded",
    )
    before = {event_type: handled(event_type) for event_type in event_types}
    await publish_again(infra, ns, "matching.pairs")
    for event_type in event_types:
        await eventually(lambda: handled(event_type) == before[event_type] + 1)  # noqa: B023
    assert len(mails_to(infra, amina)) == len(mails_to(infra, priya)) == 8

    as_admin = bearer(platform.admin_token)
    query = {"source_event_id": str(envelopes[0].event_id)}
    log = (await platform.notifications.get("/deliveries", params=query, headers=as_admin)).json()
    assert sorted(d["recipient_id"] for d in log) == sorted([mentee_id, mentor_id])
    assert {d["status"] for d in log} == {"sent"}
    print(f"\nMatchProposed published -> both emails accepted by SMTP and visible in the sink: {latency * 1000:.0f} ms")


def address(pid: str, namespace: str) -> str:
    return f"{pid}.{namespace}@northgate.ac.uk"


def read_models(namespace: str, people: dict[str, str]) -> list[Event]:
    """What registration would have published: the programme, the institutions, everyone's contact."""
    return [
        programme_opened(),
        InstitutionOnboarded(institution_id="northgate", name="Northgate School of Medicine", email_domains=[]),
        InstitutionOnboarded(institution_id="demo-university", name="Demo University Medical School", email_domains=[]),
        *(
            ParticipantContact(
                participant_id=pid,
                programme_id="aimms-mentoring",
                institution_id="northgate",
                name=name,
                email=address(pid, namespace),
            )
            for pid, name in people.items()
        ),
    ]


async def publish_again(infra: Infrastructure, namespace: str, topic_name: str) -> None:
    """Send every record of a topic again, byte for byte, as a redelivery would."""
    topic = in_namespace(topic_name, namespace)
    records = await read_topic(infra, topic, expect=10_000, timeout=3)
    kafka = AIOKafkaProducer(bootstrap_servers=infra.kafka)
    await kafka.start()
    try:
        for record in records:
            await kafka.send_and_wait(topic, record.value, key=record.key, headers=list(record.headers))
    finally:
        await kafka.stop()


async def test_erasure_forgets_her_details_and_cancels_what_was_still_to_be_sent_to_her(
    platform: Platform, infrastructure: Infrastructure
) -> None:
    infra, ns = infrastructure, platform.namespace
    mentee_id, amina = await register(platform, "amina", "Dr Amina Okafor", role="mentee")
    await eventually(lambda: mails_to(infra, amina))
    # Proposed to a mentor whose details never arrive: the message to her waits for them.
    [envelope] = await publish(infra, ns, proposal(pair_of("pair-9", mentee_id, "p-never-known"), datetime.now(UTC)))
    as_admin = bearer(platform.admin_token)

    async def log() -> list[dict[str, Any]]:
        query = {"source_event_id": str(envelope.event_id)}
        return (await platform.notifications.get("/deliveries", params=query, headers=as_admin)).json()

    waiting = await eventually(lambda: _with(log, lambda d: d["waiting_for"] == ["participant:p-never-known"]))
    assert {d["status"] for d in waiting} == {"pending"}

    erased = await platform.registration.delete(f"/participants/{mentee_id}")
    assert erased.status_code == 204

    to_her = await eventually(
        lambda: _with(log, lambda d: d["recipient_id"] != mentee_id or d["status"] == "cancelled")
    )
    assert [d["last_error"] for d in to_her if d["recipient_id"] == mentee_id] == ["recipient erased"]
    client: AsyncMongoClient = AsyncMongoClient(infra.mongodb_uri)
    try:
        contact = await client[platform.notifications_settings.mongodb_database]["contacts"].find_one(
            {"_id": mentee_id}
        )
    finally:
        await client.close()
    assert contact is not None and contact["erased"] is True
    assert "email" not in contact and "name" not in contact
    assert len(mails_to(infra, amina)) == 1  # the registration confirmation only


async def _with(log: Any, condition: Any) -> list[dict[str, Any]] | None:
    entries = await log()
    return entries if entries and all(condition(d) for d in entries) else None


async def test_a_message_waits_for_details_that_arrive_late_and_is_parked_with_a_reason_if_they_never_do(
    infrastructure: Infrastructure, namespace: str
) -> None:
    infra = infrastructure
    settings = service_settings(NotificationsSettings, infra, namespace, details_wait_seconds=4.0)
    app = create_notifications(settings)
    async with running(app):
        now = datetime.now(UTC)
        late, never = pair_of("pair-late", "p-amina", "p-priya"), pair_of("pair-never", "p-amina", "p-ghost")
        [late_envelope, never_envelope] = await publish(
            infra, namespace, proposal(late, now + timedelta(days=14)), proposal(never, now + timedelta(days=14))
        )
        people = {"p-amina": "Dr Amina Okafor", "p-priya": "Prof Priya Raman"}
        await publish(infra, namespace, *read_models(namespace, people), producer="registration")

        priya = f"p-priya.{namespace}@northgate.ac.uk"
        [mail] = await eventually(lambda: mails_to(infra, priya))
        assert subject(mail).startswith("We propose you as mentor to Dr Amina Okafor")

        # Both messages about the ghost's pair wait for her details, then fail with the reason.
        failed = await eventually(lambda: _failures(infra, namespace, expect=2), timeout=30)
        assert {f["payload"]["source_event_id"] for f in failed} == {str(never_envelope.event_id)}
        assert all("participant:p-ghost" in f["payload"]["reason"] for f in failed)
        amina = f"p-amina.{namespace}@northgate.ac.uk"
        assert [subject(m) for m in mails_to(infra, amina)] == [
            "We propose Prof Priya Raman as your mentor: please answer by " + day(now + timedelta(days=14))
        ]
        assert late_envelope.event_id != never_envelope.event_id


async def _failures(infra: Infrastructure, namespace: str, expect: int) -> list[dict[str, Any]] | None:
    records = await read_topic(infra, in_namespace(DELIVERIES.name, namespace), expect=10_000, timeout=1)
    failed = [json.loads(r.value) for r in records if dict(r.headers)["event_type"] == b"NotificationFailed"]
    return failed if len(failed) >= expect else None


async def test_a_welcome_waits_for_its_programme_and_is_worded_from_it(
    infrastructure: Infrastructure, namespace: str
) -> None:
    infra = infrastructure
    app = create_notifications(service_settings(NotificationsSettings, infra, namespace))
    email = f"dean.{namespace}@demo-university.ac.uk"
    reverse = programme_opened(
        programme_id="reverse-mentoring",
        name="Reverse Mentoring",
        max_mentor_capacity=1,
        seniority_scale=["Student", "Dean"],
        mentor_more_senior=False,
        term="P4M",
        follow_up_after="P3M",
        audience="students under-represented in medicine and the senior staff they mentor",
        description="Reverse Mentoring pairs students, as mentors, with senior staff of the medical school.",
    )
    async with running(app):
        interest = interest_events(
            email=email, name="Prof Dean", programme_id="reverse-mentoring", programme_name="Reverse Mentoring"
        )
        demo = InstitutionOnboarded(institution_id="demo-university", name="Demo University", email_domains=[])
        await publish(infra, namespace, demo, *interest, producer="registration")
        await asyncio.sleep(2)
        assert mails_to(infra, email) == []  # its programme is not known here yet: it waits, it is not guessed

        await publish(infra, namespace, reverse, producer="registration")
        [mail] = await eventually(lambda: mails_to(infra, email))
        text = mail.get_body(("plain",)).get_content()
        assert mail["Subject"] == "Welcome to Reverse Mentoring"
        assert reverse.description in text and "runs for 4 months" in text
        assert "ethnic minority" not in text and "six months" not in text and "AIMMS" not in text


async def test_a_programme_stored_before_it_described_itself_still_loads(
    infrastructure: Infrastructure, namespace: str
) -> None:
    client: AsyncMongoClient = AsyncMongoClient(infrastructure.mongodb_uri, tz_aware=True)
    try:
        db = client[f"{namespace}_notifications"]
        old = {"_id": "aimms-mentoring", "programme_id": "aimms-mentoring", "name": "AIMMS Mentoring"}
        await db[PROGRAMMES].insert_one(old | {"term": "P6M", "trial_period": "P1M", "as_of": datetime.now(UTC)})
        store = NotificationStore(db)

        programme = (await store.known([], "aimms-mentoring")).programme

        assert programme == Programme("aimms-mentoring", "AIMMS Mentoring", term="P6M", trial_period="P1M")
        assert programme.mentor_more_senior and programme.description == ""
        newer = Programme("aimms-mentoring", "AIMMS Mentoring", "P6M", "P1M", True, "women in medicine", "It pairs.")
        await store.record_programme(newer, datetime.now(UTC))
        assert (await store.known([], "aimms-mentoring")).programme == newer
    finally:
        await client.close()
