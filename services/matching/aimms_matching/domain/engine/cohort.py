"""A cohort round (stable, then residual, completed) and the rolling match of one mentee, with explained proposals."""

import gc
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from aimms_matching.domain.engine.candidates import (
    NOT_NAMED,
    ListBuilder,
    MenteeArrays,
    MentorIndex,
    RankedLists,
)
from aimms_matching.domain.engine.completion import complete, with_assigned_on_lists
from aimms_matching.domain.engine.deferred_acceptance import assign
from aimms_matching.domain.engine.model import (
    DEFAULT_POLICY,
    NO_EXCLUSIONS,
    FallbackReason,
    Mentee,
    Mentor,
    Policy,
    PreferenceList,
    Proposal,
    Round,
    SkippedChoice,
)
from aimms_matching.domain.engine.quality import RoundQuality, blocking_pairs, round_quality
from aimms_matching.domain.engine.scoring import PairScore, score_pair

Exclusions = Collection[tuple[str, str]]  # (mentee_id, mentor_id) pairs never to propose


@dataclass(frozen=True, slots=True)
class RoundOutcome:
    """One round's proposals, the mentees it left unmatched, its quality report and the lists it used."""

    round: Round
    proposals: tuple[Proposal, ...]
    unmatched: tuple[str, ...]
    quality: RoundQuality
    lists: RankedLists = field(repr=False, compare=False)
    capacities: tuple[int, ...] = field(repr=False, compare=False)  # available places per mentor, in index order

    def preference_list(self, mentee_id: str) -> PreferenceList:
        """The list she had in this round: valid choices, fallbacks with scores, and skipped choices."""
        return self.lists.preference_list(self.lists.position_of(mentee_id))

    def capacity_of(self) -> dict[str, int]:
        """Available places per mentor id at the start of the round."""
        return dict(zip(self.lists.index.ids, self.capacities, strict=True))


@dataclass(frozen=True, slots=True)
class CohortResult:
    """The stable round, then the residual round for those it left unmatched (as many placed as its places allow)."""

    stable: RoundOutcome
    residual: RoundOutcome

    @property
    def proposals(self) -> tuple[Proposal, ...]:
        """Every proposal of the cohort, stable round first."""
        return self.stable.proposals + self.residual.proposals

    @property
    def unmatched(self) -> tuple[str, ...]:
        """Mentees neither round could place."""
        return self.residual.unmatched


def fallback_reason(named: int, skipped: Iterable[SkippedChoice], lost_valid_choices: bool) -> FallbackReason:
    """Why she was given a fallback: the most telling of what happened to her choices (declined > full > ineligible)."""
    if named == 0:
        return "no-choices"
    reasons = {choice.reason for choice in skipped}
    if "excluded" in reasons:
        return "choices-declined"
    if "full" in reasons or lost_valid_choices:  # a valid choice she did not get filled with mentees ahead of her
        return "choices-full"
    return "choices-ineligible"


def explain(
    round_name: Round,
    mentee: Mentee,
    mentor: Mentor,
    policy: Policy,
    choice_rank: int | None,
    skipped: Sequence[SkippedChoice],
) -> Proposal:
    """A proposal with its score, components and the reason for a fallback."""
    pair = score_pair(mentee, mentor, policy, named=choice_rank is not None)
    if pair is None:
        raise ValueError(f"{mentor.participant_id} may not mentor {mentee.participant_id}")
    named_valid = len(mentee.choices) - len(skipped)
    fallback = None if choice_rank else fallback_reason(len(mentee.choices), skipped, named_valid > 0)
    return proposal_of(round_name, mentee, mentor, pair, choice_rank, fallback)


def proposal_of(
    round_name: Round,
    mentee: Mentee,
    mentor: Mentor,
    scored: PairScore,
    choice_rank: int | None,
    fallback: FallbackReason | None,
) -> Proposal:
    """The one way to put a scored pair and its reasons into a proposal (rounds and coordinators alike)."""
    return Proposal(
        mentee_id=mentee.participant_id,
        mentor_id=mentor.participant_id,
        round=round_name,
        choice_rank=choice_rank,
        fallback_reason=fallback,
        score=scored.score,
        components=scored.components,
        shared_interests=scored.shared_interests,
        seniority_gap=scored.seniority_gap,
        mentee_institution=mentee.institution_id,
        mentor_institution=mentor.institution_id,
    )


