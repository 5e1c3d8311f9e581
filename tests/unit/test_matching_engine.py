"""The matching engine: scoring, preference lists, deferred acceptance, residual and rolling rounds, quality."""

import json
import random

import pytest

from aimms_matching.domain.engine import (
    UNMATCHED,
    Mentee,
    Mentor,
    MentorIndex,
    Policy,
    SkippedChoice,
    Weights,
    build_ranked_lists,
    count_blocking_pairs,
    fallback_reason,
    match_cohort,
    mentor_priorities,
    rolling_match,
    score_pair,
)

POLICY = Policy()


def mentor(
    participant_id: str,
    seniority: int = 2,
    interests: tuple[str, ...] = (),
    institution: str = "north",
    capacity: int = 1,
    load: int = 0,
    background: str | None = None,
    pathway: str | None = None,
) -> Mentor:
    return Mentor(participant_id, institution, seniority, frozenset(interests), capacity, load, background, pathway)


def mentee(
    participant_id: str,
    choices: tuple[str, ...] = (),
    seniority: int = 1,
    interests: tuple[str, ...] = (),
    institution: str = "south",
    background: str | None = None,
    pathway: str | None = None,
) -> Mentee:
    return Mentee(participant_id, institution, seniority, frozenset(interests), choices, background, pathway)


def lists_of(mentees: list[Mentee], mentors: list[Mentor], policy: Policy = POLICY, exclusions=frozenset()):
    ranked = build_ranked_lists(mentees, MentorIndex(mentors), policy, exclusions, policy.fallback_candidates)
    return ranked.preference_lists()


def pairs(proposals) -> dict[str, str]:
    return {p.mentee_id: p.mentor_id for p in proposals}


# --- scoring -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("her", "him", "components", "score", "shared_interests", "gap"),
    [
        pytest.param(
            mentee(
                "e", seniority=1, interests=("ageing", "genetics", "stroke"), background="token-1", pathway="clinical"
            ),
            mentor(
                "r", seniority=3, interests=("genetics", "stroke", "trials"), background="token-1", pathway="clinical"
            ),
            {"seniority": 0.5, "interests": 0.5, "other_institution": 1.0, "background": 1.0, "pathway": 1.0},
            0.5 + 0.5 + 0.5 * 1.0 + 0.5 * 1.0 + 0.25 * 1.0,
            ("genetics", "stroke"),
            2,
            id="every-component-weighted",
        ),
        pytest.param(
            mentee("e", seniority=1, institution="north", background=None),
            mentor("r", seniority=2, institution="north", background=None),
            {"seniority": 1.0, "interests": 0.0, "other_institution": 0.0, "background": 0.0, "pathway": 0.0},
            1.0,
            (),
            1,
            id="preferred-gap-scores-one-same-institution-and-absent-backgrounds-nothing",
        ),
    ],
)
def test_a_score_is_the_weighted_sum_of_its_five_components_and_keeps_what_they_rest_on(
    her: Mentee, him: Mentor, components: dict[str, float], score: float, shared_interests: tuple[str, ...], gap: int
) -> None:
    pair = score_pair(her, him, POLICY)

    assert pair is not None
    assert pair.components == components
    assert pair.score == score
    assert pair.shared_interests == shared_interests
    assert pair.seniority_gap == gap


def test_a_background_counts_only_when_both_opted_in_with_the_same_token() -> None:
    assert score_pair(mentee("e", background="x"), mentor("r", background=None), POLICY).components["background"] == 0
    assert score_pair(mentee("e", background=None), mentor("r", background=None), POLICY).components["background"] == 0
    assert score_pair(mentee("e", background="x"), mentor("r", background="y"), POLICY).components["background"] == 0


def test_a_shared_career_pathway_raises_the_score_and_different_or_unknown_pathways_do_not() -> None:
    clinical = mentee("e", pathway="clinical")
    same = score_pair(clinical, mentor("r", pathway="clinical"), POLICY)
    other = score_pair(clinical, mentor("r", pathway="non-clinical"), POLICY)
    unknown = score_pair(mentee("e"), mentor("r"), POLICY)

    assert same.components["pathway"] == 1.0 and other.components["pathway"] == 0.0
    assert unknown.components["pathway"] == 0.0
    assert same.score == other.score + POLICY.weights.pathway


