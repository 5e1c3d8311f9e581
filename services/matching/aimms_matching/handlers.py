"""Every event the matching service consumes, in one table: its read model of registration, and its own pairs."""

from aimms_matching import use_cases
from aimms_matching.store import MatchingStore
from aimms_matching.use_cases import Matchmaker
from aimms_shared.consumer import Subscriptions
from aimms_shared.contracts import matching as m
from aimms_shared.contracts import registration as reg
from aimms_shared.events import Envelope


def subscriptions(store: MatchingStore, matchmaker: Matchmaker) -> Subscriptions:
    """Matching's subscriptions."""
    table = Subscriptions()

    @table.on(reg.ProgrammeOpened, reg.ProgrammeUpdated)
    async def keep_programme(event: reg.ProgrammeOpened | reg.ProgrammeUpdated, envelope: Envelope) -> None:
        await use_cases.programme_announced(store, event)

    @table.on(reg.ParticipantRegistered, reg.ParticipantProfileUpdated)
    async def keep_profile(
        event: reg.ParticipantRegistered | reg.ParticipantProfileUpdated, envelope: Envelope
    ) -> None:
        await use_cases.profile_announced(store, event, envelope)

    @table.on(reg.ParticipantProfileText)
    async def keep_profile_text(event: reg.ParticipantProfileText, envelope: Envelope) -> None:
        await use_cases.profile_text_announced(store, event)

    @table.on(reg.MentorCapacityChanged)
    async def keep_capacity(event: reg.MentorCapacityChanged, envelope: Envelope) -> None:
        await use_cases.capacity_changed(store, event)

    @table.on(reg.ParticipantWithdrawn, reg.ParticipantErased)
    async def left(event: reg.ParticipantWithdrawn | reg.ParticipantErased, envelope: Envelope) -> None:
        await matchmaker.participant_left(event.participant_id, erased=isinstance(event, reg.ParticipantErased))

    # Matching reacts to its own events so each reaction survives a crash (the outbox delivers them).
    @table.on(m.MentorPreferencesSubmitted)
    async def match_newcomer(event: m.MentorPreferencesSubmitted, envelope: Envelope) -> None:
        await matchmaker.choices_made(event.programme_id, event.mentee_id, envelope.occurred_at)

    @table.on(m.MatchDeclined, m.MatchEnded)
    async def settle(event: m.MatchDeclined | m.MatchEnded, envelope: Envelope) -> None:
        await matchmaker.settle(event.pair_id)

    return table
