"""Who may refuse which messages, and the signed links by which they do."""

import pytest

from aimms_notifications.domain import compose, messages
from aimms_notifications.handlers import MESSAGES
from aimms_notifications.links import InvalidLink, OptOutLinks
from aimms_shared.contracts.matching import MatchProposalReminder
from aimms_shared.contracts.surveys import SurveyInvitationIssued, SurveyReminderIssued
from aimms_shared.events import wrap
from aimms_shared.links import sign, verify
from tests.factories import notifications_settings
from tests.unit.test_notifications_mailer import build, read
from tests.unit.test_notifications_templates import EVENTS, KNOWN, MENTEE, SURVEY_EVENTS, digest_notes

KEY = b"k" * 32
LINKS = OptOutLinks(KEY, "https://aimms.example/notifications/")


def test_only_reminders_and_digests_are_optional_and_every_template_is_classified() -> None:
    assert {messages.PROPOSAL_REMINDER, messages.SURVEY_REMINDER, messages.DIGEST} == messages.OPTIONAL
    assert set(messages.TEMPLATES) == messages.OPTIONAL | messages.REQUIRED
    for procedure in ("match_proposed", "match_declined", "mentoring_started", "registered", "survey_invitation"):
        assert not messages.is_optional(procedure)
    with pytest.raises(ValueError, match="unknown template"):
        messages.is_optional("newsletter")


def test_a_survey_reminder_may_be_refused_but_the_invitation_itself_may_not() -> None:
    invitation, reminder = SURVEY_EVENTS
    assert isinstance(invitation, SurveyInvitationIssued) and isinstance(reminder, SurveyReminderIssued)
    [first] = messages.survey_invitation(invitation, wrap(invitation, producer="surveys"))
    [again] = messages.survey_invitation(reminder, wrap(reminder, producer="surveys"))
    assert (first.template, again.template) == (messages.SURVEY_INVITATION, messages.SURVEY_REMINDER)


def test_a_recipient_who_opted_out_is_skipped_for_optional_messages_only() -> None:
    opted_out = compose.Known(
        KNOWN.contacts, KNOWN.erased, KNOWN.withdrawn, KNOWN.programme, KNOWN.institutions, recipient_opted_out=True
    )
    for event in EVENTS + SURVEY_EVENTS:
        for note in MESSAGES[type(event)](event, wrap(event, producer="test")):
            decision = compose.compose(note, opted_out)
            if messages.is_optional(note.template):
                assert decision == compose.Skipped(compose.OPTED_OUT), note.template
            else:
                assert isinstance(decision, compose.Ready), note.template
    [digest] = digest_notes()
    assert compose.compose(digest, opted_out) == compose.Skipped(compose.OPTED_OUT)


def test_erasure_wins_over_an_opt_out() -> None:
    event = EVENTS[6]
    assert isinstance(event, MatchProposalReminder)
    [reminder] = messages.proposal_reminder(event, wrap(event, producer="matching"))
    gone = compose.Known({}, frozenset({reminder.recipient_id or ""}), frozenset(), KNOWN.programme, {}, True)
    assert compose.compose(reminder, gone) == compose.Cancelled("recipient erased")


def test_an_opt_out_link_names_its_subscriber_and_reads_back() -> None:
    url = LINKS.url(f"participant:{MENTEE}")
    assert url.startswith("https://aimms.example/notifications/opt-out/")
    assert LINKS.read(url.rsplit("/", 1)[1]) == f"participant:{MENTEE}"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature altered
        lambda t: LINKS.token("participant:p-someone-else").split(".")[0] + "." + t.split(".")[1],  # subscriber swapped
        lambda t: OptOutLinks(b"x" * 32, "https://x").token("participant:" + MENTEE),  # another key
        lambda t: t.split(".")[0],  # no signature
        lambda t: "%%%." + t.split(".")[1],  # not base64
        lambda t: "ÖÓ." + t.split(".")[1],  # not ASCII (found by fuzzing: it was a server error)
        lambda t: "_w." + t.split(".")[1],  # base64 of bytes that are not UTF-8
        lambda t: "",
    ],
)
def test_a_forged_or_altered_opt_out_link_is_refused(tamper) -> None:
    token = LINKS.token(f"participant:{MENTEE}")
    with pytest.raises(InvalidLink):
        LINKS.read(tamper(token))


def test_only_participants_and_addresses_can_be_opted_out() -> None:
    with pytest.raises(InvalidLink):
        LINKS.read(LINKS.token("programme:aimms-mentoring"))


def test_a_coordinators_link_does_not_reveal_her_address_and_ignores_case() -> None:
    subscriber = LINKS.subscriber_for_address("Mentoring-Office@Demo-University.ac.uk")
    assert subscriber == LINKS.subscriber_for_address(" mentoring-office@demo-university.ac.uk")
    token = LINKS.token(subscriber)
    assert "demo-university" not in subscriber and "demo-university" not in token
    assert LINKS.read(token) == subscriber


def test_signatures_depend_on_key_and_every_part() -> None:
    assert verify(KEY, sign(KEY, "a", "b"), "a", "b")
    assert not verify(KEY, sign(KEY, "a", "b"), "a|b")  # no two lists of parts sign the same text
    assert not verify(KEY, sign(KEY, "a|", "b"), "a", "|b")
    assert not verify(b"y" * 32, sign(KEY, "a", "b"), "a", "b")


def test_an_optional_email_offers_one_click_unsubscribe_and_a_required_one_does_not() -> None:
    optional = read(build(unsubscribe_url="https://aimms.example/notifications/opt-out/tok.sig"))
    assert optional["List-Unsubscribe"] == "<https://aimms.example/notifications/opt-out/tok.sig>"
    assert optional["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    required = read(build(unsubscribe_url=None))
    assert required["List-Unsubscribe"] is None and required["List-Unsubscribe-Post"] is None


@pytest.mark.parametrize("key", ["", "too-short", "k" * 31])
def test_the_link_signing_key_is_required_and_long(key: str) -> None:
    settings = notifications_settings()
    with pytest.raises(ValueError, match="link_signing_key"):
        settings.model_validate(settings.model_dump() | {"link_signing_key": key})


def test_the_retention_is_an_iso_8601_duration() -> None:
    settings = notifications_settings()
    assert settings.delivery_log_retention == "P90D"
    with pytest.raises(ValueError, match="ISO 8601"):
        settings.model_validate(settings.model_dump() | {"delivery_log_retention": "90 days"})


def test_after_a_key_rotation_links_already_sent_still_work_until_the_retired_key_is_dropped() -> None:
    old, new = b"o" * 32, b"n" * 32
    sent = OptOutLinks(old, "https://aimms.example").token(f"participant:{MENTEE}")

    rotated = OptOutLinks(new, "https://aimms.example", retired=(old,))
    assert rotated.read(sent) == f"participant:{MENTEE}"
    assert rotated.token(f"participant:{MENTEE}") != sent  # new links are signed with the new key
    with pytest.raises(InvalidLink):
        OptOutLinks(new, "https://aimms.example").read(sent)
