"""What to send for which event, to whom, and when a message is ready to send. No I/O here.

An event becomes one `Notification` per recipient at once, keyed by (event, recipient, template).
Domain events name participants only by id: names and addresses come from the contacts read model
when the message is sent (`compose`), so a message to someone whose details have not arrived yet
waits for them (`Waiting`), and one to someone erased or withdrawn is cancelled (`Cancelled`).
"""

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aimms_shared.contracts.matching import (
    MatchDeclined,
    MatchEnded,
    MatchExtended,
    MatchProposalReminder,
    MatchProposed,
    MentoringStarted,
    MentoringTermEnded,
    ProposalLinks,
    Side,
    SixMonthsElapsed,
)
from aimms_shared.contracts.registration import InterestExpressed, ParticipantRegistered
from aimms_shared.contracts.surveys import SurveyInvitationIssued, SurveyReminderIssued
from aimms_shared.durations import parse
from aimms_shared.errors import RuleBroken
from aimms_shared.events import Envelope

# Fixed namespace: the same (event, recipient, template) always gives the same notification id.
NOTIFICATION_NAMESPACE = uuid.UUID("6f1c7a52-3f0e-4e0b-9a54-5b1f6f3f2a10")

WELCOME = "welcome"
REGISTERED = "registered"
MATCH_PROPOSED = "match_proposed"
PROPOSAL_REMINDER = "proposal_reminder"
MATCH_DECLINED = "match_declined"
MENTORING_STARTED = "mentoring_started"
CHECK_IN = "check_in"
TERM_ENDED = "term_ended"
MATCH_EXTENDED = "match_extended"
MATCH_ENDED = "match_ended"
SURVEY_INVITATION = "survey_invitation"
SURVEY_REMINDER = "survey_reminder"
DIGEST = "coordinator_digest"
TEMPLATES = (
    WELCOME,
    REGISTERED,
    MATCH_PROPOSED,
    PROPOSAL_REMINDER,
    MATCH_DECLINED,
    MENTORING_STARTED,
    CHECK_IN,
    TERM_ENDED,
    MATCH_EXTENDED,
    MATCH_ENDED,
    SURVEY_INVITATION,
    SURVEY_REMINDER,
    DIGEST,
)
# Reminders and digests may be refused (an opt-out link in each, and a List-Unsubscribe header);
# everything else is a step of the procedure and is always sent: proposals, introductions,
# declines, endings, check-ins, the term's end, the welcome and consent-related mail, and a
# survey's invitation itself.
OPTIONAL = frozenset({PROPOSAL_REMINDER, SURVEY_REMINDER, DIGEST})
REQUIRED = frozenset(TEMPLATES) - OPTIONAL


