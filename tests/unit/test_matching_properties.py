"""Properties of the matching engine on random small cohorts, cross-checked against the `matching` package."""

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matching import Player
from matching.algorithms.hospital_resident import hospital_resident
from matching.players import Hospital

from aimms_matching.domain.engine import (
    Mentee,
    Mentor,
    Policy,
    PreferenceList,
    Proposal,
    match_cohort,
    mentor_priorities,
    mentor_priority_key,
    rolling_match,
    score_pair,
)

TAGS = ("ageing", "genetics", "oncology", "stroke", "trials", "imaging")
INSTITUTIONS = ("north", "south", "east")
BACKGROUNDS = (None, "token-a", "token-b")
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Cohort = tuple[list[Mentee], list[Mentor], Policy, frozenset[tuple[str, str]]]


SELF = "<herself>"  # stands for the mentee's own id among her choices

# What mentors and mentees alike bring to a score.
TRAITS = st.fixed_dictionaries(
    {
        "institution_id": st.sampled_from(INSTITUTIONS),
        "seniority": st.integers(0, 4),
        "interests": st.frozensets(st.sampled_from(TAGS), max_size=3),
        "background": st.sampled_from(BACKGROUNDS),
        "pathway": st.sampled_from((None, "clinical", "non-clinical")),
    }
)
LOAD = st.sampled_from((0, 0, 0, 1, 2))  # mostly free, so rounds have places to contest


@st.composite
def cohorts(draw: st.DrawFn) -> Cohort:
    """Up to 15 mentors and 30 mentees; some people are both, some choices unknown, self or duplicated."""
    mentor_ids = [f"r{i:02d}" for i in range(draw(st.integers(1, 15)))]
    mentors = [
        Mentor(participant_id=mentor_id, capacity=draw(st.integers(0, 3)), load=draw(LOAD), **draw(TRAITS))
        for mentor_id in mentor_ids
    ]
    both = draw(st.sets(st.sampled_from(mentor_ids), max_size=3))
    mentee_ids = sorted(both) + [f"e{i:02d}" for i in range(draw(st.integers(0, 30)))]
    named = st.sampled_from([*mentor_ids, "ghost"])
    choices = st.lists(st.one_of(named, st.just(SELF)), max_size=3)
    mentees = [
        Mentee(
            participant_id=mentee_id,
            choices=tuple(mentee_id if choice == SELF else choice for choice in draw(choices)),
            **draw(TRAITS),
        )
        for mentee_id in mentee_ids
    ]
    exclusions = draw(st.frozensets(st.tuples(st.sampled_from(mentee_ids or ["none"]), named), max_size=8))
    declined = draw(st.sets(st.sampled_from(mentees), max_size=4)) if mentees else set()
    exclusions |= {(m.participant_id, m.choices[0]) for m in declined if m.choices}  # some declined a choice
    policy = Policy(
        mentor_more_senior=draw(st.booleans()),
        preferred_gap=draw(st.integers(1, 2)),
        fallback_candidates=draw(st.integers(0, 6)),  # short lists, so the residual round has work to do
        residual_candidates=draw(st.integers(0, 8)),
        choices_by_seniority=draw(st.booleans()),
    )
    return mentees, mentors, policy, exclusions


def assignment(proposals: tuple[Proposal, ...]) -> dict[str, str]:
    return {p.mentee_id: p.mentor_id for p in proposals}


def blocking_pairs(lists: dict[str, PreferenceList], capacity: dict[str, int], matched: dict[str, str]) -> int:
    """Counted here from the readable lists, independently of the engine's own count."""
    key = {
        (mentee_id, entry.mentor_id): mentor_priority_key(entry.choice_rank, entry.score, mentee_id)
        for mentee_id, preference in lists.items()
        for entry in preference.entries
    }
    held: dict[str, list] = {}
    for mentee_id, mentor_id in matched.items():
        held.setdefault(mentor_id, []).append(key[(mentee_id, mentor_id)])
    count = 0
    for mentee_id, preference in lists.items():
        listed = [entry.mentor_id for entry in preference.entries]
        better = listed[: listed.index(matched[mentee_id])] if mentee_id in matched else listed
        for mentor_id in better:
            holding = held.get(mentor_id, [])
            count += len(holding) < capacity[mentor_id] or key[(mentee_id, mentor_id)] < max(holding)
    return count


def resident_optimal(lists: dict[str, PreferenceList], capacity: dict[str, int]) -> dict[str, str]:
    """The `matching` package's resident-optimal hospital/resident algorithm on the same lists and priorities.

    Its game object deep-copies players (recursion limit) and checks inputs quadratically, so the core
    algorithm runs on players built here.
    """
    priorities = mentor_priorities(lists)
    residents = {mentee_id: Player(mentee_id) for mentee_id, preference in lists.items() if preference.entries}
    hospitals = {mentor_id: Hospital(mentor_id, capacity[mentor_id]) for mentor_id in priorities}
    for mentee_id, resident in residents.items():
        resident.set_prefs([hospitals[entry.mentor_id] for entry in lists[mentee_id].entries])
    for mentor_id, hospital in hospitals.items():
        hospital.set_prefs([residents[mentee_id] for mentee_id in priorities[mentor_id]])
    solved = hospital_resident(list(residents.values()), list(hospitals.values()), optimal="resident")
    return {resident.name: hospital.name for hospital, matched in solved.items() for resident in matched}


