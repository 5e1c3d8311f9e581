"""The residual round places as many mentees as the places the stable round left allow (maximum cardinality).

Only residual-round mentees holding a fallback may be moved to free a place; stable-round pairs never move. The
maximum is checked against an independent augmenting-path matching over every eligible pair.
"""

import random
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aimms_matching.domain.engine import Mentee, Mentor, Policy, match_cohort, score_pair

TAGS = ("ageing", "genetics", "oncology", "stroke", "trials", "imaging")
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def mentor(
    participant_id: str, seniority: int, interests: tuple[str, ...] = (), capacity: int = 1, load: int = 0
) -> Mentor:
    return Mentor(participant_id, "north", seniority, frozenset(interests), capacity, load)


def mentee(
    participant_id: str, seniority: int, interests: tuple[str, ...] = (), choices: tuple[str, ...] = ()
) -> Mentee:
    return Mentee(participant_id, "south", seniority, frozenset(interests), choices)


def may_mentor(policy: Policy, her: Mentee, him: Mentor) -> bool:
    gap = him.seniority - her.seniority
    return (gap if policy.mentor_more_senior else -gap) >= 1


def most_placeable(
    mentees: list[Mentee], places: dict[str, int], mentors: dict[str, Mentor], policy: Policy, exclusions
) -> int:
    """The largest number of these mentees any assignment places in these places (Kuhn's augmenting paths)."""
    seats = [mentor_id for mentor_id, count in sorted(places.items()) for _ in range(count)]
    holder: dict[int, int] = {}
    edges = [
        [
            seat
            for seat, mentor_id in enumerate(seats)
            if mentor_id != her.participant_id
            and (her.participant_id, mentor_id) not in exclusions
            and may_mentor(policy, her, mentors[mentor_id])
        ]
        for her in mentees
    ]

    def augment(row: int, seen: set[int]) -> bool:
        for seat in edges[row]:
            if seat not in seen:
                seen.add(seat)
                if seat not in holder or augment(holder[seat], seen):
                    holder[seat] = row
                    return True
        return False

    return sum(augment(row, set()) for row in range(len(mentees)))


@st.composite
def cohorts(draw: st.DrawFn) -> tuple[list[Mentee], list[Mentor], Policy, frozenset[tuple[str, str]]]:
    """Scarce, uneven places and short lists, so the residual round's lists often miss a place it could fill."""
    mentor_ids = [f"r{i:02d}" for i in range(draw(st.integers(1, 12)))]
    mentors = [
        Mentor(
            participant_id=mentor_id,
            institution_id=draw(st.sampled_from(("north", "south"))),
            seniority=draw(st.integers(0, 4)),
            interests=draw(st.frozensets(st.sampled_from(TAGS), max_size=3)),
            capacity=draw(st.integers(0, 3)),
            load=draw(st.sampled_from((0, 0, 1))),
        )
        for mentor_id in mentor_ids
    ]
    both = draw(st.sets(st.sampled_from(mentor_ids), max_size=2))
    mentees = [
        Mentee(
            participant_id=mentee_id,
            institution_id=draw(st.sampled_from(("north", "south"))),
            seniority=draw(st.integers(0, 4)),
            interests=draw(st.frozensets(st.sampled_from(TAGS), max_size=3)),
            choices=tuple(draw(st.lists(st.sampled_from(mentor_ids), max_size=3, unique=True))),
        )
        for mentee_id in sorted(both) + [f"e{i:02d}" for i in range(draw(st.integers(0, 25)))]
    ]
    ids = [m.participant_id for m in mentees] or ["none"]
    exclusions = draw(st.frozensets(st.tuples(st.sampled_from(ids), st.sampled_from(mentor_ids)), max_size=6))
    policy = Policy(
        mentor_more_senior=draw(st.booleans()),
        fallback_candidates=draw(st.integers(0, 3)),
        residual_candidates=draw(st.integers(0, 3)),
    )
    return mentees, mentors, policy, exclusions


@PROPERTY_SETTINGS
@given(cohorts())
def test_the_residual_round_places_as_many_as_the_places_the_stable_round_left_allow(cohort) -> None:
    mentees, mentors, policy, exclusions = cohort
    result = match_cohort(mentees, mentors, policy, exclusions)

    left = Counter(p.mentor_id for p in result.stable.proposals)
    places = {m.participant_id: m.available - left[m.participant_id] for m in mentors}
    waiting = [m for m in mentees if m.participant_id in set(result.stable.unmatched)]
    by_id = {m.participant_id: m for m in mentors}
    most = most_placeable(waiting, places, by_id, policy, exclusions) if policy.residual_candidates else 0
    assert result.residual.quality.matched == most