def is_optional(template: str) -> bool:
    """Whether a recipient may opt out of this kind of message."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}")
    return template in OPTIONAL


SIDES: tuple[Side, Side] = ("mentee", "mentor")


def other(side: Side) -> Side:
    """The other side of a pair."""
    return "mentor" if side == "mentee" else "mentee"


@dataclass(frozen=True)
class Notification:
    """One message to one person, caused by one event.

    A participant is addressed by `recipient_id` (her details are looked up when it is sent); the
    welcome, sent before anyone registered, by `recipient_email` and `recipient_name`.
    """

    notification_id: str
    template: str
    source_event_id: str
    programme_id: str
    recipient_id: str | None = None
    recipient_email: str | None = None
    recipient_name: str | None = None
    institution_id: str | None = None
    partner_id: str | None = None
    context: dict[str, Any] = field(default_factory=dict)


def notification_id(source_event_id: str, recipient: str, template: str) -> str:
    """The idempotency key: a redelivered event maps to the notification already recorded."""
    return str(uuid.uuid5(NOTIFICATION_NAMESPACE, f"{source_event_id}|{recipient.lower()}|{template}"))


def _to_participant(
    envelope: Envelope,
    template: str,
    *,
    programme_id: str,
    recipient_id: str,
    partner_id: str | None = None,
    **context: Any,
) -> Notification:
    event_id = str(envelope.event_id)
    return Notification(
        notification_id=notification_id(event_id, recipient_id, template),
        template=template,
        source_event_id=event_id,
        programme_id=programme_id,
        recipient_id=recipient_id,
        partner_id=partner_id,
        context=context,
    )


def welcome(event: InterestExpressed, envelope: Envelope) -> Notification:
    """The welcome pack owed to someone who expressed interest."""
    return Notification(
        notification_id=notification_id(str(envelope.event_id), event.email, WELCOME),
        template=WELCOME,
        source_event_id=str(envelope.event_id),
        programme_id=event.programme_id,
        recipient_email=event.email,
        recipient_name=event.name,
        institution_id=event.institution_id,
        context={
            "name": event.name,
            "programme_name": event.programme_name,
            "institution_name": event.institution_name,
            "registration_url": event.registration_url,
        },
    )


def registered(event: ParticipantRegistered, envelope: Envelope) -> list[Notification]:
    """The confirmation of her registration, with what happens next for her role(s)."""
    return [
        _to_participant(
            envelope,
            REGISTERED,
            programme_id=event.programme_id,
            recipient_id=event.participant_id,
            is_mentor="mentor" in event.roles,
            is_mentee="mentee" in event.roles,
            profile_published=event.profile_published,
            mentor_capacity=event.mentor_capacity,
            research_interests=list(event.research_interests),
        )
    ]


def _links(event: MatchProposed | MatchProposalReminder, side: Side) -> dict[str, Any]:
    links: ProposalLinks = event.mentee_links if side == "mentee" else event.mentor_links
    return {"accept_url": links.accept, "decline_url": links.decline}


def _both(
    envelope: Envelope, template: str, event: Any, sides: tuple[Side, ...] = SIDES, **context: Any
) -> list[Notification]:
    """One notification per side named, each knowing her side and her partner; `mentee=`/`mentor=` per side."""
    ids = {"mentee": event.mentee_id, "mentor": event.mentor_id}
    return [
        _to_participant(
            envelope,
            template,
            programme_id=event.programme_id,
            recipient_id=ids[side],
            partner_id=ids[other(side)],
            side=side,
            **context.get(side, {}),
            **{k: v for k, v in context.items() if k not in SIDES},
        )
        for side in sides
    ]


def match_proposed(event: MatchProposed, envelope: Envelope) -> list[Notification]:
    """The proposal, to each side with her own answer links, the reason for it and the deadline."""
    return _both(
        envelope,
        MATCH_PROPOSED,
        event,
        mentee=_links(event, "mentee"),
        mentor=_links(event, "mentor"),
        choice_rank=event.choice_rank,
        fallback_reason=event.fallback_reason,
        shared_interests=list(event.shared_interests),
        # Only when both opted in does the background count; the email says so, never what it is.
        shared_background=event.components.get("background", 0.0) > 0,
        same_pathway=event.components.get("pathway", 0.0) > 0,
        reply_by=event.reply_by,
    )


def proposal_reminder(event: MatchProposalReminder, envelope: Envelope) -> list[Notification]:
    """A reminder to whichever side has not answered yet."""
    sides = tuple(side for side in SIDES if side in event.awaiting)
    return _both(
        envelope,
        PROPOSAL_REMINDER,
        event,
        sides,
        mentee=_links(event, "mentee"),
        mentor=_links(event, "mentor"),
        reply_by=event.reply_by,
    )


def match_declined(event: MatchDeclined, envelope: Envelope) -> list[Notification]:
    """The other side hears, tactfully, that the proposal will not go ahead; both do if it lapsed."""
    sides = SIDES if event.side is None else (other(event.side),)
    return _both(envelope, MATCH_DECLINED, event, sides, expired=event.expired, neither_answered=event.side is None)


def mentoring_started(event: MentoringStarted, envelope: Envelope) -> list[Notification]:
    """The introduction: who, how to reach each other, the trial meeting and the agreement."""
    return _both(
        envelope,
        MENTORING_STARTED,
        event,
        started_at=event.started_at,
        trial_ends_at=event.trial_ends_at,
        follow_up_at=event.follow_up_at,
        term_ends_at=event.term_ends_at,
    )


def check_in(event: SixMonthsElapsed, envelope: Envelope) -> list[Notification]:
    """The follow-up point: how is it going, continue or conclude (nothing to a pair that already ended)."""
    if not event.still_mentoring:
        return []
    return _both(envelope, CHECK_IN, event, started_at=event.started_at)


def term_ended(event: MentoringTermEnded, envelope: Envelope) -> list[Notification]:
    """The term is over: extend or conclude by the deadline; silence concludes it."""
    return _both(envelope, TERM_ENDED, event, reply_by=event.reply_by)


def match_extended(event: MatchExtended, envelope: Envelope) -> list[Notification]:
    """Confirmation that both agreed to another term."""
    return _both(envelope, MATCH_EXTENDED, event, term_ends_at=event.term_ends_at)


def match_ended(event: MatchEnded, envelope: Envelope) -> list[Notification]:
    """Confirmation that the proposal or partnership ended, and why."""
    return _both(envelope, MATCH_ENDED, event, reason=event.reason, stage=event.stage, ended_by=event.ended_by)


def survey_invitation(event: SurveyInvitationIssued | SurveyReminderIssued, envelope: Envelope) -> list[Notification]:
    """Her questionnaire link (baseline or follow-up); a reminder brings a fresh one (and may be refused)."""
    return [
        _to_participant(
            envelope,
            SURVEY_REMINDER if isinstance(event, SurveyReminderIssued) else SURVEY_INVITATION,
            programme_id=event.programme_id,
            recipient_id=event.participant_id,
            wave=event.wave,
            role=event.role,
            link=event.link,
            expires_at=event.expires_at,
            reminder=getattr(event, "reminder", 0),
        )
    ]


# -- what a message needs before it can be sent


@dataclass(frozen=True)
class Contact:
    """How to reach a participant (the latest ParticipantContact)."""

    participant_id: str
    programme_id: str
    institution_id: str
    name: str
    email: str


@dataclass(frozen=True)
class Programme:
    """What messages say about a programme: its own wording, never another programme's.

    The defaults stand in for what documents recorded before a field existed (an older programme
    event, or a programme that never described itself).
    """

    programme_id: str
    name: str
    term: str
    trial_period: str
    mentor_more_senior: bool = True  # False: reverse mentoring, the mentee is the more senior one
    audience: str = ""  # whom it serves, e.g. "women from … working in academic medicine"
    description: str = ""  # the paragraph its welcome opens with


def introduction(programme: Programme) -> str:
    """The programme in its own words; without a description, a neutral sentence from its name and audience."""
    if programme.description.strip():
        return programme.description.strip()
    if programme.audience.strip():
        return f"{programme.name} is a mentoring programme for {programme.audience.strip()}."
    return f"{programme.name} is a mentoring programme."


def programme_context(programme: Programme) -> dict[str, Any]:
    """What every message may say about its programme (the templates choose the wording)."""
    return {
        "programme_name": programme.name,
        "programme_introduction": introduction(programme),
        "programme_audience": programme.audience,
        "programme_term": human_duration(programme.term),
        "trial_period": human_duration(programme.trial_period),
        "mentor_more_senior": programme.mentor_more_senior,
    }


@dataclass(frozen=True)
class Known:
    """What the read models hold about the people, programme and institutions a message names."""

    contacts: dict[str, Contact]
    erased: frozenset[str]
    withdrawn: frozenset[str]
    programme: Programme | None
    institutions: dict[str, str]  # id -> name
    # The recipient refused optional messages (only looked up for an optional one).
    recipient_opted_out: bool = False


@dataclass(frozen=True)
class Ready:
    """Everything is known: send this."""

    to_email: str
    to_name: str
    institution_id: str | None
    context: dict[str, Any]


@dataclass(frozen=True)
class Waiting:
    """Details are missing (`participant:<id>`, `programme:<id>`, `institution:<id>`)."""

    missing: list[str]


@dataclass(frozen=True)
class Cancelled:
    """The message must not be sent."""

    reason: str


@dataclass(frozen=True)
class Skipped:
    """An optional message the recipient refused: recorded, not sent."""

    reason: str


OPTED_OUT = "recipient opted out of reminders and digests"


def compose(note: Notification, known: Known) -> Ready | Waiting | Cancelled | Skipped:
    """Decide whether a notification can be sent now, and with what context."""
    if note.recipient_id is not None and note.recipient_id in known.erased:
        return Cancelled("recipient erased")
    if note.recipient_id is not None and note.recipient_id in known.withdrawn:
        return Cancelled("recipient withdrew")
    if known.recipient_opted_out and is_optional(note.template):
        return Skipped(OPTED_OUT)
    if note.recipient_id is None:  # addressed directly: the event (or the digest) carried who and where
        assert note.recipient_email is not None and note.recipient_name is not None
        context = dict(note.context)
        if note.template == DIGEST:  # names as they stand now; an erased person's id only
            context["names"] = {pid: c.name for pid, c in known.contacts.items()}
        if note.template == WELCOME:  # worded from the programme, so it waits for the programme like the rest
            if known.programme is None:
                return Waiting([f"programme:{note.programme_id}"])
            context |= programme_context(known.programme)
        return Ready(note.recipient_email, note.recipient_name, note.institution_id, context)
    missing = [f"participant:{pid}" for pid in (note.recipient_id, note.partner_id) if _awaited(pid, known)]
    if known.programme is None:
        missing.append(f"programme:{note.programme_id}")
    people = [known.contacts[p] for p in (note.recipient_id, note.partner_id) if p in known.contacts]
    missing += [f"institution:{c.institution_id}" for c in people if c.institution_id not in known.institutions]
    if missing:
        return Waiting(sorted(set(missing)))
    assert known.programme is not None
    recipient = known.contacts[note.recipient_id]
    context = (
        dict(note.context)
        | programme_context(known.programme)
        | {"name": recipient.name, "institution_name": known.institutions[recipient.institution_id]}
    )
    if note.partner_id is not None:
        partner = known.contacts.get(note.partner_id)  # None: she was erased meanwhile
        side = note.context.get("side", "mentee")
        context |= {
            "partner_name": partner.name if partner else f"your {other(side)}",
            "partner_email": partner.email if partner else None,
            "partner_institution_name": known.institutions[partner.institution_id] if partner else None,
        }
    return Ready(recipient.email, recipient.name, recipient.institution_id, context)


def named_participants(note: Notification) -> list[str]:
    """Whose details a message needs: recipient and partner, or everyone a digest lists."""
    if note.template == DIGEST:
        pairs = {pid for row in note.context.get("awaiting", []) for pid in (row["mentee_id"], row["mentor_id"])}
        failed = {row["recipient_id"] for row in note.context.get("failed", []) if row["recipient_id"]}
        return sorted(pairs | failed)
    return [p for p in (note.recipient_id, note.partner_id) if p is not None]


def _awaited(participant_id: str | None, known: Known) -> bool:
    return participant_id is not None and participant_id not in known.contacts and participant_id not in known.erased


def details_deadline(created_at: datetime, wait_seconds: float) -> datetime:
    """Until when a message waits for missing details before it is failed."""
    return created_at + timedelta(seconds=wait_seconds)


def human_duration(text: str) -> str:
    """'P6M' -> '6 months', 'P1Y6M' -> '1 year and 6 months', 'P14D' -> '14 days'."""
    d = parse(text)
    years, months = divmod(d.months, 12)
    days, seconds = d.span.days, d.span.seconds
    weeks, days = (days // 7, 0) if days and days % 7 == 0 else (0, days)
    units = [
        (years, "year"),
        (months, "month"),
        (weeks, "week"),
        (days, "day"),
        (seconds // 3600, "hour"),
        (seconds % 3600 // 60, "minute"),
        (seconds % 60, "second"),
    ]
    parts = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in units if n]
    return " and ".join([", ".join(parts[:-1]), parts[-1]]) if len(parts) > 1 else parts[0]


# -- delivery


@dataclass(frozen=True)
class DeliveryOutcome:
    """What to do after an attempt: done, try again later, or give up."""

    kind: str  # "sent" | "retry" | "failed"
    reason: str = ""


def judge_smtp_error(code: int | None, message: str, attempts: int, max_attempts: int) -> DeliveryOutcome:
    """Permanent SMTP errors (5xx) fail at once; anything else is retried up to `max_attempts`."""
    if code is not None and 500 <= code < 600:
        return DeliveryOutcome("failed", f"rejected by SMTP server ({code}): {message}")
    if attempts >= max_attempts:
        return DeliveryOutcome("failed", f"gave up after {attempts} attempts: {message}")
    return DeliveryOutcome("retry", message)


# -- coordinators' daily digest

# A digest lists at most this many rows of each kind, and says how many more there are.
DIGEST_ROWS = 200
MAX_DIGEST_RECIPIENTS = 20
_ADDRESS = re.compile(r"[^\s<>()\[\]@,;:\"']+@[^\s<>()\[\],;:\"']+")


@dataclass(frozen=True)
class DigestConfig:
    """Who receives a programme's daily digest, and at which hour (UTC)."""

    programme_id: str
    recipients: tuple[str, ...]
    enabled: bool
    hour_utc: int


