"""Which messages each event causes, to whom, keyed so that a redelivered event queues nothing twice. No I/O."""

import uuid
from dataclasses import dataclass, field
from typing import Any

from aimms_shared.contracts.matching import (
    CircleFormed,
    CircleMember,
    CircleMemberLeft,
    ConcernRaised,
    MatchDeclined,
    MatchEnded,
    MatchExtended,
    MatchPaused,
    MatchProposalReminder,
    MatchProposed,
    MatchResumed,
    MenteeUnplaced,
    MentoringStarted,
    MentoringTermEnded,
    ProposalLinks,
    Side,
    SixMonthsElapsed,
)
from aimms_shared.contracts.registration import (
    SCHEME_TENANCY,
    InterestExpressed,
    ParticipantLinkIssued,
    ParticipantRegistered,
    gives,
    interest_contact_id,
)
from aimms_shared.contracts.surveys import SurveyInvitationIssued, SurveyReminderIssued
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
PAGE_LINK = "page_link"
MATCH_PAUSED = "match_paused"
MATCH_RESUMED = "match_resumed"
CONCERN_RAISED = "concern_raised"
MENTEE_UNPLACED = "mentee_unplaced"
CIRCLE_FORMED = "circle_formed"
CIRCLE_MEMBER_LEFT = "circle_member_left"
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
    PAGE_LINK,
    MATCH_PAUSED,
    MATCH_RESUMED,
    CONCERN_RAISED,
    MENTEE_UNPLACED,
    CIRCLE_FORMED,
    CIRCLE_MEMBER_LEFT,
    DIGEST,
)
# Reminders and digests may be refused (an opt-out link in each, and a List-Unsubscribe header);
# everything else is a step of the procedure and is always sent: proposals, introductions,
# declines, endings, check-ins, the term's end, the welcome and consent-related mail, and a
# survey's invitation itself, a link to her page that she asked for, and a circle's introductions and news.
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

    A participant is addressed by `recipient_id` (her details are looked up when it is sent; someone
    who expressed interest by her interest's contact id); a coordinator by `recipient_email` and
    `recipient_name`. The others a
    message names are looked up the same way: one `partner_id` (a pair's other side, or the member
    who left a circle), or several in `context["members"]` (the rest of her circle, see `MEMBERS`).
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


# The context key of the others a message to one of several names (a circle's other members), each
# {"participant_id", "role"}; compose adds their name, address and institution when it is sent.
MEMBERS = "members"


def notification_id(source_event_id: str, recipient: str, template: str) -> str:
    """The idempotency key: a redelivered event maps to the notification already recorded."""
    return str(uuid.uuid5(NOTIFICATION_NAMESPACE, f"{source_event_id}|{recipient.lower()}|{template}"))


def _to_participant(
    envelope: Envelope, template: str, event: Any, recipient_id: str, partner_id: str | None = None, **context: Any
) -> Notification:
    """One notification of `event` (of its programme) to one participant, who is looked up when it is sent."""
    event_id = str(envelope.event_id)
    return Notification(
        notification_id=notification_id(event_id, recipient_id, template),
        template=template,
        source_event_id=event_id,
        programme_id=event.programme_id,
        recipient_id=recipient_id,
        partner_id=partner_id,
        context=context,
    )


def _to_her(envelope: Envelope, template: str, event: Any, **context: Any) -> list[Notification]:
    """The one notification of an event about one participant, to her."""
    return [_to_participant(envelope, template, event, event.participant_id, **context)]


def welcome(event: InterestExpressed, envelope: Envelope) -> Notification:
    """The welcome pack owed to someone who expressed interest, addressed by her interest's contact (her
    name and address arrive on the contacts topic, where her erasure reaches them)."""
    return _to_participant(
        envelope,
        WELCOME,
        event,
        interest_contact_id(event.interest_id),
        registration_url=event.registration_url,
        # From the scheme's own page, her university not a member: coordinators register her.
        via_scheme=event.institution_id == SCHEME_TENANCY,
    )


def registered(event: ParticipantRegistered, envelope: Envelope) -> list[Notification]:
    """The confirmation of her registration, with what happens next for her role(s)."""
    return _to_her(
        envelope,
        REGISTERED,
        event,
        is_mentor=gives(event.roles),
        is_mentee="mentee" in event.roles,
        is_facilitator="facilitator" in event.roles,
        role=event.roles[0],  # a circle's member: peer or facilitator
        profile_published=event.profile_published,
        mentor_capacity=event.mentor_capacity,
        research_interests=list(event.research_interests),
    )


def _answer_links(event: MatchProposed | MatchProposalReminder) -> dict[Side, dict[str, Any]]:
    """Each side's own accept and decline links, as `_both` takes what differs per side."""
    links: dict[Side, ProposalLinks] = {"mentee": event.mentee_links, "mentor": event.mentor_links}
    return {side: {"accept_url": given.accept, "decline_url": given.decline} for side, given in links.items()}


def _both(
    envelope: Envelope, template: str, event: Any, sides: tuple[Side, ...] = SIDES, **context: Any
) -> list[Notification]:
    """One notification per side named, each knowing her side and her partner; `mentee=`/`mentor=` per side."""
    ids = {"mentee": event.mentee_id, "mentor": event.mentor_id}
    return [
        _to_participant(
            envelope,
            template,
            event,
            ids[side],
            ids[other(side)],
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
        **_answer_links(event),
        choice_rank=event.choice_rank,
        fallback_reason=event.fallback_reason,
        note=event.note,
        shared_interests=list(event.shared_interests),
        # Only when both opted in does the background count; the email says so, never what it is.
        shared_background=event.components.get("background", 0.0) > 0,
        same_pathway=event.components.get("pathway", 0.0) > 0,
        reply_by=event.reply_by,
    )


def proposal_reminder(event: MatchProposalReminder, envelope: Envelope) -> list[Notification]:
    """A reminder to whichever side has not answered yet."""
    sides = tuple(side for side in SIDES if side in event.awaiting)
    return _both(envelope, PROPOSAL_REMINDER, event, sides, **_answer_links(event), reply_by=event.reply_by)


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
    return _to_her(
        envelope,
        SURVEY_REMINDER if isinstance(event, SurveyReminderIssued) else SURVEY_INVITATION,
        event,
        reminder=getattr(event, "reminder", 0),
        **event.model_dump(include={"wave", "role", "link", "expires_at"}),
    )


def page_link(event: ParticipantLinkIssued, envelope: Envelope) -> list[Notification]:
    """The link to her programme's page that she asked for."""
    return _to_her(envelope, PAGE_LINK, event, link=event.url, expires_at=event.expires_at)


def match_paused(event: MatchPaused, envelope: Envelope) -> list[Notification]:
    """Both sides hear that coordinators paused the pair, and nothing of why."""
    return _both(envelope, MATCH_PAUSED, event)


def match_resumed(event: MatchResumed, envelope: Envelope) -> list[Notification]:
    """Both sides hear that the pair goes on."""
    return _both(envelope, MATCH_RESUMED, event)


def circle_formed(event: CircleFormed, envelope: Envelope) -> list[Notification]:
    """The circle's introduction, to each member: the others (how to reach them is looked up when it is
    sent), who facilitates, the interests she shares with them, the stages it spans and the follow-up."""
    return [
        _to_participant(
            envelope,
            CIRCLE_FORMED,
            event,
            member.participant_id,
            role=member.role,
            shared_interests=list(member.shared_interests),
            circle_interests=list(event.shared_interests),
            stages=list(event.stages),
            formed_at=event.formed_at,
            follow_up_at=event.follow_up_at,
            **{MEMBERS: _others(event.members, member)},
        )
        for member in event.members
    ]


def _others(members: list[CircleMember], member: CircleMember) -> list[dict[str, str]]:
    """Everyone in the circle but her, as the event lists them (peers, then the facilitator)."""
    return [
        m.model_dump(include={"participant_id", "role"}) for m in members if m.participant_id != member.participant_id
    ]


def circle_member_left(event: CircleMemberLeft, envelope: Envelope) -> list[Notification]:
    """Those still in the circle hear that one member left (named as a partner is) and that it goes on;
    nothing goes to her who left."""
    return [
        _to_participant(
            envelope,
            CIRCLE_MEMBER_LEFT,
            event,
            participant_id,
            event.participant_id,
            partner_role=event.role,
        )
        for participant_id in event.remaining
        if participant_id != event.participant_id
    ]


def concern_raised(event: ConcernRaised, envelope: Envelope, coordinators: tuple[str, ...]) -> list[Notification]:
    """The alert to each of the programme's coordinators: where to read the concern, never what it says."""
    return to_coordinators(
        str(envelope.event_id),
        CONCERN_RAISED,
        event.programme_id,
        coordinators,
        asks=event.asks,
        review_url=event.review_url,
    )


def mentee_unplaced(event: MenteeUnplaced, envelope: Envelope, coordinators: tuple[str, ...]) -> list[Notification]:
    """The coordinators hear that a mentee waits with no place that fits her, and where to propose one."""
    return to_coordinators(
        str(envelope.event_id), MENTEE_UNPLACED, event.programme_id, coordinators, waiting_url=event.waiting_url
    )


def to_coordinators(
    source_event_id: str, template: str, programme_id: str, coordinators: tuple[str, ...], **context: Any
) -> list[Notification]:
    """One message to each of a programme's coordinators, addressed directly (they are not participants)."""
    return [
        Notification(
            notification_id=notification_id(source_event_id, address, template),
            template=template,
            source_event_id=source_event_id,
            programme_id=programme_id,
            recipient_email=address,
            recipient_name="",
            context={"name": "coordinator", **context},
        )
        for address in coordinators
    ]
