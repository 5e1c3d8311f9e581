"""A mentoring circle's emails: each member is introduced to the others once, those still in it hear
when one leaves, and someone erased or withdrawn is never introduced or named."""

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

from aimms_notifications import use_cases
from aimms_notifications.domain import compose, messages
from aimms_notifications.domain.compose import Known, Programme
from aimms_notifications.handlers import MESSAGES
from aimms_notifications.templates import RenderedMessage, Templates
from aimms_shared.contracts import matching as m
from aimms_shared.events import Envelope, wrap
from aimms_shared.mongo import utcnow
from tests.fakes import FakeNotificationStore
from tests.unit.test_notifications_templates import (
    AMINA,
    KNOWN,
    MENTEE,
    MENTOR,
    PEERS,
    PRIYA,
    circle_formed,
    member_left,
    render,
    rendered_messages,
)

CIRCLES = Programme(
    "peer-circles",
    "Peer Circles",
    term="P6M",
    trial_period="P1M",
    audience="women working in academic medicine",
    description="Peer Circles brings women in academic medicine together in small circles of peers from "
    "several medical schools, who meet every month to support one another in their careers.",
)
IN_CIRCLES = dataclasses.replace(KNOWN, programme=CIRCLES)
EVERYONE = [*PEERS, MENTOR]


def introductions(
    known: Known = IN_CIRCLES, templates: Templates | None = None, **changes: Any
) -> dict[str, RenderedMessage]:
    """The introductions to a circle of Peer Circles that go out, by address (none to someone erased or withdrawn)."""
    event = circle_formed(programme_id="peer-circles", **changes)
    notes = messages.circle_formed(event, wrap(event, producer="matching"))
    decisions = [(note, compose.compose(note, known)) for note in notes]
    return {
        decision.to_email: render(note, known, templates)
        for note, decision in decisions
        if isinstance(decision, compose.Ready)
    }


def without(*, erased: tuple[str, ...] = (), withdrawn: tuple[str, ...] = ()) -> Known:
    """What the read models hold once some have been erased (details gone) or withdrew (details kept)."""
    contacts = {pid: c for pid, c in IN_CIRCLES.contacts.items() if pid not in erased}
    return dataclasses.replace(IN_CIRCLES, contacts=contacts, erased=frozenset(erased), withdrawn=frozenset(withdrawn))


async def queue_introductions(
    store: FakeNotificationStore, event: m.CircleFormed, envelope: Envelope
) -> list[dict[str, Any]]:
    """Queue a circle's introductions for delivery; those newly queued (none for an event seen before)."""
    return await use_cases.queue(
        store,
        messages.circle_formed(event, envelope),
        message_id_domain="aimms.test",
        details_wait_seconds=3600,
        lease=timedelta(seconds=30),
    )


# -- who is told what


def test_each_member_gets_one_introduction_naming_everyone_else_and_what_she_shares() -> None:
    event = circle_formed()
    notes = messages.circle_formed(event, wrap(event, producer="matching"))

    assert [n.recipient_id for n in notes] == EVERYONE
    for note in notes:
        others = [m["participant_id"] for m in note.context[messages.MEMBERS]]
        assert others == [pid for pid in EVERYONE if pid != note.recipient_id]  # peers, then the facilitator
        assert note.template == messages.CIRCLE_FORMED and note.partner_id is None
    amina, priya = notes[0], notes[-1]
    assert (amina.context["role"], amina.context["shared_interests"]) == ("peer", PEERS[MENTEE])
    assert (priya.context["role"], priya.context["shared_interests"]) == ("facilitator", [])
    assert {"role": "facilitator", "participant_id": MENTOR} in amina.context[messages.MEMBERS]


async def test_a_redelivered_circle_queues_no_introduction_twice() -> None:
    store = FakeNotificationStore()
    event = circle_formed()
    envelope = wrap(event, producer="matching")

    first = await queue_introductions(store, event, envelope)
    again = await queue_introductions(store, event, envelope)

    assert len(first) == len(EVERYONE) and again == []
    assert {d["_id"] for d in first} == {
        messages.notification_id(str(envelope.event_id), pid, messages.CIRCLE_FORMED) for pid in EVERYONE
    }