def test_a_shared_background_opt_in_changes_who_is_proposed_as_a_fallback() -> None:
    """Two equally suitable mentors: the one who opted in with the same background token is proposed."""
    mentors = [mentor("r-a", background=None), mentor("r-b", background="token-1")]

    opted_in = match_cohort([mentee("e", background="token-1")], mentors).proposals[0]
    not_opted_in = match_cohort([mentee("e", background=None)], mentors).proposals[0]

    assert opted_in.mentor_id == "r-b" and opted_in.components["background"] == 1.0
    assert not_opted_in.mentor_id == "r-a" and not_opted_in.components["background"] == 0.0


def test_weights_come_from_the_programme() -> None:
    policy = Policy(weights=Weights(seniority=2.0, interests=0.0, other_institution=1.0, background=0.0, pathway=0.0))
    pair = score_pair(mentee("e", interests=("a",)), mentor("r", interests=("a",)), policy)

    assert pair is not None and pair.score == 3.0


@pytest.mark.parametrize("mentor_seniority", [0, 1])
def test_a_mentor_not_more_senior_than_the_mentee_is_ineligible(mentor_seniority: int) -> None:
    assert score_pair(mentee("e", seniority=1), mentor("r", seniority=mentor_seniority), POLICY) is None


def test_reverse_mentoring_inverts_the_seniority_rule() -> None:
    reverse = Policy(mentor_more_senior=False)
    professor = mentee("e", seniority=3)

    student = score_pair(professor, mentor("r", seniority=1), reverse)
    assert student is not None and student.seniority_gap == 2
    assert score_pair(professor, mentor("r", seniority=4), reverse) is None
    assert score_pair(professor, mentor("r", seniority=3), reverse) is None


# --- preference lists ----------------------------------------------------------------------------------------


def test_her_list_keeps_valid_choices_in_her_order_then_fallbacks_by_score() -> None:
    mentors = [
        mentor("r-best", interests=("stroke",)),
        mentor("r-chosen-2", interests=()),
        mentor("r-chosen-1", interests=()),
        mentor("r-tie-a"),
        mentor("r-tie-b"),
    ]
    her = mentee("e", choices=("r-chosen-1", "r-chosen-2"), interests=("stroke",))

    (preference,) = lists_of([her], mentors).values()

    assert [e.mentor_id for e in preference.entries] == ["r-chosen-1", "r-chosen-2", "r-best", "r-tie-a", "r-tie-b"]
    assert [e.choice_rank for e in preference.entries] == [1, 2, None, None, None]
    assert preference.entries[2].score > preference.entries[3].score == preference.entries[4].score


def test_a_mentee_may_name_a_mentor_seniority_would_not_propose_and_is_proposed_her() -> None:
    """The scheme's way: any published mentor may be named; seniority only guides the fallbacks."""
    peer = mentor("r-peer", seniority=1)
    her = mentee("e", choices=("r-peer",), seniority=1)

    (proposal,) = match_cohort([her], [peer, mentor("r-senior", seniority=2)]).proposals
    rolled = rolling_match(her, [peer])

    assert (proposal.mentor_id, proposal.choice_rank) == ("r-peer", 1)
    assert proposal.components["seniority"] == 0.0 and proposal.seniority_gap == 0
    assert rolled is not None and rolled.mentor_id == "r-peer"
    assert score_pair(her, peer, POLICY) is None  # as a fallback she would never be proposed


def test_unusable_choices_are_skipped_with_the_reason() -> None:
    mentors = [
        mentor("r-junior", seniority=1),
        mentor("r-full", capacity=2, load=2),
        mentor("r-declined"),
        mentor("e"),  # she is also a mentor (role "both")
        mentor("r-fine"),
    ]
    her = mentee("e", choices=("r-junior", "r-full", "r-declined"))
    also_her = mentee("e", choices=("e", "r-gone", "r-fine"))

    by_seniority = Policy(choices_by_seniority=True)  # a programme that limits choices by seniority
    (preference,) = lists_of([her], mentors, by_seniority, exclusions={("e", "r-declined")}).values()
    (other,) = lists_of([also_her], mentors).values()

    assert preference.skipped == (
        SkippedChoice("r-junior", 1, "ineligible"),
        SkippedChoice("r-full", 2, "full"),
        SkippedChoice("r-declined", 3, "excluded"),
    )
    assert other.skipped == (SkippedChoice("e", 1, "self"), SkippedChoice("r-gone", 2, "unknown"))
    assert [(e.mentor_id, e.choice_rank) for e in other.entries][:1] == [("r-fine", 3)]


