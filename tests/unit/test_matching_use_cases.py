"""Matching's use cases over an in-memory store: choices, a round, a decline and its re-match, a withdrawal."""

import json
from datetime import timedelta

import pytest

from aimms_matching import use_cases
from aimms_matching.domain.rules import Member, ProgrammeRules
from aimms_matching.links import AnswerLinks
from aimms_matching.use_cases import Matchmaker
from aimms_shared.errors import Missing, NotYetKnown, RuleBroken, StateConflict
from aimms_shared.principal import PARTICIPANTS_WRITE, Principal
from tests.factories import matching_member
from tests.fakes import FakeMatchingStore

SCALE = ("Lecturer", "Senior lecturer", "Professor")
RULES = ProgrammeRules("aimms", SCALE, True, 1, 3, "P6M", "P6M")
NORTH = Principal("north-portal", "north", frozenset({PARTICIPANTS_WRITE}))


def person(pid: str, role: str, seniority: str, institution: str = "north", capacity: int | None = None) -> Member:
    mentor = role == "mentor"
    return matching_member(
        participant_id=pid,
        institution_id=institution,
        roles=(role,),
        job_title=seniority,
        seniority=seniority,
        offers="advice" if mentor else None,
        mentor_capacity=capacity if mentor else None,
        profile_published=mentor,
    )


async def scheme(*members: Member) -> tuple[FakeMatchingStore, Matchmaker]:
    store = FakeMatchingStore()
    await store.save_programme(RULES)
    for member in members:
        await store.save_member(member)
    return store, Matchmaker(store, AnswerLinks(b"k" * 32, "https://aimms.example"), lease=timedelta(seconds=30))


async def test_choices_for_someone_or_something_not_yet_heard_of_are_asked_again_not_refused() -> None:
    store, _ = await scheme(person("e", "mentee", "Lecturer"), person("r", "mentor", "Professor", "south", 1))

    with pytest.raises(NotYetKnown) as mentee_unknown:
        await use_cases.submit_preferences(store, NORTH, "newcomer", ["r"])
    with pytest.raises(NotYetKnown) as mentor_unknown:
        await use_cases.submit_preferences(store, NORTH, "e", ["mentor-on-its-way"])
    store.programmes_by_id.clear()
    with pytest.raises(NotYetKnown) as programme_unknown:
        await use_cases.submit_preferences(store, NORTH, "e", ["r"])

    assert [e.value.extra["field"] for e in (mentee_unknown, mentor_unknown, programme_unknown)] == [
        "mentee_id",
        "choices.0",
        "programme_id",
    ]
    assert mentee_unknown.value.status == 409 and mentee_unknown.value.retry_after == 2


async def test_another_schools_mentee_looks_not_yet_known_like_an_absent_one_and_an_erased_one_is_not_found() -> None:
    store, matchmaker = await scheme(person("e", "mentee", "Lecturer", "south"))
    with pytest.raises(NotYetKnown) as hers:
        await use_cases.submit_preferences(store, NORTH, "e", [])
    with pytest.raises(NotYetKnown) as absent:
        await use_cases.submit_preferences(store, NORTH, "nobody", [])
    assert (hers.value.status, hers.value.extra) == (absent.value.status, absent.value.extra)
    await matchmaker.participant_left("e", erased=True)
    with pytest.raises(Missing):
        await use_cases.submit_preferences(store, NORTH, "e", [])


async def test_a_round_proposes_each_mentee_her_choice_and_a_decline_rematches_her_elsewhere() -> None:
    store, matchmaker = await scheme(
        person("e", "mentee", "Lecturer"),
        person("r-first", "mentor", "Professor", "south", 1),
        person("r-other", "mentor", "Senior lecturer", "east", 1),
    )
    await use_cases.submit_preferences(store, NORTH, "e", ["r-first"])

    report = await matchmaker.run_round("aimms")
    [proposed] = store.pairs_by_id.values()
    declined = await matchmaker.answer(proposed.pair_id, "mentor", False, "on leave")
    await matchmaker.settle(declined.pair_id)  # what matching does when its MatchDeclined comes back

    assert (report["proposed"], report["unmatched"]) == (1, 0)
    assert (proposed.mentor_id, proposed.explanation.choice_rank) == ("r-first", 1)
    [again] = [p for p in store.pairs_by_id.values() if p.state == "proposed"]
    assert again.mentor_id == "r-other" and again.explanation.round == "rolling"
    assert store.members_by_id["r-first"].load == 0 and store.members_by_id["r-other"].load == 1
    assert store.event_types() == ["MentorPreferencesSubmitted", "MatchProposed", "MatchDeclined", "MatchProposed"]


