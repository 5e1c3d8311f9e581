"""An invitation's life, without I/O: issued with a link, reminded a bounded number of times, expired."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from aimms_shared.contracts.surveys import SurveyInvitationIssued, SurveyReminderIssued
from aimms_surveys.domain import invitations
from aimms_surveys.domain.invitations import SurveyLinkUnusable, SurveyPolicy

T0 = datetime(2025, 1, 31, 9, 0, tzinfo=UTC)
DEFAULT_POLICY = SurveyPolicy()


def issued(
    policy: SurveyPolicy = DEFAULT_POLICY, token: str = "tok-1"
) -> tuple[invitations.Invitation, SurveyInvitationIssued]:
    invitation, event = invitations.issue(
        invitation_id="inv-1",
        participant_id="p-1",
        programme_id="aimms-mentoring",
        institution_id="demo-university",
        wave="baseline",
        role="mentee",
        questionnaire_version=1,
        policy=policy,
        now=T0,
        token=(token, invitations.token_hash(token)),
        public_url="https://api.example/surveys/",
    )
    assert isinstance(event, SurveyInvitationIssued)
    return invitation, event


def test_an_invitation_carries_her_link_and_expiry_and_keeps_only_the_tokens_hash() -> None:
    invitation, event = issued()
    assert event.link == "https://api.example/surveys/surveys/tok-1"
    assert (event.participant_id, event.wave, event.role) == ("p-1", "baseline", "mentee")
    assert event.expires_at == invitation.expires_at == T0 + timedelta(days=28)
    assert invitation.token_hashes == (invitations.token_hash("tok-1"),)
    assert "tok-1" not in repr(invitation)


def test_tokens_are_unguessable_and_distinct() -> None:
    tokens = {invitations.new_token()[0] for _ in range(100)}
    assert len(tokens) == 100 and all(len(t) >= 43 for t in tokens)


def test_reminders_come_at_the_interval_up_to_the_limit_each_with_a_fresh_link_then_it_expires() -> None:
    invitation, _ = issued(SurveyPolicy(valid_for="P28D", reminder_every="P7D", max_reminders=2))
    assert invitation.next_due() == T0 + timedelta(days=7)
    unchanged, events = invitations.tick(invitation, T0 + timedelta(days=6), ("t2", "h2"), "https://x")
    assert (unchanged, events) == (invitation, [])

    first, [reminder] = invitations.tick(invitation, T0 + timedelta(days=7), ("t2", "h2"), "https://x")
    assert isinstance(reminder, SurveyReminderIssued)
    assert (reminder.reminder, reminder.link) == (1, "https://x/surveys/t2")
    assert first.token_hashes == (invitations.token_hash("tok-1"), "h2")  # the first link still works
    assert first.next_due() == T0 + timedelta(days=14)

    second, [again] = invitations.tick(first, T0 + timedelta(days=14), ("t3", "h3"), "https://x")
    assert again.reminder == 2 and second.next_due() == second.expires_at  # no third reminder
    assert invitations.tick(second, T0 + timedelta(days=20), ("t4", "h4"), "https://x") == (second, [])

    expired, events = invitations.tick(second, second.expires_at, ("t5", "h5"), "https://x")
    assert (expired.status, events, expired.next_due()) == ("expired", [], None)


def test_no_reminder_falls_after_the_expiry() -> None:
    invitation, _ = issued(SurveyPolicy(valid_for="P10D", reminder_every="P7D", max_reminders=3))
    reminded, _ = invitations.tick(invitation, T0 + timedelta(days=7), ("t2", "h2"), "https://x")
    assert reminded.next_reminder_at() is None and reminded.next_due() == T0 + timedelta(days=10)


def test_only_an_open_unexpired_invitation_can_be_answered() -> None:
    invitation, _ = issued()
    invitation.check_answerable(T0 + timedelta(days=1))
    for status in ("answered", "voided", "expired"):
        with pytest.raises(SurveyLinkUnusable):
            replace(invitation, status=status).check_answerable(T0)
    with pytest.raises(SurveyLinkUnusable) as caught:
        invitation.check_answerable(invitation.expires_at)
    assert caught.value.status == 410 and "already answered" in caught.value.detail


def test_an_answered_or_voided_invitation_is_left_alone_by_the_clock() -> None:
    invitation, _ = issued()
    for status in ("answered", "voided"):
        closed = replace(invitation, status=status)
        assert invitations.tick(closed, T0 + timedelta(days=100), ("t", "h"), "https://x") == (closed, [])
        assert closed.next_due() is None