@PROPERTY_SETTINGS
@given(cohorts())
def test_every_residual_pair_is_eligible_within_capacity_and_explained(cohort) -> None:
    mentees, mentors, policy, exclusions = cohort
    result = match_cohort(mentees, mentors, policy, exclusions)
    her_by_id, him_by_id = {m.participant_id: m for m in mentees}, {m.participant_id: m for m in mentors}

    taken = Counter(p.mentor_id for p in result.proposals)
    assert all(count <= him_by_id[mentor_id].available for mentor_id, count in taken.items())
    for proposal in result.residual.proposals:
        her, him = her_by_id[proposal.mentee_id], him_by_id[proposal.mentor_id]
        assert may_mentor(policy, her, him) and her.participant_id != him.participant_id
        assert (proposal.mentee_id, proposal.mentor_id) not in exclusions
        expected = score_pair(her, him, policy)
        assert expected is not None and proposal.score == expected.score
        assert proposal.components == expected.components and proposal.shared_interests == expected.shared_interests
        assert proposal.choice_rank is None and proposal.fallback_reason is not None
        listed = result.residual.preference_list(proposal.mentee_id).entries
        assert proposal.mentor_id in [entry.mentor_id for entry in listed]


@PROPERTY_SETTINGS
@given(cohorts())
def test_the_stable_round_is_the_same_with_or_without_the_residual_round(cohort) -> None:
    mentees, mentors, policy, exclusions = cohort
    without = Policy(policy.mentor_more_senior, fallback_candidates=policy.fallback_candidates, residual_candidates=0)

    with_residual = match_cohort(mentees, mentors, policy, exclusions)
    stable_only = match_cohort(mentees, mentors, without, exclusions)

    assert with_residual.stable.proposals == stable_only.stable.proposals
    assert stable_only.residual.proposals == ()


def test_a_residual_mentee_is_moved_to_another_eligible_mentor_to_free_the_only_place_another_can_take() -> None:
    # Short lists (one mentor each): both want C. C prefers y (they share an interest), so deferred acceptance
    # leaves x, whom only C is senior enough to mentor. y can go to B instead, so both are placed.
    mentors = [mentor("B", 2), mentor("C", 3, ("stroke",))]
    mentees = [mentee("x", 2), mentee("y", 1, ("stroke",))]

    result = match_cohort(mentees, mentors, Policy(fallback_candidates=0, residual_candidates=1))

    assert {p.mentee_id: p.mentor_id for p in result.residual.proposals} == {"x": "C", "y": "B"}
    assert result.unmatched == ()
    moved = next(p for p in result.residual.proposals if p.mentee_id == "y")
    assert (moved.round, moved.choice_rank, moved.fallback_reason) == ("residual", None, "no-choices")
    assert moved.score == score_pair(mentees[1], mentors[0], Policy()).score
    # B was not on her one-entry list; the completion's mentor is added to it, so the pair is explained from it.
    assert [e.mentor_id for e in result.residual.preference_list("y").entries] == ["C", "B"]


def test_a_stable_pair_is_never_moved_even_where_moving_it_would_place_one_more() -> None:
    # y named C and got him in the stable round. x can only be mentored by C; y could have B. The stable pair
    # stays, so x waits: stable-round pairs (and named choices) never move.
    mentors = [mentor("B", 2), mentor("C", 3)]
    mentees = [mentee("x", 2), mentee("y", 1, choices=("C",))]

    result = match_cohort(mentees, mentors)

    assert {p.mentee_id: p.mentor_id for p in result.stable.proposals} == {"y": "C"}
    assert result.unmatched == ("x",)


def test_a_residual_round_of_zero_candidates_is_off_and_places_nobody() -> None:
    mentors = [mentor("B", 2), mentor("C", 3)]
    mentees = [mentee("x", 1, choices=("C",)), mentee("y", 1, choices=("C",))]

    result = match_cohort(mentees, mentors, Policy(residual_candidates=0, fallback_candidates=0))

    assert len(result.stable.proposals) == 1 and result.residual.proposals == ()
    assert len(result.unmatched) == 1


def test_a_larger_round_drawn_from_postings_still_reaches_the_maximum() -> None:
    # Enough mentors that lists are drawn from the index rather than scored against everyone; places are scarce
    # at the top, so the lists' choices and the maximum differ unless the completion moves people.
    rng = random.Random(7)
    mentors = [
        mentor(f"r{i:03d}", rng.choice((1, 2, 2, 3, 3, 4)), tuple(rng.sample(TAGS, 2)), rng.choice((1, 2)))
        for i in range(260)
    ]
    mentees = [mentee(f"e{i:03d}", rng.choice((0, 0, 1, 1, 2, 3)), tuple(rng.sample(TAGS, 2)), ()) for i in range(420)]
    policy = Policy(fallback_candidates=3, residual_candidates=2)

    result = match_cohort(mentees, mentors, policy)

    left = Counter(p.mentor_id for p in result.stable.proposals)
    places = {m.participant_id: m.available - left[m.participant_id] for m in mentors}
    waiting = [m for m in mentees if m.participant_id in set(result.stable.unmatched)]
    most = most_placeable(waiting, places, {m.participant_id: m for m in mentors}, policy, frozenset())
    assert result.residual.quality.matched == most > 0