def test_fallbacks_are_capped_and_never_repeat_a_choice_or_name_an_excluded_full_or_ineligible_mentor() -> None:
    mentors = [mentor(f"r{i:02d}", interests=("stroke",) if i % 2 else ()) for i in range(30)]
    mentors += [mentor("r-full", capacity=1, load=1), mentor("r-junior", seniority=1), mentor("r-declined")]
    her = mentee("e", choices=("r05",), interests=("stroke",))

    (preference,) = lists_of([her], mentors, Policy(fallback_candidates=7), {("e", "r-declined")}).values()

    fallbacks = [e.mentor_id for e in preference.entries[1:]]
    assert len(fallbacks) == 7
    assert "r05" not in fallbacks
    assert not {"r-full", "r-junior", "r-declined"} & set(fallbacks)
    # Mentors sharing her interest score higher, so they fill the fallback places, in id order on ties.
    assert fallbacks == ["r01", "r03", "r07", "r09", "r11", "r13", "r15"]


def test_a_mentee_without_interests_still_gets_fallbacks_from_the_eligible_levels() -> None:
    mentors = [mentor("r1", seniority=2), mentor("r2", seniority=3), mentor("r3", seniority=1)]

    (preference,) = lists_of([mentee("e", seniority=1)], mentors).values()

    assert [e.mentor_id for e in preference.entries] == ["r1", "r2"]  # the preferred gap first; r3 is not senior


def test_list_scores_equal_the_explained_score_to_the_bit() -> None:
    rng = random.Random(3)
    tags = ["a", "b", "c", "d", "e"]
    mentors = [
        mentor(f"r{i}", rng.randint(1, 4), tuple(rng.sample(tags, rng.randint(0, 4))), rng.choice("xyz"), 2, 0, "t")
        for i in range(25)
    ]
    mentees = [mentee(f"e{i}", (), rng.randint(0, 2), tuple(rng.sample(tags, 2)), rng.choice("xyz")) for i in range(9)]
    by_id = {m.participant_id: m for m in mentors}

    for her in mentees:
        for entry in lists_of([her], mentors)[her.participant_id].entries:
            assert entry.score == score_pair(her, by_id[entry.mentor_id], POLICY).score


def test_a_large_round_draws_candidates_through_her_interests_best_overlap_first() -> None:
    mentors = [mentor(f"r{i:04d}", interests=(f"tag{i % 50}",)) for i in range(2000)]
    mentors += [mentor(f"both-{i}", interests=("tag7", "tag8")) for i in range(5)]
    by_id = {m.participant_id: m for m in mentors}
    her = mentee("e", interests=("tag7", "tag8"))

    (preference,) = lists_of([her], mentors).values()

    assert len(preference.entries) == POLICY.fallback_candidates
    # Mentors holding both of her tags come first (found through the tag-pair postings), then one shared tag.
    assert {e.mentor_id for e in preference.entries[:5]} == {f"both-{i}" for i in range(5)}
    assert all(score_pair(her, by_id[e.mentor_id], POLICY).shared_interests for e in preference.entries)


def test_a_large_round_reaches_mentors_sharing_her_background_when_it_weighs_more_than_shared_tags() -> None:
    mentors = [mentor(f"r{i:04d}", interests=(f"tag{i % 50}",)) for i in range(1000)]
    mentors += [mentor(f"same-background-{i:02d}", background="token") for i in range(25)]
    her = mentee("e", interests=("tag0", "tag1", "tag2", "tag3", "tag4"), background="token")

    (preference,) = lists_of([her], mentors).values()

    # Sharing her background adds 0.5; one shared tag of her five adds 0.2: the background wins every place.
    assert [e.mentor_id for e in preference.entries] == [f"same-background-{i:02d}" for i in range(20)]


