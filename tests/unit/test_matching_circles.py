"""Mentoring circles without I/O: sizes, mixed institutions, nobody alone of her group, explained per member."""

import random
from collections import Counter

import pytest

from aimms_matching.domain.circles import CirclePolicy, Facilitator, Peer, form_circles

INTERESTS = ("global-health", "cardiology", "education", "genomics", "surgery", "stroke")


def cohort(n: int, seed: int = 7, institutions: int = 5, grouped: float = 0.3) -> list[Peer]:
    rng = random.Random(seed)
    return [
        Peer(
            participant_id=f"p{i}",
            institution_id=f"school-{rng.randrange(institutions)}",
            stage=rng.randrange(6),
            interests=frozenset(rng.sample(INTERESTS, 2)),
            group=rng.choice(("g-a", "g-b", "g-c")) if rng.random() < grouped else None,
        )
        for i in range(n)
    ]


def test_every_peer_is_in_one_circle_of_four_to_eight() -> None:
    peers = cohort(203)
    result = form_circles(peers, [])
    placed = [m for c in result.circles for m in c.members]

    assert sorted(placed) == sorted(p.participant_id for p in peers) and not result.unplaced
    assert all(4 <= len(c.members) <= 8 for c in result.circles)
    assert result.quality["placed"] == 203 and result.quality["size_min"] >= 4


def test_institutions_are_mixed_and_nobody_is_alone_of_her_group() -> None:
    peers = cohort(600, institutions=4, grouped=0.25)
    result = form_circles(peers, [])
    by_id = {p.participant_id: p for p in peers}

    for circle in result.circles:
        members = [by_id[m] for m in circle.members]
        assert Counter(p.institution_id for p in members).most_common(1)[0][1] <= len(members) / 2
        groups = Counter(p.group for p in members if p.group)
        assert all(n >= 2 for n in groups.values()), groups
    assert result.quality["institutions_mixed_rate"] == 1.0 and result.quality["members_alone_of_their_group"] == 0


def test_each_member_is_told_what_she_shares_with_her_circle_and_never_a_group() -> None:
    peers = cohort(60)
    result = form_circles(peers, [])
    for peer in peers:
        why = result.why[peer.participant_id]
        circle = result.circles[why.circle]
        assert peer.participant_id in circle.members
        assert set(why.shared_interests) <= peer.interests and set(why.shared_interests) <= set(circle.shared_interests)
        assert circle.stages[0] <= peer.stage <= circle.stages[1]
        assert "g-" not in repr(why)


def test_facilitators_share_the_circles_interest_and_come_from_elsewhere_while_they_last() -> None:
    peers = cohort(48, institutions=2)
    facilitators = [Facilitator(f"f{i}", "school-far", frozenset({tag})) for i, tag in enumerate(INTERESTS)]
    result = form_circles(peers, facilitators[:5])

    assigned = [c.facilitator for c in result.circles]
    assert len(result.circles) == 8 and sum(1 for f in assigned if f) == 5 and len(set(filter(None, assigned))) == 5
    assert result.quality["facilitated_rate"] == 0.625


def test_too_few_peers_make_no_circle_and_the_same_cohort_gives_the_same_circles() -> None:
    assert form_circles(cohort(3), []).unplaced == ("p0", "p1", "p2")
    assert form_circles(cohort(90), []).circles == form_circles(list(reversed(cohort(90))), []).circles
    small = form_circles(cohort(9), [], CirclePolicy(min_size=4, max_size=8, target_size=6))
    assert sorted(len(c.members) for c in small.circles) == [4, 5]


@pytest.mark.parametrize("seed", range(6))
def test_the_rules_hold_for_any_cohort(seed: int) -> None:
    rng = random.Random(seed)
    peers = cohort(rng.randrange(4, 400), seed=seed, institutions=rng.randrange(2, 9), grouped=rng.random() / 2)
    result = form_circles(peers, [])
    q = result.quality
    assert q["placed"] == len(peers) and 4 <= q["size_min"] <= q["size_max"] <= 8
    lone_in_cohort = sum(1 for n in Counter(p.group for p in peers if p.group).values() if n == 1)
    assert q["members_alone_of_their_group"] == lone_in_cohort  # only who has nobody of her group at all