@dataclass(frozen=True)
class OpenProposal:
    """A proposal not yet accepted by both, declined, lapsed or ended (the digest's read model)."""

    pair_id: str
    programme_id: str
    mentee_id: str
    mentor_id: str
    proposed_at: datetime
    reply_by: datetime
    answered: tuple[Side, ...] = ()


@dataclass(frozen=True)
class FailedDelivery:
    """A message given up on, as the digest reports it."""

    template: str
    recipient_id: str | None
    failed_at: datetime
    reason: str


def check_digest(config: DigestConfig) -> DigestConfig:
    """A digest's recipients, normalised; RuleBroken when it could never be sent."""
    recipients = tuple(dict.fromkeys(r.strip().lower() for r in config.recipients))
    if config.enabled and not recipients:
        raise RuleBroken("recipients", "at-least-one", "an enabled digest needs at least one recipient")
    if len(recipients) > MAX_DIGEST_RECIPIENTS:
        raise RuleBroken("recipients", "at-most", f"a digest goes to at most {MAX_DIGEST_RECIPIENTS} recipients")
    if not 0 <= config.hour_utc <= 23:
        raise RuleBroken("hour_utc", "hour-of-day", "hour_utc is an hour of the day, 0 to 23")
    return DigestConfig(config.programme_id, recipients, config.enabled, config.hour_utc)