def test_a_large_round_draws_candidates_from_every_eligible_level_in_proportion_to_its_free_places() -> None:
    # The best-fitting level (one above her) is crowded with mentors sharing her tag; the free places are
    # mostly two levels further up. Her list must reach them, or those places stay on nobody's list.
    near = [mentor(f"near-{i:03d}", seniority=2, interests=("tag0",)) for i in range(300)]
    far = [mentor(f"far-{i:03d}", seniority=4, interests=("tag9",), capacity=3) for i in range(300)]
    her = mentee("e", seniority=1, interests=("tag0",))

    (preference,) = lists_of([her], near + far).values()

    listed = [e.mentor_id for e in preference.entries]
    assert len(listed) == POLICY.fallback_candidates
    assert listed[0].startswith("near-")  # the better fit still ranks first
    assert any(mentor_id.startswith("far-") for mentor_id in listed)


# --- mentor priority -----------------------------------------------------------------------------------------


def test_a_mentor_ranks_mentees_by_named_rank_then_score_then_id() -> None:
    mentors = [mentor("r", interests=("stroke",)), mentor("q"), mentor("p")]
    mentees = [
        mentee("e-fallback-high", interests=("stroke",)),
        mentee("e-second", choices=("q", "r")),
        mentee("e-first-low", choices=("r",)),
        mentee("e-first-high", choices=("r",), interests=("stroke",)),
        mentee("e-fallback-b"),
        mentee("e-fallback-a"),
    ]

    priorities = mentor_priorities(lists_of(mentees, mentors))

    assert priorities["r"] == (
        "e-first-high",
        "e-first-low",
        "e-second",
        "e-fallback-high",
        "e-fallback-a",
        "e-fallback-b",
    )


# --- the cohort round ----------------------------------------------------------------------------------------

HAND_WORKED_MENTORS = [
    mentor("A", interests=("cardiology",)),
    mentor("B", interests=("genetics",)),
    mentor("C", interests=("oncology",), capacity=2),
]
HAND_WORKED_MENTEES = [
    mentee("m1", choices=("A", "B"), interests=("genetics",)),
    mentee("m2", choices=("A", "C"), interests=("cardiology",)),
    mentee("m3", choices=("B",), interests=("oncology",)),
    mentee("m4", interests=("oncology",)),
]


def test_a_hand_worked_cohort_gives_the_known_mentee_optimal_matching() -> None:
    # A prefers m2 (both named A first; m2 shares A's interest). m1 falls to B, where m3 named B first and wins.
    # m1's choices are then full: she and m4 (no choices) go to C by score, which has two places.
    result = match_cohort(HAND_WORKED_MENTEES, HAND_WORKED_MENTORS)

    by_mentee = {p.mentee_id: p for p in result.stable.proposals}
    assert pairs(result.stable.proposals) == {"m1": "C", "m2": "A", "m3": "B", "m4": "C"}
    assert (by_mentee["m1"].choice_rank, by_mentee["m1"].fallback_reason) == (None, "choices-full")
    assert (by_mentee["m2"].choice_rank, by_mentee["m2"].fallback_reason) == (1, None)
    assert (by_mentee["m3"].choice_rank, by_mentee["m3"].fallback_reason) == (1, None)
    assert (by_mentee["m4"].choice_rank, by_mentee["m4"].fallback_reason) == (None, "no-choices")
    assert result.residual.proposals == () and result.unmatched == ()


def test_the_result_does_not_depend_on_input_order() -> None:
    shuffled = random.Random(1)
    mentees, mentors = list(HAND_WORKED_MENTEES), list(HAND_WORKED_MENTORS)
    shuffled.shuffle(mentees)
    shuffled.shuffle(mentors)

    assert match_cohort(mentees, mentors) == match_cohort(HAND_WORKED_MENTEES, HAND_WORKED_MENTORS)


def test_a_mentor_never_receives_more_than_her_free_places() -> None:
    mentors = [mentor("r", capacity=3, load=1), mentor("q", capacity=1)]
    mentees = [mentee(f"e{i}", choices=("r",)) for i in range(5)]

    result = match_cohort(mentees, mentors, Policy(fallback_candidates=0, residual_candidates=0))

    assert sum(p.mentor_id == "r" for p in result.proposals) == 2
    assert len(result.unmatched) == 3


