"""Every event the surveys service consumes, in one table."""

from aimms_shared.consumer import Subscriptions
from aimms_shared.contracts import matching as m
from aimms_shared.contracts import registration as reg
from aimms_shared.events import Envelope
from aimms_shared.mapping import carried_over
from aimms_surveys.domain.invitations import Invitee
from aimms_surveys.use_cases import Surveys


def subscriptions(surveys: Surveys) -> Subscriptions:
    """Surveys' subscriptions: programmes' kinds, the moments a questionnaire is due, and participants leaving."""
    table = Subscriptions()

    @table.on(reg.ProgrammeOpened, reg.ProgrammeUpdated)
    async def adopt_kind_questionnaires(event: reg.ProgrammeOpened | reg.ProgrammeUpdated, envelope: Envelope) -> None:
        await surveys.programme_announced(event.programme_id, event.kind)

    @table.on(m.MentoringStarted)
    async def invite_to_baseline(event: m.MentoringStarted, envelope: Envelope) -> None:
        pair = [
            Invitee(event.mentee_id, "mentee", event.mentee_institution_id),
            Invitee(event.mentor_id, "mentor", event.mentor_institution_id),
        ]
        await surveys.mentoring_reached(event.programme_id, pair, trigger="mentoring_started")

    @table.on(m.SixMonthsElapsed)
    async def invite_to_follow_up(event: m.SixMonthsElapsed, envelope: Envelope) -> None:
        pair = [Invitee(event.mentee_id, "mentee"), Invitee(event.mentor_id, "mentor")]
        await surveys.mentoring_reached(event.programme_id, pair, trigger="follow_up")

    @table.on(m.CircleFormed)
    async def invite_circle_to_baseline(event: m.CircleFormed, envelope: Envelope) -> None:
        circle = [carried_over(Invitee, member) for member in event.members]
        await surveys.circle_reached(event.programme_id, circle, trigger="mentoring_started")

    @table.on(m.CircleFollowUpDue)
    async def invite_circle_to_follow_up(event: m.CircleFollowUpDue, envelope: Envelope) -> None:
        still_in_it = [carried_over(Invitee, member) for member in event.members]
        await surveys.circle_reached(event.programme_id, still_in_it, trigger="follow_up")

    @table.on(reg.ParticipantRegistered)
    async def invite_at_registration(event: reg.ParticipantRegistered, envelope: Envelope) -> None:
        await surveys.registered(
            event.participant_id,
            event.programme_id,
            list(event.roles),
            event.institution_id,
            in_evaluation=event.in_evaluation,
        )

    @table.on(reg.EvaluationParticipationChanged)
    async def keep_evaluation_status(event: reg.EvaluationParticipationChanged, envelope: Envelope) -> None:
        await surveys.evaluation_changed(event.participant_id, event.in_evaluation)

    @table.on(reg.ParticipantWithdrawn, reg.ParticipantErased)
    async def void_on_leaving(event: reg.ParticipantWithdrawn | reg.ParticipantErased, envelope: Envelope) -> None:
        await surveys.participant_left(event.participant_id, erased=isinstance(event, reg.ParticipantErased))

    return table