def digest_slot(now: datetime, hour_utc: int) -> datetime:
    """The latest `hour_utc`:00 UTC at or before `now`: the day a digest built now belongs to."""
    today = now.astimezone(UTC).replace(hour=hour_utc, minute=0, second=0, microsecond=0)
    return today if today <= now else today - timedelta(days=1)


def next_digest_at(now: datetime, hour_utc: int) -> datetime:
    """When the next day's digest is due, after the one for `now`'s day."""
    return digest_slot(now, hour_utc) + timedelta(days=1)


def digest_source(programme_id: str, slot: datetime) -> str:
    """The idempotency key of a programme's digest for one day (stands in for a source event id)."""
    return f"digest:{programme_id}:{slot.date().isoformat()}"


def redact_addresses(text: str) -> str:
    """An error text fit for a coordinators' email: addresses replaced, at most 200 characters."""
    redacted = _ADDRESS.sub("[address]", text)
    return redacted if len(redacted) <= 200 else redacted[:199] + "…"


def digest(
    config: DigestConfig,
    *,
    programme_name: str,
    slot: datetime,
    built_at: datetime,
    proposals: list[OpenProposal],
    failures: list[FailedDelivery],
) -> list[Notification]:
    """The day's digest for each recipient: proposals awaiting answers and failed deliveries.

    Ids and times only (names are added when it is sent, from the contacts read model); the
    notification id is keyed by (programme, day, recipient), so a day's digest is queued once.
    """
    if not config.enabled:
        return []
    source = digest_source(config.programme_id, slot)
    by_deadline = sorted(proposals, key=lambda p: (p.reply_by, p.pair_id))
    latest_first = sorted(failures, key=lambda f: f.failed_at, reverse=True)
    context = {
        "name": "coordinator",
        "programme_name": programme_name,
        "digest_date": slot,
        "built_at": built_at,
        "since": built_at - timedelta(days=1),
        "awaiting_total": len(proposals),
        "failed_total": len(failures),
        "awaiting": [
            {
                "pair_id": p.pair_id,
                "mentee_id": p.mentee_id,
                "mentor_id": p.mentor_id,
                "proposed_at": p.proposed_at,
                "reply_by": p.reply_by,
                "overdue": p.reply_by <= built_at,
                "waiting_for": [side for side in SIDES if side not in p.answered],
            }
            for p in by_deadline[:DIGEST_ROWS]
        ],
        "failed": [
            {
                "template": f.template,
                "recipient_id": f.recipient_id,
                "failed_at": f.failed_at,
                "reason": redact_addresses(f.reason),
            }
            for f in latest_first[:DIGEST_ROWS]
        ],
    }
    return [
        Notification(
            notification_id=notification_id(source, address, DIGEST),
            template=DIGEST,
            source_event_id=source,
            programme_id=config.programme_id,
            recipient_email=address,
            recipient_name="",
            context=context,
        )
        for address in config.recipients
    ]
