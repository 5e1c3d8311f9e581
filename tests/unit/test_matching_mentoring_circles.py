"""Mentoring circles over an in-memory store: formed once per peer, members leaving, the follow-up."""

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from aimms_matching.domain.rules import Member, ProgrammeRules
from aimms_matching.links import AnswerLinks
from aimms_matching.use_cases import Matchmaker
from aimms_shared.errors import Missing, StateConflict
from aimms_shared.mongo import utcnow
from aimms_shared.principal import ADMIN, PARTICIPANTS_READ, SELF, Principal
from tests.factories import matching_member
from tests.fakes import FakeMatchingStore

SCALE = ("PhD student", "Postdoctoral researcher", "Lecturer", "Senior lecturer")
CIRCLES = ProgrammeRules("peer-circles", SCALE, True, 1, 1, "P12M", "P6M", kind="circles")
SCHOOLS = ("north", "south", "east")
COORDINATOR = Principal("coordinator", None, frozenset({ADMIN}))


def member(pid: str, role: str, institution: str, seniority: str = "Lecturer", *interests: str) -> Member:
    return matching_member(
        participant_id=pid,
        programme_id="peer-circles",
        institution_id=institution,
        roles=(role,),
        job_title=seniority,
        seniority=seniority,
        research_interests=interests or ("stroke", "global health"),
    )


def cohort(peers: int, facilitators: int) -> list[Member]:
    return [member(f"p{i}", "peer", SCHOOLS[i % 3]) for i in range(peers)] + [
        member(f"f{i}", "facilitator", SCHOOLS[(i + 1) % 3], "Senior lecturer") for i in range(facilitators)
    ]


async def scheme(members: list[Member]) -> tuple[FakeMatchingStore, Matchmaker]:
    store = FakeMatchingStore()
    await store.save_programme(CIRCLES)
    for m in members:
        await store.save_member(m)
    return store, Matchmaker(store, AnswerLinks(b"k" * 32, "https://aimms.example"), lease=timedelta(seconds=30))


def written(store: FakeMatchingStore, event_type: str) -> list[dict]:
    return [json.loads(e["value"])["payload"] for e in store.events if e["event_type"] == event_type]


async def test_a_round_of_a_circles_programme_puts_every_peer_in_one_circle_with_a_facilitator() -> None:
    store, matchmaker = await scheme(cohort(10, 2))

    report = await matchmaker.run_round("peer-circles")

    assert (report["kind"], report["circles"], report["proposed"], report["unmatched"]) == ("circles", 2, 10, 0)
    formed = written(store, "CircleFormed")
    assert len(formed) == 2 and store.event_types() == ["CircleFormed", "CircleFormed"]
    peers = sorted(m["participant_id"] for c in formed for m in c["members"] if m["role"] == "peer")
    assert peers == sorted(f"p{i}" for i in range(10))  # each peer once
    for circle in formed:
        roles = [m["role"] for m in circle["members"]]
        assert roles[-1] == "facilitator" and roles.count("facilitator") == 1 and 4 <= roles.count("peer") <= 8
        assert len({m["institution_id"] for m in circle["members"] if m["role"] == "peer"}) > 1
        assert circle["stages"] == ["Lecturer", "Lecturer"] and "stroke" in circle["shared_interests"]
        assert all(m["shared_interests"] for m in circle["members"])
    stored = await store.circles("peer-circles")
    assert stored[0].follow_up_at - stored[0].formed_at >= timedelta(days=180)


async def test_a_second_round_places_only_newcomers_and_too_few_wait_for_more() -> None:
    store, matchmaker = await scheme(cohort(8, 1))
    await matchmaker.run_round("peer-circles")
    for newcomer in ("n1", "n2", "n3"):
        await store.save_member(member(newcomer, "peer", "south"))

    again = await matchmaker.run_round("peer-circles")

    assert (again["circles"], again["mentees"], again["unmatched"]) == (0, 3, 3)
    assert store.event_types() == ["CircleFormed"]


async def test_only_one_round_of_a_programme_runs_at_a_time() -> None:
    store, matchmaker = await scheme(cohort(8, 1))
    await store.claim_round("peer-circles", timedelta(seconds=30))

    with pytest.raises(StateConflict) as busy:
        await matchmaker.run_round("peer-circles")

    assert busy.value.extra["rule"] == "one-round-at-a-time" and store.events == []


async def test_a_member_who_leaves_is_announced_once_and_the_circle_goes_on() -> None:
    store, matchmaker = await scheme(cohort(5, 1))
    await matchmaker.run_round("peer-circles")
    [circle] = await store.circles("peer-circles")

    await matchmaker.participant_left("p2", erased=False)
    await matchmaker.participant_left("p2", erased=False)

    [left] = written(store, "CircleMemberLeft")
    assert (left["participant_id"], left["role"]) == ("p2", "peer")
    assert sorted(left["remaining"]) == sorted(pid for pid in circle.member_ids if pid != "p2")
    kept = await store.circle(circle.circle_id)
    assert "p2" not in kept.member_ids and kept.left == ("p2",)


async def test_the_follow_up_asks_the_members_still_in_the_circle_once_when_it_is_due() -> None:
    store, matchmaker = await scheme(cohort(5, 1))
    await matchmaker.run_round("peer-circles")
    [circle] = await store.circles("peer-circles")
    await matchmaker.participant_left("p0", erased=True)

    assert await matchmaker.circles.run_due(10) == 0  # not yet due
    store.circles_by_id[circle.circle_id] = replace(
        store.circles_by_id[circle.circle_id], follow_up_at=utcnow() - timedelta(seconds=1)
    )
    await matchmaker.circles.run_due(10)
    await matchmaker.circles.run_due(10)

    [follow_up] = written(store, "CircleFollowUpDue")
    assert "p0" not in {m["participant_id"] for m in follow_up["members"]} and len(follow_up["members"]) == 5


async def test_a_circle_is_read_by_coordinators_its_members_and_their_portals_only() -> None:
    store, matchmaker = await scheme(cohort(5, 1))
    await matchmaker.run_round("peer-circles")
    [circle] = await store.circles("peer-circles")
    member_id = circle.member_ids[0]
    herself = Principal(f"participant:{member_id}", "north", frozenset({SELF}), participant_id=member_id)
    outsider = Principal("west-portal", "west", frozenset({PARTICIPANTS_READ}))

    for reader in (COORDINATOR, herself, Principal("north-portal", "north", frozenset({PARTICIPANTS_READ}))):
        assert (await matchmaker.circles.circle_for(reader, circle.circle_id)).circle_id == circle.circle_id
    for stranger in (outsider, replace(herself, participant_id="someone-else")):
        with pytest.raises(Missing):
            await matchmaker.circles.circle_for(stranger, circle.circle_id)
