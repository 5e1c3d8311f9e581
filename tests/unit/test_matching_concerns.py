"""Safeguarding: a concern reaches the coordinators alone, who may pause, resume or close the pair. No I/O."""

import json

import pytest

from aimms_matching.use_cases import Matchmaker
from aimms_shared.errors import Missing, RuleBroken, StateConflict
from aimms_shared.principal import ADMIN, SELF, Principal
from tests.fakes import FakeMatchingStore

from .test_matching_use_cases import person, scheme

COORDINATOR = Principal("admin", None, frozenset({ADMIN}))


def herself(participant_id: str) -> Principal:
    return Principal(f"participant:{participant_id}", "north", frozenset({SELF}), participant_id=participant_id)


async def started() -> tuple[FakeMatchingStore, Matchmaker, str]:
    store, matchmaker = await scheme(person("e", "mentee", "Lecturer"), person("r", "mentor", "Professor", "south", 1))
    await matchmaker.run_round("aimms")
    [pair] = store.pairs_by_id.values()
    await matchmaker.answer(pair.pair_id, "mentee", True)
    await matchmaker.answer(pair.pair_id, "mentor", True)
    return store, matchmaker, pair.pair_id


async def test_her_concern_reaches_the_coordinators_with_a_link_and_never_its_words() -> None:
    store, matchmaker, pair_id = await started()

    concern = await matchmaker.raise_concern(
        herself("e"), pair_id, None, "He keeps cancelling at short notice", "pause"
    )

    assert (concern.raised_by, concern.participant_id, concern.asks) == ("mentee", "e", "pause")
    assert store.event_types()[-1] == "ConcernRaised"
    alert = json.loads(store.events[-1]["value"])["payload"]
    assert alert["review_url"] == "https://aimms.example/coordinators/programmes/aimms/concerns"
    assert "cancelling" not in store.events[-1]["value"]


async def test_only_a_side_of_the_pair_may_raise_one() -> None:
    _, matchmaker, pair_id = await started()
    with pytest.raises(Missing):
        await matchmaker.raise_concern(herself("someone-else"), pair_id, None, "not my pair", "advice")
    with pytest.raises(RuleBroken):
        await matchmaker.raise_concern(COORDINATOR, pair_id, None, "which side?", "advice")


async def test_coordinators_pause_then_resume_and_nothing_is_asked_of_the_pair_meanwhile() -> None:
    store, matchmaker, pair_id = await started()
    concern = await matchmaker.raise_concern(herself("r"), pair_id, None, "A worry about conduct", "pause")

    closed = await matchmaker.close_concern(concern.concern_id, "paused", "Spoke to both; pausing for a fortnight")
    paused = store.pairs_by_id[pair_id]

    assert closed.outcome == "paused" and paused.paused_at is not None and paused.next_due() is None
    with pytest.raises(StateConflict):  # decided once
        await matchmaker.close_concern(concern.concern_id, "ended", None)
    with pytest.raises(StateConflict):  # no term decision while paused
        await matchmaker.decide_term(pair_id, "mentee", True)
    resumed = await matchmaker.resume(pair_id)
    assert resumed.paused_at is None and resumed.next_due() is not None
    assert store.event_types()[-3:] == ["ConcernRaised", "MatchPaused", "MatchResumed"]


async def test_coordinators_end_a_pair_its_places_free_and_the_two_never_paired_again() -> None:
    store, matchmaker, pair_id = await started()
    concern = await matchmaker.raise_concern(herself("e"), pair_id, None, "Please end this", "end")

    await matchmaker.close_concern(concern.concern_id, "ended", "Ended at her request")

    ended = store.pairs_by_id[pair_id]
    assert (ended.state, ended.end_reason, ended.ended_by) == ("ended", "coordinators", None)
    assert store.members_by_id["r"].load == 0 and ended.excludes_pair
    assert store.event_types()[-1] == "MatchEnded"


async def test_an_unknown_concern_is_not_found() -> None:
    _, matchmaker, _ = await started()
    with pytest.raises(Missing):
        await matchmaker.close_concern("nope", "no-action", None)