def _proposals(
    round_name: Round,
    lists: RankedLists,
    cohort: MenteeArrays,
    assigned: np.ndarray,
    places: np.ndarray,
    policy: Policy,
) -> tuple[list[Proposal], dict[str, int]]:
    """Every pair of the round, explained as explain() would (score_pair's components, computed in bulk), and the
    count of each fallback reason."""
    index = lists.index
    rows = np.flatnonzero(assigned >= 0)
    mentors = assigned[rows]
    entries = lists.starts[rows] + places[rows]
    levels = np.array(index.seniority_levels, dtype=np.int64)
    gap = levels[index.level[mentors]] - cohort.seniority[rows]
    if not policy.mentor_more_senior:
        gap = -gap
    fit = np.zeros(len(rows))
    eligible = gap >= 1
    fit[eligible] = 1.0 / (1 + np.abs(gap[eligible] - policy.preferred_gap))
    shared = np.bitwise_count(index.masks[mentors] & cohort.masks[rows]).sum(axis=1, dtype=np.int64)
    overlap = shared / np.maximum(cohort.tag_count[rows] + index.tag_count[mentors] - shared, 1)
    other = np.where(index.institution[mentors] != cohort.institution[rows], 1.0, 0.0)
    background = np.where(index.background[mentors] == cohort.background[rows], 1.0, 0.0)
    pathway = np.where(index.pathway[mentors] == cohort.pathway[rows], 1.0, 0.0)
    components = [
        {"seniority": a, "interests": b, "other_institution": c, "background": d, "pathway": e}
        for a, b, c, d, e in zip(
            fit.tolist(), overlap.tolist(), other.tolist(), background.tolist(), pathway.tolist(), strict=True
        )
    ]
    ranks = lists.ranks[entries]
    named = ranks != NOT_NAMED
    choice_ranks: list[int | None] = np.where(named, ranks, 0).tolist()
    fallbacks: list[FallbackReason | None] = [None] * len(rows)
    reasons: dict[str, int] = {}
    mentees, skipped = lists.mentees, lists.skipped
    for at, row in zip(np.flatnonzero(~named).tolist(), rows[~named].tolist(), strict=True):
        choice_ranks[at] = None
        named_count, why = len(mentees[row].choices), skipped[row]
        reason = fallback_reason(named_count, why, named_count > len(why)) if why else _NO_SKIP[named_count > 0]
        fallbacks[at] = reason
        reasons[reason] = reasons.get(reason, 0) + 1
    by_position = index.mentors
    proposals = [
        Proposal(
            mentee.participant_id,
            him.participant_id,
            round_name,
            rank,
            fallback,
            score,
            parts,
            tuple(sorted(mentee.interests & him.interests)),
            gap_of,
            mentee.institution_id,
            him.institution_id,
        )
        for mentee, him, rank, fallback, score, parts, gap_of in zip(
            map(mentees.__getitem__, rows.tolist()),
            map(by_position.__getitem__, mentors.tolist()),
            choice_ranks,
            fallbacks,
            lists.scores[entries].tolist(),
            components,
            gap.tolist(),
            strict=True,
        )
    ]
    return proposals, reasons


_NO_SKIP: dict[bool, FallbackReason] = {False: "no-choices", True: "choices-full"}  # by: she named someone


