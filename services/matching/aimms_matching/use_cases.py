"""Matching use cases: keep the read model, take mentees' choices, show the directory."""

from collections.abc import Callable

from aimms_matching import domain
from aimms_matching.domain import Member, ProgrammeRules
from aimms_matching.store import MatchingStore
from aimms_shared.auth import Principal
from aimms_shared.contracts import registration as reg
from aimms_shared.contracts.matching import MentorPreferencesSubmitted
from aimms_shared.errors import Missing
from aimms_shared.events import wrap
from aimms_shared.outbox import outbox_entry

PRODUCER = "matching"


async def programme_announced(store: MatchingStore, event: reg.ProgrammeOpened | reg.ProgrammeUpdated) -> None:
    """Keep a programme's rules as registration announced them."""
    await store.save_programme(
        ProgrammeRules(
            programme_id=event.programme_id,
            seniority_scale=tuple(event.seniority_scale),
            mentor_more_senior=event.mentor_more_senior,
            default_mentor_capacity=event.default_mentor_capacity,
            max_mentor_capacity=event.max_mentor_capacity,
            term=event.term,
            follow_up_after=event.follow_up_after,
        )
    )


async def profile_announced(
    store: MatchingStore, event: reg.ParticipantRegistered | reg.ParticipantProfileUpdated
) -> None:
    """Keep a participant's profile as registration announced it."""
    existing = await store.member(event.participant_id)
    await store.save_member(
        Member(
            participant_id=event.participant_id,
            programme_id=event.programme_id,
            institution_id=event.institution_id,
            roles=tuple(event.roles),
            job_title=event.job_title,
            seniority=event.seniority,
            pathway=event.pathway,
            research_interests=tuple(event.research_interests),
            offers=event.offers,
            mentor_capacity=event.mentor_capacity,
            profile_published=event.profile_published,
            background_matching=event.background_matching,
            active=existing.active if existing else True,
        )
    )


async def submit_preferences(
    store: MatchingStore, caller: Principal, mentee_id: str, choices: list[str], *, on_events: Callable[[], None]
) -> tuple[str, ...]:
    """A mentee's ranked choices (MentorPreferencesSubmitted); her portal submits them."""
    mentee = await store.member(mentee_id)
    if mentee is None or not caller.may_act_for(mentee.institution_id):
        raise Missing("participant_id", "own-institution", f"no participant '{mentee_id}' at your institution")
    programme = await store.programme(mentee.programme_id)
    if programme is None:
        raise Missing("programme_id", "existing-programme", f"programme '{mentee.programme_id}' is not known yet")
    mentors = {m.participant_id: m for m in await store.published_mentors(mentee.programme_id)}
    checked = domain.check_choices(mentee, choices, mentors, programme)
    event = MentorPreferencesSubmitted(
        mentee_id=mentee_id,
        programme_id=mentee.programme_id,
        institution_id=mentee.institution_id,
        choices=list(checked),
    )
    await store.save_preferences(
        mentee, checked, [outbox_entry(event, wrap(event, producer=PRODUCER, institution_id=mentee.institution_id))]
    )
    on_events()
    return checked