def test_only_those_still_in_the_circle_hear_that_a_member_left() -> None:
    event = member_left("p-sara")
    listed_too = event.model_copy(update={"remaining": [*event.remaining, "p-sara"]})

    for left in (event, listed_too):
        notes = messages.circle_member_left(left, wrap(left, producer="matching"))
        assert [n.recipient_id for n in notes] == [pid for pid in EVERYONE if pid != "p-sara"]
        assert {(n.template, n.partner_id, n.context["partner_role"]) for n in notes} == {
            (messages.CIRCLE_MEMBER_LEFT, "p-sara", "peer")
        }


def test_circle_events_are_subscribed_and_the_follow_up_is_left_to_surveys() -> None:
    assert MESSAGES[m.CircleFormed] is messages.circle_formed
    assert MESSAGES[m.CircleMemberLeft] is messages.circle_member_left
    assert m.CircleFollowUpDue not in MESSAGES


# -- what the introduction says


def test_a_peer_meets_the_others_and_her_facilitator_with_how_to_reach_them_in_the_programmes_words() -> None:
    sent = introductions()
    amina = sent[AMINA]

    assert amina.subject == "Introducing your mentoring circle in Peer Circles"
    for body in (amina.text, amina.html):
        for pid in ("p-ngozi", "p-sara", "p-mei", MENTOR):
            contact = KNOWN.contacts[pid]
            assert contact.name in body and contact.email in body
        assert KNOWN.institutions["riverside"] in body and KNOWN.institutions["northgate"] in body
        assert AMINA not in body  # her own address is not listed among the others
        assert "Prof Priya Raman will get in touch" in body
        assert "You share an interest in global health and maternal medicine with others in the circle" in body
        assert "career stages range from Lecturer to Senior lecturer" in body
        assert "Monday 1 September 2025" in body  # the follow-up questionnaire
        assert CIRCLES.description in body  # what the circle is, in the programme's own words
        assert "meet regularly" in body and "keeps time" in body and "stays in the circle" in body
        assert "Peer Circles team" in body and "AIMMS" not in body
    assert "- Dr Sara Haddad, Riverside Medical School: sara.haddad@riverside.ac.uk" in amina.text
    assert 'href="mailto:sara.haddad@riverside.ac.uk"' in amina.html


def test_the_facilitator_is_introduced_to_every_peer_and_told_what_facilitating_asks() -> None:
    priya = introductions()[PRIYA]

    assert priya.subject == "The mentoring circle you facilitate in Peer Circles"
    for body in (priya.text, priya.html):
        for pid in PEERS:
            assert KNOWN.contacts[pid].email in body
        assert PRIYA not in body and "Your facilitator" not in body
        assert "As the facilitator, you keep time" in body and "suggest times for a first meeting" in body


def test_without_a_facilitator_the_peers_hear_the_coordinators_will_find_one() -> None:
    sent = introductions(facilitator=None, stages=["Lecturer", "Lecturer"])

    assert set(sent) == {KNOWN.contacts[pid].email for pid in PEERS}
    for body in (sent[AMINA].text, sent[AMINA].html):
        assert "coordinators will find one" in body and PRIYA not in body
        assert "Its peers are all at the same career stage: Lecturer." in body


def test_a_programme_describes_its_circles_in_its_own_template_folder(tmp_path: Path) -> None:
    own = tmp_path / "programmes" / "peer-circles"
    own.mkdir(parents=True)
    (own / "_circle.txt").write_text("OUR CIRCLES\nSix of you, once a month, over lunch.\n")

    sent = introductions(templates=Templates(str(tmp_path)))

    assert "Six of you, once a month, over lunch." in sent[AMINA].text
    assert "HOW A CIRCLE WORKS" not in sent[AMINA].text
    assert "How a circle works" in sent[AMINA].html  # only the text part was overridden


# -- details that have not arrived, and people who are gone


