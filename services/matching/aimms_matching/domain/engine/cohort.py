"""A cohort round (stable, then residual) and the rolling match of one mentee, with explained proposals."""

import gc
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from aimms_matching.domain.engine.candidates import ListBuilder, MentorIndex, RankedLists, build_ranked_lists
from aimms_matching.domain.engine.deferred_acceptance import UNMATCHED, deferred_acceptance
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
from aimms_matching.domain.engine.quality import RoundQuality, assess_round, count_blocking_pairs
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
    """The stable round, then the residual round for those it left unmatched."""

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


def _run_round(round_name: Round, lists: RankedLists, policy: Policy) -> tuple[RoundOutcome, list[int]]:
    """Deferred acceptance over the lists, then proposals and quality; also the assignment by position."""
    capacities = lists.index.available
    assigned = deferred_acceptance(lists, capacities)
    proposals: list[Proposal] = []
    unmatched: list[str] = []
    for position, (mentee, mentor) in enumerate(zip(lists.mentees, assigned, strict=True)):
        if mentor == UNMATCHED:
            unmatched.append(mentee.participant_id)
            continue
        rank = lists.choice_rank(position, lists.entries[position].index(mentor))
        proposals.append(
            explain(round_name, mentee, lists.index.mentors[mentor], policy, rank, lists.skipped[position])
        )
    quality = assess_round(
        round_name,
        lists.mentees,
        {p.mentee_id: p for p in proposals},
        count_blocking_pairs(lists, capacities, assigned),
        lists.index.position,
    )
    outcome = RoundOutcome(round_name, tuple(proposals), tuple(unmatched), quality, lists, tuple(capacities))
    return outcome, assigned


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
    """Propose pairs for a cohort: a mentee-optimal stable round, then a residual round for those left over."""
    with _collector_paused():
        return _match_cohort(mentees, tuple(mentors), policy, exclusions)


def _match_cohort(
    mentees: Iterable[Mentee], mentors: tuple[Mentor, ...], policy: Policy, exclusions: Exclusions
) -> CohortResult:
    index = MentorIndex(mentors)
    stable, assigned = _run_round(
        "stable", build_ranked_lists(mentees, index, policy, exclusions, policy.fallback_candidates), policy
    )
    remaining = list(index.available)
    for mentor in assigned:
        if mentor != UNMATCHED:
            remaining[mentor] -= 1
    left_over = [mentee for mentee, mentor in zip(stable.lists.mentees, assigned, strict=True) if mentor == UNMATCHED]
    residual_index = index.with_available(remaining)
    residual, _ = _run_round(
        "residual",
        build_ranked_lists(left_over, residual_index, policy, exclusions, policy.residual_candidates),
        policy,
    )
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
    valid, ranks, skipped = builder.choices(mentee)
    if valid:
        return explain("rolling", mentee, index.mentors[valid[0]], policy, ranks[0], skipped)
    unwanted = builder.unwanted(mentee)
    fit_terms = builder.fit_terms(mentee.seniority)
    candidates = [
        mentor
        for mentor, (level, *_) in enumerate(index.rows)
        if index.available[mentor] > 0 and level in fit_terms and mentor not in unwanted
    ]
    if not candidates:
        return None
    _, best = min(
        zip((-s for s in builder.score_all(builder.context(mentee), candidates, fit_terms)), candidates, strict=True)
    )
    return explain("rolling", mentee, index.mentors[best], policy, None, skipped)