def test_excluded_pairs_are_never_proposed_and_a_decline_is_reported_as_the_reason() -> None:
    mentors = [mentor("r", interests=("stroke",)), mentor("q")]
    her = mentee("e", choices=("r",), interests=("stroke",))

    result = match_cohort([her], mentors, exclusions={("e", "r")})

    (proposal,) = result.proposals
    assert proposal.mentor_id == "q"
    assert proposal.fallback_reason == "choices-declined"


def test_a_person_who_is_both_mentee_and_mentor_is_never_paired_with_herself() -> None:
    mentors = [mentor("both", seniority=3, interests=("stroke",)), mentor("r", seniority=3)]
    her = mentee("both", choices=("both",), seniority=1, interests=("stroke",))

    result = match_cohort([her], mentors)

    (proposal,) = result.proposals
    assert proposal.mentor_id == "r"
    assert proposal.fallback_reason == "choices-ineligible"  # naming herself counts as an unusable choice


def test_the_residual_round_places_those_the_stable_round_left_and_is_reported_separately() -> None:
    mentors = [mentor("r", interests=("stroke",)), mentor("q")]
    mentees = [mentee("e-first", choices=("r",), interests=("stroke",)), mentee("e-second", choices=("r",))]

    result = match_cohort(mentees, mentors, Policy(fallback_candidates=0))

    assert pairs(result.stable.proposals) == {"e-first": "r"}
    assert result.stable.unmatched == ("e-second",)
    (late,) = result.residual.proposals
    assert (late.mentee_id, late.mentor_id, late.round, late.fallback_reason) == (
        "e-second",
        "q",
        "residual",
        "choices-full",
    )
    assert result.stable.quality.mentees == 2 and result.residual.quality.mentees == 1
    assert result.residual.quality.round == "residual" and result.residual.quality.matched == 1
    assert result.residual.preference_list("e-second").skipped == (SkippedChoice("r", 1, "full"),)


def test_every_proposal_explains_itself() -> None:
    her = mentee("e", choices=("r",), seniority=0, interests=("stroke", "trials"), institution="south")
    him = mentor("r", seniority=2, interests=("stroke",), institution="north", background=None)

    (proposal,) = match_cohort([her], [him]).proposals

    assert proposal.round == "stable"
    assert proposal.choice_rank == 1 and proposal.fallback_reason is None
    assert proposal.components == {
        "seniority": 0.5,
        "interests": 0.5,
        "other_institution": 1.0,
        "background": 0.0,
        "pathway": 0.0,
    }
    assert proposal.score == 0.5 + 0.5 + 0.5
    assert proposal.shared_interests == ("stroke",)
    assert proposal.seniority_gap == 2
    assert (proposal.mentee_institution, proposal.mentor_institution) == ("south", "north")


@pytest.mark.parametrize(
    ("named", "skipped", "lost_valid", "reason"),
    [
        (0, [], False, "no-choices"),
        (3, ["excluded", "full", "ineligible"], False, "choices-declined"),
        (2, ["full", "ineligible"], False, "choices-full"),
        (2, ["ineligible"], True, "choices-full"),
        (2, ["ineligible", "unknown"], False, "choices-ineligible"),
    ],
)
def test_the_fallback_reason_is_the_most_telling(named: int, skipped: list, lost_valid: bool, reason: str) -> None:
    choices = [SkippedChoice(f"r{i}", i + 1, why) for i, why in enumerate(skipped)]

    assert fallback_reason(named, choices, lost_valid) == reason


# --- rolling match -------------------------------------------------------------------------------------------


def test_a_rolling_match_takes_her_best_available_choice_and_leaves_held_places_alone() -> None:
    # r is full with an existing match; she would outrank that mentee, but existing pairs are frozen.
    mentors = [mentor("r", interests=("stroke",), capacity=1, load=1), mentor("q"), mentor("p", interests=("stroke",))]
    her = mentee("late", choices=("r", "q"), interests=("stroke",))

    proposal = rolling_match(her, mentors)

    assert proposal is not None
    assert (proposal.mentor_id, proposal.round, proposal.choice_rank) == ("q", "rolling", 2)


