"""Every event the notifications service consumes, in one table."""

from datetime import timedelta

from aimms_notifications import use_cases
from aimms_notifications.domain import compose, messages
from aimms_notifications.settings import NotificationsSettings
from aimms_notifications.store import NotificationStore
from aimms_notifications.workers import DeliveryWorker
from aimms_shared.consumer import Subscriptions
from aimms_shared.contracts import matching as m
from aimms_shared.contracts import registration as reg
from aimms_shared.contracts import surveys as s
from aimms_shared.events import Envelope, Event
from aimms_shared.mapping import carried_over

# Which messages each event causes (domain functions: event, envelope -> notifications). CircleFollowUpDue
# causes none: surveys sends that questionnaire itself.
MESSAGES = {
    reg.InterestExpressed: lambda e, env: [messages.welcome(e, env)],
    reg.ParticipantRegistered: messages.registered,
    reg.ParticipantLinkIssued: messages.page_link,
    m.MatchProposed: messages.match_proposed,
    m.MatchProposalReminder: messages.proposal_reminder,
    m.MatchDeclined: messages.match_declined,
    m.MentoringStarted: messages.mentoring_started,
    m.SixMonthsElapsed: messages.check_in,
    m.MentoringTermEnded: messages.term_ended,
    m.MatchExtended: messages.match_extended,
    m.MatchEnded: messages.match_ended,
    m.MatchPaused: messages.match_paused,
    m.MatchResumed: messages.match_resumed,
    m.CircleFormed: messages.circle_formed,
    m.CircleMemberLeft: messages.circle_member_left,
    s.SurveyInvitationIssued: messages.survey_invitation,
    s.SurveyReminderIssued: messages.survey_invitation,
}

# What the programme's coordinators are told at once (domain functions: event, envelope, addresses -> notifications).
ALERTS = {m.ConcernRaised: messages.concern_raised, m.MenteeUnplaced: messages.mentee_unplaced}

# How pair events change the read model of open proposals that the coordinators' digest lists.
PROPOSALS = {
    m.MatchProposed: use_cases.proposal_opened,
    m.MatchProposalReminder: use_cases.proposal_reminded,
    m.MatchAccepted: use_cases.proposal_accepted,
    m.MatchDeclined: use_cases.proposal_closed,
    m.MentoringStarted: use_cases.proposal_closed,
    m.MatchEnded: use_cases.proposal_closed,
}


def subscriptions(
    store: NotificationStore, deliveries: DeliveryWorker, settings: NotificationsSettings
) -> Subscriptions:
    """Notifications' subscriptions: events queue messages; registration's events keep the read models."""
    table = Subscriptions()

    async def send(notifications: list[messages.Notification]) -> None:
        """Queue them and hand them to the delivery worker at once."""
        queued = await use_cases.queue(
            store,
            notifications,
            message_id_domain=settings.message_id_domain,
            details_wait_seconds=settings.details_wait_seconds,
            lease=timedelta(seconds=settings.lease_seconds),
        )
        deliveries.hand(queued)

    # Idempotent: a notification's id is derived from the event, so a second run queues nothing, and the
    # proposals read model only records what the event says (closed proposals refuse being reopened).
    @table.on(*MESSAGES, idempotent=True)
    async def send_messages(event: Event, envelope: Envelope) -> None:
        if type(event) in PROPOSALS:
            await PROPOSALS[type(event)](store, event, envelope)
        notifications = MESSAGES[type(event)](event, envelope)
        await send(notifications)

    # Idempotent like the rest: the alerts' ids derive from the event and each address.
    @table.on(*ALERTS, idempotent=True)
    async def alert_coordinators(event: m.ConcernRaised | m.MenteeUnplaced, envelope: Envelope) -> None:
        # A concern must reach someone: with nobody named it is retried, then parked with the reason. A
        # mentee no place fits is news the waiting list also shows: with nobody named, nobody is told.
        must_reach = isinstance(event, m.ConcernRaised)
        coordinators = await use_cases.coordinators_of(store, event.programme_id, required=must_reach)
        notifications = ALERTS[type(event)](event, envelope, coordinators)
        await send(notifications)

    @table.on(m.MatchAccepted, idempotent=True)  # adds a side to a set
    async def track_answer(event: m.MatchAccepted, envelope: Envelope) -> None:
        await PROPOSALS[m.MatchAccepted](store, event, envelope)

    # Idempotent: a second run stores the same details at the same time (older ones, and any after an erasure, are
    # refused by their time and the erasure's mark), and waking finds only what waits meanwhile.
    @table.on(reg.ParticipantContact, idempotent=True)
    async def keep_contact(event: reg.ParticipantContact, envelope: Envelope) -> None:
        contact = carried_over(compose.Contact, event, email=str(event.email))
        woken = await use_cases.record_contact(store, contact, envelope.occurred_at)
        deliveries.arrived(f"participant:{contact.participant_id}")  # what this process was about to look again for
        if woken:
            deliveries.nudge()

    @table.on(reg.ParticipantErased)
    async def forget_contact(event: reg.ParticipantErased, envelope: Envelope) -> None:
        await use_cases.erase(store, event.participant_id, event.interest_id)
        deliveries.nudge()

    @table.on(reg.ParticipantWithdrawn)
    async def stop_messages(event: reg.ParticipantWithdrawn, envelope: Envelope) -> None:
        await use_cases.withdraw(store, event.participant_id)

    @table.on(reg.ProgrammeOpened, reg.ProgrammeUpdated)
    async def keep_programme(event: reg.ProgrammeOpened | reg.ProgrammeUpdated, envelope: Envelope) -> None:
        programme = carried_over(compose.Programme, event, trial_period=event.matching.trial_period)
        if await use_cases.record_programme(store, programme, envelope.occurred_at):
            deliveries.nudge()

    @table.on(reg.InstitutionOnboarded)
    async def keep_institution(event: reg.InstitutionOnboarded, envelope: Envelope) -> None:
        if await use_cases.record_institution(store, event.institution_id, event.name):
            deliveries.nudge()

    return table
