"""Every event the surveys service consumes, in one table."""

from aimms_shared.consumer import Subscriptions
from aimms_shared.contracts import matching as m
from aimms_shared.contracts import registration as reg
from aimms_shared.events import Envelope
from aimms_surveys.use_cases import Surveys


def subscriptions(surveys: Surveys) -> Subscriptions:
    """Surveys' subscriptions: the moments a questionnaire is due, and participants leaving."""
    table = Subscriptions()

    @table.on(m.MentoringStarted)
    async def invite_to_baseline(event: m.MentoringStarted, envelope: Envelope) -> None:
        pair = {
            "mentee": (event.mentee_id, event.mentee_institution_id),
            "mentor": (event.mentor_id, event.mentor_institution_id),
        }
        await surveys.pair_started(event.programme_id, pair, trigger="mentoring_started")

    @table.on(m.SixMonthsElapsed)
    async def invite_to_follow_up(event: m.SixMonthsElapsed, envelope: Envelope) -> None:
        pair = {"mentee": (event.mentee_id, None), "mentor": (event.mentor_id, None)}
        await surveys.pair_started(event.programme_id, pair, trigger="follow_up")

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