def _outcome(
    round_name: Round,
    lists: RankedLists,
    cohort: MenteeArrays,
    capacities: np.ndarray,
    assigned: np.ndarray,
    policy: Policy,
) -> RoundOutcome:
    """A round's proposals, the mentees it left unmatched and its quality report, from its assignment."""
    places = lists.places_of(assigned)
    proposals, reasons = _proposals(round_name, lists, cohort, assigned, places, policy)
    unmatched = tuple(lists.mentees[row].participant_id for row in np.flatnonzero(assigned < 0).tolist())
    quality = round_quality(
        round_name, lists, assigned, places, reasons, blocking_pairs(lists, capacities, assigned, places)
    )
    return RoundOutcome(round_name, tuple(proposals), unmatched, quality, lists, tuple(capacities.tolist()))


@contextmanager
def _collector_paused() -> Iterator[None]:
    """A round allocates millions of small acyclic objects; the cyclic collector would rescan them over and over."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def match_cohort(
    mentees: Iterable[Mentee],
    mentors: Iterable[Mentor],
    policy: Policy = DEFAULT_POLICY,
    exclusions: Exclusions = NO_EXCLUSIONS,
) -> CohortResult:
    """Propose pairs for a cohort: a mentee-optimal stable round, then a residual round for those left over.

    The residual round is deferred acceptance over longer score-based lists, completed to a maximum matching of
    its mentees to the places the stable round left (completion.py: only its own fallback pairs may move, to free
    a place; stable-round pairs never move). A residual_candidates of 0 turns the residual round off.
    """
    with _collector_paused():
        return _match_cohort(mentees, tuple(mentors), policy, exclusions)


def _match_cohort(
    mentees: Iterable[Mentee], mentors: tuple[Mentor, ...], policy: Policy, exclusions: Exclusions
) -> CohortResult:
    index = MentorIndex(mentors)
    builder = ListBuilder(index, policy, exclusions)
    cohort = MenteeArrays(mentees, index)
    lists = builder.build(cohort, policy.fallback_candidates)
    assigned = assign(lists, index.available)
    stable = _outcome("stable", lists, cohort, index.available, assigned, policy)
    remaining = index.available - np.bincount(assigned[assigned >= 0], minlength=len(index))
    residual_index = index.with_available(remaining)
    residual_builder = builder.with_index(residual_index)
    left_over = cohort.subset(np.flatnonzero(assigned < 0), residual_index)
    residual_lists = residual_builder.build(left_over, policy.residual_candidates)
    residual_assigned = assign(residual_lists, remaining)
    if policy.residual_candidates > 0:  # 0 turns the residual round off, completion included
        residual_assigned = complete(residual_lists, residual_builder, left_over, residual_assigned)
        residual_lists = with_assigned_on_lists(residual_lists, residual_builder, left_over, residual_assigned)
    residual = _outcome("residual", residual_lists, left_over, remaining, residual_assigned, policy)
    return CohortResult(stable, residual)


def rolling_match(
    mentee: Mentee,
    mentors: Iterable[Mentor],
    policy: Policy = DEFAULT_POLICY,
    exclusions: Exclusions = NO_EXCLUSIONS,
) -> Proposal | None:
    """Her best available mentor now (first valid choice, else best score), leaving every existing pair alone.

    Mentors' loads must include current matches and pending proposals, so only places still free are used.
    """
    index = MentorIndex(mentors, postings=False)  # one mentee: score everyone eligible, no postings needed
    builder = ListBuilder(index, policy, exclusions)
    her = MenteeArrays([mentee], index)
    choices, ranks, skipped = builder.choices(her, builder.excluded_keys(her))
    if choices.shape[1] and choices[0, 0] >= 0:
        return explain("rolling", mentee, index.mentors[int(choices[0, 0])], policy, int(ranks[0, 0]), skipped[0])
    rows = np.zeros(1, dtype=np.int64)
    free = np.flatnonzero(index.available > 0)[None, :]
    candidates = builder.usable(her, rows, free, choices, builder.excluded_keys(her))
    scores = builder.score(her, rows, candidates, builder.fit_row(mentee.seniority, named=False))[0]
    if not len(scores) or not np.isfinite(scores.max()):
        return None
    best = int(candidates[0, int(np.argmax(scores))])  # the first of the best: ties go to the lowest mentor id
    return explain("rolling", mentee, index.mentors[best], policy, None, skipped[0])
