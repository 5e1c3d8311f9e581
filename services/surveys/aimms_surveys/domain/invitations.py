"""Invitations to answer a questionnaire, and a programme's survey policy; pure, no I/O.

An invitation asks one participant, in one role, to answer one wave, once per programme. Its
link carries a random token; only the token's hash is kept. Reminders each bring a fresh link
(the earlier ones keep working), a bounded number of times, until the invitation expires. Times
come from durations captured on the invitation, so tests run a whole life in seconds.
"""

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aimms_shared.contracts.registration import IsoDuration, Role
from aimms_shared.contracts.surveys import SurveyInvitationIssued, SurveyReminderIssued, Wave
from aimms_shared.durations import parse
from aimms_shared.errors import LinkUnusable
from aimms_shared.events import Event
from aimms_shared.mapping import picked

Status = Literal["open", "answered", "voided", "expired"]


class SurveyPolicy(BaseModel):
    """When a programme's questionnaires are sent, how long links last, and how reports protect people."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    baseline_on: Literal["mentoring_started", "registration"] = Field(
        default="mentoring_started", description="When the baseline is sent: as mentoring starts, or at registration."
    )
    follow_up: bool = Field(default=True, description="Send the follow-up when the programme's follow-up point passes.")
    valid_for: IsoDuration = Field(default="P28D", description="How long an invitation's link can be used.")
    reminder_every: IsoDuration = Field(default="P7D", description="Unanswered this long (again): a reminder.")
    max_reminders: int = Field(default=2, ge=0, le=5)
    min_cell_size: int = Field(
        default=3,
        ge=2,
        le=50,
        description="A role's answers appear in reports only when at least this many responded. With 3, no "
        "respondent can work out another's answers by taking her own away from the figures.",
    )


class SurveyLinkUnusable(LinkUnusable):
    code = "survey-link-unusable"
    title = "This survey link cannot be used"
    advice = (
        "This survey link cannot be used: it is not valid, was already answered, or has expired. "
        "If you have not answered yet, ask your scheme coordinator for a new link."
    )


def new_token() -> tuple[str, str]:
    """A fresh unguessable token (256 bits) and the hash under which it is kept."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    """What is stored of a token: a 256-bit token needs no salt or slow hash to resist guessing."""
    return hashlib.sha256(token.encode()).hexdigest()


def _repeat(start: datetime, duration: str, times: int) -> datetime:
    step = parse(duration)
    moment = start
    for _ in range(times):
        moment = step.after(moment)
    return moment


@dataclass(frozen=True)
class Invitee:
    """A member of a pair or a circle whom the evaluation asks, in the role she has in it."""

    participant_id: str
    role: Role
    institution_id: str | None = None  # None where the event does not say (SixMonthsElapsed)


@dataclass(frozen=True)
class Invitation:
    """One participant asked, in one role, to answer one wave of a programme's questionnaire."""

    invitation_id: str
    participant_id: str
    programme_id: str
    institution_id: str | None
    wave: Wave
    role: Role
    questionnaire_version: int
    issued_at: datetime
    expires_at: datetime
    reminder_every: str
    max_reminders: int
    token_hashes: tuple[str, ...] = ()
    status: Status = "open"
    reminders_sent: int = 0
    version: int = 1

    def next_reminder_at(self) -> datetime | None:
        """When the next reminder is due, or None when none is left before expiry."""
        if self.reminders_sent >= self.max_reminders:
            return None
        moment = _repeat(self.issued_at, self.reminder_every, self.reminders_sent + 1)
        return moment if moment < self.expires_at else None

    def next_due(self) -> datetime | None:
        """When the scheduler next has something to do: a reminder, or the expiry (None: nothing)."""
        if self.status != "open":
            return None
        return self.next_reminder_at() or self.expires_at

    def check_answerable(self, now: datetime) -> None:
        """Refuse a link that can no longer be answered."""
        if self.status != "open" or now >= self.expires_at:
            raise SurveyLinkUnusable()


def link(public_url: str, token: str) -> str:
    """The URL a participant follows to her questionnaire."""
    return f"{public_url.rstrip('/')}/surveys/{token}"


def issue(
    *,
    invitation_id: str,
    participant_id: str,
    programme_id: str,
    institution_id: str | None,
    wave: Wave,
    role: Role,
    questionnaire_version: int,
    policy: SurveyPolicy,
    now: datetime,
    token: tuple[str, str],
    public_url: str,
) -> tuple[Invitation, Event]:
    """A new invitation and the event that has it delivered (SurveyInvitationIssued)."""
    plain, hashed = token
    invitation = Invitation(
        invitation_id=invitation_id,
        participant_id=participant_id,
        programme_id=programme_id,
        institution_id=institution_id,
        wave=wave,
        role=role,
        questionnaire_version=questionnaire_version,
        issued_at=now,
        expires_at=parse(policy.valid_for).after(now),
        reminder_every=policy.reminder_every,
        max_reminders=policy.max_reminders,
        token_hashes=(hashed,),
    )
    return invitation, SurveyInvitationIssued(**_about(invitation), link=link(public_url, plain))


def tick(
    invitation: Invitation, now: datetime, token: tuple[str, str], public_url: str
) -> tuple[Invitation, list[Event]]:
    """What the passing of time does: expire it, or send the reminder that is due (with a fresh link)."""
    if invitation.status != "open":
        return invitation, []
    if now >= invitation.expires_at:
        return replace(invitation, status="expired"), []
    remind_at = invitation.next_reminder_at()
    if remind_at is None or now < remind_at:
        return invitation, []
    plain, hashed = token
    reminded = replace(
        invitation,
        reminders_sent=invitation.reminders_sent + 1,
        token_hashes=(*invitation.token_hashes, hashed),
    )
    event = SurveyReminderIssued(**_about(reminded), link=link(public_url, plain), reminder=reminded.reminders_sent)
    return reminded, [event]


def _about(invitation: Invitation) -> dict[str, object]:
    return picked(invitation, "invitation_id", "participant_id", "programme_id", "wave", "role", "expires_at")