def test_an_introduction_waits_for_every_members_details_and_institution() -> None:
    event = circle_formed()
    [to_amina, *_] = messages.circle_formed(event, wrap(event, producer="matching"))
    sara = IN_CIRCLES.contacts["p-sara"]
    no_sara = {pid: c for pid, c in IN_CIRCLES.contacts.items() if pid != "p-sara"}
    no_riverside = {k: v for k, v in IN_CIRCLES.institutions.items() if k != "riverside"}

    assert compose.compose(to_amina, dataclasses.replace(IN_CIRCLES, contacts=no_sara)) == compose.Waiting(
        ["participant:p-sara"]
    )
    assert compose.compose(to_amina, dataclasses.replace(IN_CIRCLES, institutions=no_riverside)) == compose.Waiting(
        [f"institution:{sara.institution_id}"]
    )
    assert compose.named_participants(to_amina) == EVERYONE


def test_a_member_erased_or_withdrawn_since_is_left_out_and_not_waited_for() -> None:
    known = without(erased=("p-sara",), withdrawn=("p-mei", MENTOR))
    sent = introductions(known)

    assert set(sent) == {AMINA, KNOWN.contacts["p-ngozi"].email}  # nothing to those who are gone
    for body in (sent[AMINA].text, sent[AMINA].html):
        assert "Dr Ngozi Adeyemi" in body
        for gone in ("p-sara", "p-mei", MENTOR):
            assert KNOWN.contacts[gone].name not in body and KNOWN.contacts[gone].email not in body
        assert "coordinators will find one" in body
    event = circle_formed()
    [_, _, to_sara, to_mei, to_priya] = messages.circle_formed(event, wrap(event, producer="matching"))
    assert compose.compose(to_sara, known) == compose.Cancelled("recipient erased")
    assert compose.compose(to_mei, known) == compose.compose(to_priya, known) == compose.Cancelled("recipient withdrew")


async def test_a_withdrawal_lets_an_introduction_that_waited_for_her_details_go_without_her() -> None:
    store = FakeNotificationStore()
    event = circle_formed()
    queued = await queue_introductions(store, event, wrap(event, producer="matching"))
    to_amina = queued[0]
    await store.mark_waiting(to_amina["_id"], ["participant:p-sara"], utcnow() + timedelta(minutes=10))

    await use_cases.withdraw(store, "p-sara")

    assert store.notifications[to_amina["_id"]]["send_due"] <= utcnow()


def test_who_left_is_named_unless_she_was_erased_then_she_is_called_by_her_part() -> None:
    named = rendered_messages(member_left("p-sara"), without(withdrawn=("p-sara",)))  # withdrew: details kept
    unnamed = rendered_messages(member_left("p-sara"), without(erased=("p-sara",)))
    facilitator = rendered_messages(member_left(MENTOR, "facilitator"), without(erased=(MENTOR,)))

    assert AMINA in named and KNOWN.contacts["p-sara"].email not in named
    assert named[AMINA].subject == "Your mentoring circle: Dr Sara Haddad has left"
    assert unnamed[AMINA].subject == "Your mentoring circle: one member has left"
    for body in (unnamed[AMINA].text, unnamed[AMINA].html):
        assert "one member has left your mentoring circle" in body and "Sara" not in body
        assert "The circle goes on" in body
    for body in (facilitator[AMINA].text, facilitator[AMINA].html):
        assert "your facilitator has left" in body and "Priya" not in body
        assert "look for a new facilitator" in body


def test_the_news_that_a_member_left_waits_for_her_details_like_a_partners() -> None:
    event = member_left("p-sara")
    [to_amina, *_] = messages.circle_member_left(event, wrap(event, producer="matching"))
    no_sara = {pid: c for pid, c in IN_CIRCLES.contacts.items() if pid != "p-sara"}

    assert compose.compose(to_amina, dataclasses.replace(IN_CIRCLES, contacts=no_sara)) == compose.Waiting(
        ["participant:p-sara"]
    )
    assert "Dr Sara Haddad has left" in render(to_amina, IN_CIRCLES).text