async def test_a_mentor_who_leaves_ends_her_pairs_and_is_never_offered_again() -> None:
    store, matchmaker = await scheme(person("e", "mentee", "Lecturer"), person("r", "mentor", "Professor", "south", 2))
    await matchmaker.run_round("aimms")
    [pair] = store.pairs_by_id.values()

    await matchmaker.participant_left("r", erased=False)

    assert store.pairs_by_id[pair.pair_id].state == "ended"
    assert store.pairs_by_id[pair.pair_id].end_reason == "withdrawn"
    assert await store.published_mentors("aimms") == []
    assert store.event_types()[-1] == "MatchEnded"


async def test_coordinators_see_who_waits_and_why_and_pair_a_mentee_by_hand_with_their_reason() -> None:
    store, matchmaker = await scheme(
        person("e", "mentee", "Lecturer"),
        person("f", "mentee", "Lecturer"),
        person("full", "mentor", "Professor", "south", 1),
        person("junior", "mentor", "Lecturer", "east", 1),
    )
    assert [(w.mentee.participant_id, w.reason) for w in await matchmaker.waiting("aimms")] == [
        ("e", "no-round-yet"),
        ("f", "no-round-yet"),
    ]
    await matchmaker.run_round("aimms")  # one professor's place for two mentees; the lecturer is too junior
    [left] = await matchmaker.waiting("aimms")
    assert left.reason == "no-place-free"

    # By hand, across the seniority rule the engine's fallbacks follow; the reason explains it to both.
    with pytest.raises(StateConflict):
        await matchmaker.propose_by_hand("aimms", left.mentee.participant_id, "full", "same field")
    pair = await matchmaker.propose_by_hand("aimms", left.mentee.participant_id, "junior", "Both run stroke trials")

    assert (pair.state, pair.explanation.round, pair.explanation.note) == (
        "proposed",
        "manual",
        "Both run stroke trials",
    )
    assert pair.explanation.shared_interests == ("stroke",) and pair.explanation.seniority_gap == 0
    assert await matchmaker.waiting("aimms") == []
    assert store.event_types()[-1] == "MatchProposed"
    assert json.loads(store.events[-1]["value"])["payload"]["note"] == "Both run stroke trials"
    with pytest.raises(StateConflict):  # she has a proposal now
        await matchmaker.propose_by_hand("aimms", left.mentee.participant_id, "junior", "again")

    # Declined by hand's mentor: she waits again, with why, and the two are never paired again.
    declined = await matchmaker.answer(pair.pair_id, "mentor", False)
    await matchmaker.settle(declined.pair_id)
    [again] = await matchmaker.waiting("aimms")
    assert again.reason == "declined"
    with pytest.raises(RuleBroken):
        await matchmaker.propose_by_hand("aimms", left.mentee.participant_id, "junior", "try again")
    with pytest.raises(Missing):
        await matchmaker.propose_by_hand("aimms", "nobody", "junior", "x")


async def test_a_mentee_no_place_fits_is_announced_to_the_coordinators_once_per_wait() -> None:
    store, matchmaker = await scheme(person("e", "mentee", "Lecturer"), person("r", "mentor", "Professor", "south", 1))
    await matchmaker.run_round("aimms")
    [pair] = store.pairs_by_id.values()
    declined = await matchmaker.answer(pair.pair_id, "mentor", False)
    await matchmaker.settle(declined.pair_id)  # the only mentor declined: nobody fits her now
    await matchmaker.rematch("e")  # tried again (another pair closing, a retry): nothing new to say

    assert store.event_types().count("MenteeUnplaced") == 1
    alert = json.loads(store.events[-1]["value"])["payload"]
    assert alert["waiting_url"] == "https://aimms.example/coordinators/programmes/aimms/waiting"