@PROPERTY_SETTINGS
@given(cohorts())
def test_the_stable_round_is_stable_and_the_mentee_optimal_stable_matching_for_its_lists(cohort: Cohort) -> None:
    mentees, mentors, policy, exclusions = cohort
    result = match_cohort(mentees, mentors, policy, exclusions)

    # The residual round maximises how many are placed instead: tests/unit/test_matching_max_cardinality.py.
    for outcome in (result.stable,):
        lists, matched = outcome.lists.preference_lists(), assignment(outcome.proposals)
        assert blocking_pairs(lists, outcome.capacity_of(), matched) == 0
        assert outcome.quality.blocking_pairs == 0
        assert matched == resident_optimal(lists, outcome.capacity_of())


@PROPERTY_SETTINGS
@given(cohorts())
def test_capacities_exclusions_and_self_are_respected_and_every_pair_is_on_her_list(cohort: Cohort) -> None:
    mentees, mentors, policy, exclusions = cohort
    result = match_cohort(mentees, mentors, policy, exclusions)

    available = {m.participant_id: m.available for m in mentors}
    per_mentor = Counter(p.mentor_id for p in result.proposals)
    assert all(count <= available[mentor_id] for mentor_id, count in per_mentor.items())
    assert Counter(p.mentee_id for p in result.proposals).most_common(1)[0][1] <= 1 if result.proposals else True
    assert all((p.mentee_id, p.mentor_id) not in exclusions and p.mentee_id != p.mentor_id for p in result.proposals)
    assert set(result.residual.lists.preference_lists()) == set(result.stable.unmatched)
    for outcome in (result.stable, result.residual):
        lists = outcome.lists.preference_lists()
        for proposal in outcome.proposals:
            assert proposal.round == outcome.round
            assert proposal.mentor_id in [entry.mentor_id for entry in lists[proposal.mentee_id].entries]


@PROPERTY_SETTINGS
@given(cohorts())
def test_lists_hold_valid_choices_in_order_then_the_best_scoring_eligible_mentors(cohort: Cohort) -> None:
    mentees, mentors, policy, exclusions = cohort
    result = match_cohort(mentees, mentors, policy, exclusions)
    by_id = {m.participant_id: m for m in mentors}

    for her in mentees:
        preference = result.stable.preference_list(her.participant_id)
        named = [entry for entry in preference.entries if entry.choice_rank is not None]
        fallbacks = preference.entries[len(named) :]
        assert [entry.mentor_id for entry in named] == [her.choices[entry.choice_rank - 1] for entry in named]
        assert [entry.choice_rank for entry in named] == sorted(entry.choice_rank for entry in named)
        assert all(entry.choice_rank is None for entry in fallbacks)
        assert len(named) + len(preference.skipped) == len(her.choices)
        # Small rounds score every eligible mentor, so fallbacks are exactly the best by score, ties by id.
        listed = {entry.mentor_id for entry in named}
        eligible = [
            (-pair.score, mentor.participant_id)
            for mentor in mentors
            if mentor.available > 0
            and mentor.participant_id not in listed | {her.participant_id}
            and (her.participant_id, mentor.participant_id) not in exclusions
            and (pair := score_pair(her, mentor, policy)) is not None
        ]
        expected = sorted(eligible)[: policy.fallback_candidates]
        assert [(-entry.score, entry.mentor_id) for entry in fallbacks] == expected
        for entry in preference.entries:
            named_her = entry.choice_rank is not None
            assert entry.score == score_pair(her, by_id[entry.mentor_id], policy, named=named_her).score


@PROPERTY_SETTINGS
@given(cohorts())
def test_a_rolling_match_is_the_head_of_her_list_and_touches_no_one_else(cohort: Cohort) -> None:
    mentees, mentors, policy, exclusions = cohort
    for her in mentees[:5]:
        proposal = rolling_match(her, mentors, policy, exclusions)
        solo = Policy(policy.mentor_more_senior, policy.preferred_gap, choices_by_seniority=policy.choices_by_seniority)
        alone = match_cohort([her], mentors, solo, exclusions)
        entries = alone.stable.preference_list(her.participant_id).entries

        if not entries:
            assert proposal is None
            continue
        assert proposal is not None and proposal.round == "rolling"
        assert (proposal.mentor_id, proposal.choice_rank) == (entries[0].mentor_id, entries[0].choice_rank)
        assert proposal.score == entries[0].score