def test_a_rolling_match_falls_back_to_the_best_score_and_respects_exclusions() -> None:
    mentors = [
        mentor("r", interests=("stroke",), capacity=1, load=1),
        mentor("p", interests=("stroke",)),
        mentor("o", interests=("stroke",)),
        mentor("n"),
    ]
    her = mentee("late", choices=("r",), interests=("stroke",))

    proposal = rolling_match(her, mentors, exclusions={("late", "o")})

    assert proposal is not None
    assert (proposal.mentor_id, proposal.choice_rank, proposal.fallback_reason) == ("p", None, "choices-full")


def test_a_rolling_match_proposes_nothing_when_no_one_is_free() -> None:
    assert rolling_match(mentee("late"), [mentor("r", capacity=1, load=1), mentor("q", seniority=0)]) is None


# --- quality report ------------------------------------------------------------------------------------------


def test_the_quality_report_of_the_hand_worked_cohort() -> None:
    quality = match_cohort(HAND_WORKED_MENTEES, HAND_WORKED_MENTORS).stable.quality

    assert (quality.round, quality.mentees, quality.matched) == ("stable", 4, 4)
    assert quality.first_choice_rate == 0.5 and quality.any_choice_rate == 0.5
    assert quality.rank_profile == {"choice_1": 2, "choice_2": 0, "choice_3": 0, "fallback": 2, "unmatched": 0}
    assert quality.fallback_reasons == {"choices-full": 1, "no-choices": 1}
    assert quality.blocking_pairs == 0
    # Five choices named; the top 10% of three mentors is one mentor (A or B), named twice.
    assert quality.top_decile_choice_share == 2 / 5
    assert quality.by_institution["south"].match_rate == 1.0
    assert quality.by_seniority[1].first_choice_rate == 0.5


def test_the_quality_report_splits_rates_by_institution_and_seniority_and_serialises_to_json() -> None:
    mentors = [mentor("r", seniority=3)]
    mentees = [mentee("e1", ("r",), 1, institution="x"), mentee("e2", ("r",), 2, institution="y")]

    quality = match_cohort(mentees, mentors, Policy(residual_candidates=0)).stable.quality
    report = json.loads(json.dumps(quality.as_dict()))

    # e2 scores higher with r (the preferred gap of one), so she wins the only place.
    assert report["by_institution"]["y"] == {
        "mentees": 1,
        "matched": 1,
        "first_choice": 1,
        "match_rate": 1.0,
        "first_choice_rate": 1.0,
    }
    assert report["by_institution"]["x"]["match_rate"] == 0.0
    assert report["by_seniority"]["1"]["matched"] == 0 and report["by_seniority"]["2"]["matched"] == 1
    assert report["rank_profile"]["unmatched"] == 1


def test_blocking_pairs_are_counted_from_the_assignment_not_assumed() -> None:
    result = match_cohort(HAND_WORKED_MENTEES, HAND_WORKED_MENTORS)
    lists = result.stable.lists
    position = {mentor_id: i for i, mentor_id in enumerate(lists.index.ids)}
    stable = [position[pairs(result.stable.proposals)[m.participant_id]] for m in lists.mentees]

    # Swap m2 (holds A, her first choice) with m1 (at C): m2 now prefers A, which holds m1 below her.
    swapped = list(stable)
    swapped[0], swapped[1] = stable[1], stable[0]
    capacities = list(result.stable.capacities)

    assert count_blocking_pairs(lists, capacities, stable) == 0
    assert count_blocking_pairs(lists, capacities, swapped) > 0
    assert count_blocking_pairs(lists, capacities, [UNMATCHED] * 4) > 0


def test_mentors_and_mentees_are_validated() -> None:
    with pytest.raises(ValueError, match="at most 3"):
        mentee("e", choices=("a", "b", "c", "d"))
    with pytest.raises(ValueError, match="negative"):
        mentor("r", capacity=-1)
    with pytest.raises(ValueError, match="unique"):
        match_cohort([mentee("e"), mentee("e")], [mentor("r")])
    assert mentor("r", capacity=2, load=3).available == 0
