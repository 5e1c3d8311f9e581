"""How good a round's matching is: choice ranks, fallbacks, stability, concentration, fairness by group."""

import itertools
import math
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from aimms_matching.domain.engine.candidates import NOT_NAMED, RankedLists
from aimms_matching.domain.engine.model import Mentee, Proposal, Round

TOP_SHARE_OF_MENTORS = 0.10


@dataclass(frozen=True, slots=True)
class GroupRates:
    """Matching outcomes of one group of mentees (an institution or a seniority level)."""

    mentees: int
    matched: int
    first_choice: int

    @property
    def match_rate(self) -> float:
        """Share of the group's mentees given a mentor."""
        return self.matched / self.mentees if self.mentees else 0.0

    @property
    def first_choice_rate(self) -> float:
        """Share of the group's mentees given their first choice."""
        return self.first_choice / self.mentees if self.mentees else 0.0

    def as_dict(self) -> dict[str, float | int]:
        """JSON-ready figures."""
        return {
            "mentees": self.mentees,
            "matched": self.matched,
            "first_choice": self.first_choice,
            "match_rate": self.match_rate,
            "first_choice_rate": self.first_choice_rate,
        }


@dataclass(frozen=True, slots=True)
class RoundQuality:
    """A round's quality report. Rates are fractions (0..1) of the mentees in the round."""

    round: Round
    mentees: int
    matched: int
    first_choice_rate: float
    any_choice_rate: float
    rank_profile: dict[str, int]  # choice_1, choice_2, choice_3, fallback, unmatched
    fallback_reasons: dict[str, int]
    blocking_pairs: int
    top_decile_choice_share: float  # of all named choices, the share naming the most-requested 10% of mentors
    by_institution: dict[str, GroupRates]
    by_seniority: dict[int, GroupRates]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready report (group keys as strings)."""
        return {
            "round": self.round,
            "mentees": self.mentees,
            "matched": self.matched,
            "first_choice_rate": self.first_choice_rate,
            "any_choice_rate": self.any_choice_rate,
            "rank_profile": dict(self.rank_profile),
            "fallback_reasons": dict(self.fallback_reasons),
            "blocking_pairs": self.blocking_pairs,
            "top_decile_choice_share": self.top_decile_choice_share,
            "by_institution": {key: rates.as_dict() for key, rates in sorted(self.by_institution.items())},
            "by_seniority": {str(key): rates.as_dict() for key, rates in sorted(self.by_seniority.items())},
        }


def count_blocking_pairs(
    lists: RankedLists, capacities: Sequence[int] | np.ndarray, assigned: Sequence[int] | np.ndarray
) -> int:
    """Pairs (mentee, mentor) where she prefers him to her assignment and he has room or holds someone below her.

    Recomputed from the assignment alone, so it checks the deferred acceptance rather than trusting it.
    """
    assigned = np.asarray(assigned, dtype=np.int64)
    places = lists.places_of(assigned)  # ValueError if assigned off her list: a broken matching
    return blocking_pairs(lists, np.asarray(capacities, dtype=np.int64), assigned, places)


def blocking_pairs(lists: RankedLists, capacities: np.ndarray, assigned: np.ndarray, places: np.ndarray) -> int:
    """count_blocking_pairs, given each mentee's place of her mentor on her list (RankedLists.places_of)."""
    matched = np.flatnonzero(assigned >= 0)
    held = np.bincount(assigned[matched], minlength=len(capacities))
    if np.any(held > capacities):
        raise ValueError("a mentor holds more mentees than her capacity")
    worst = np.full(len(capacities), -1, dtype=np.int64)  # the priority of the worst mentee each mentor holds
    np.maximum.at(worst, assigned[matched], lists.priorities(lists.starts[matched] + places[matched], matched))
    owners = lists.owners()
    before = np.flatnonzero(np.arange(len(owners)) - lists.starts[owners] < places[owners])  # she prefers these
    mentors, keys = lists.mentors[before], lists.priorities(before, owners[before])
    return int(np.count_nonzero((held[mentors] < capacities[mentors]) | (keys < worst[mentors])))


def top_decile_choice_share(mentees: Iterable[Mentee], mentor_ids: Collection[str]) -> float:
    """Share of all choices naming a mentor that name the most-requested 10% of mentors (how concentrated demand is)."""
    requests = Counter(mentor_id for mentee in mentees for mentor_id in mentee.choices if mentor_id in mentor_ids)
    total = sum(requests.values())
    if not total:
        return 0.0
    top = math.ceil(len(mentor_ids) * TOP_SHARE_OF_MENTORS)
    return sum(count for _, count in requests.most_common(top)) / total


def _rates(groups: Mapping[object, list[Proposal | None]]) -> dict:
    return {
        key: GroupRates(
            mentees=len(outcomes),
            matched=sum(1 for p in outcomes if p is not None),
            first_choice=sum(1 for p in outcomes if p is not None and p.choice_rank == 1),
        )
        for key, outcomes in groups.items()
    }


def assess_round(
    round_name: Round,
    mentees: Sequence[Mentee],
    proposals: Mapping[str, Proposal],
    blocking_pairs: int,
    mentor_ids: Collection[str],
) -> RoundQuality:
    """The quality report of one round from its mentees, its proposals by mentee id and its blocking pairs."""
    outcomes = [proposals.get(mentee.participant_id) for mentee in mentees]
    profile = Counter(
        "unmatched" if p is None else ("fallback" if p.choice_rank is None else f"choice_{p.choice_rank}")
        for p in outcomes
    )
    by_institution: dict[str, list[Proposal | None]] = {}
    by_seniority: dict[int, list[Proposal | None]] = {}
    for mentee, outcome in zip(mentees, outcomes, strict=True):
        by_institution.setdefault(mentee.institution_id, []).append(outcome)
        by_seniority.setdefault(mentee.seniority, []).append(outcome)
    count = len(mentees)
    matched = count - profile["unmatched"]
    named_matches = profile["choice_1"] + profile["choice_2"] + profile["choice_3"]
    return RoundQuality(
        round=round_name,
        mentees=count,
        matched=matched,
        first_choice_rate=profile["choice_1"] / count if count else 0.0,
        any_choice_rate=named_matches / count if count else 0.0,
        rank_profile={key: profile[key] for key in ("choice_1", "choice_2", "choice_3", "fallback", "unmatched")},
        fallback_reasons=dict(sorted(Counter(p.fallback_reason for p in outcomes if p and p.fallback_reason).items())),
        blocking_pairs=blocking_pairs,
        top_decile_choice_share=top_decile_choice_share(mentees, mentor_ids),
        by_institution=_rates(by_institution),
        by_seniority=_rates(by_seniority),
    )


def choice_share(mentees: Sequence[Mentee], position: Mapping[str, int], mentor_count: int) -> float:
    """top_decile_choice_share in bulk: choices counted per mentor position."""
    named = [p for p in map(position.get, itertools.chain.from_iterable(m.choices for m in mentees)) if p is not None]
    if not named:
        return 0.0
    requests = np.sort(np.bincount(np.array(named, dtype=np.int64), minlength=mentor_count))[::-1]
    return int(requests[: math.ceil(mentor_count * TOP_SHARE_OF_MENTORS)].sum()) / len(named)


def _group_rates(keys: list, matched: np.ndarray, first: np.ndarray) -> dict:
    """GroupRates per key, in order of first appearance (as assess_round groups them)."""
    code = {key: i for i, key in enumerate(dict.fromkeys(keys))}
    codes = np.array([code[key] for key in keys], dtype=np.int64)
    size = len(code)
    counts = np.bincount(codes, minlength=size).tolist()
    hits = np.bincount(codes, weights=matched, minlength=size).astype(np.int64).tolist()
    firsts = np.bincount(codes, weights=first, minlength=size).astype(np.int64).tolist()
    return {key: GroupRates(counts[i], hits[i], firsts[i]) for key, i in code.items()}


def round_quality(
    round_name: Round,
    lists: RankedLists,
    assigned: np.ndarray,
    places: np.ndarray,
    fallback_reasons: Mapping[str, int],
    blocking_pairs: int,
) -> RoundQuality:
    """assess_round from a round's arrays: the same report, without a Python object per mentee."""
    mentees = lists.mentees
    count = len(mentees)
    matched = assigned >= 0
    rows = np.flatnonzero(matched)
    ranks = np.zeros(count, dtype=np.int64)
    ranks[rows] = lists.ranks[lists.starts[rows] + places[rows]]
    profile = {f"choice_{rank}": int(np.count_nonzero(ranks == rank)) for rank in (1, 2, 3)}
    profile["fallback"] = int(np.count_nonzero(ranks == NOT_NAMED))
    profile["unmatched"] = count - len(rows)
    first = ranks == 1
    named_matches = profile["choice_1"] + profile["choice_2"] + profile["choice_3"]
    return RoundQuality(
        round=round_name,
        mentees=count,
        matched=len(rows),
        first_choice_rate=profile["choice_1"] / count if count else 0.0,
        any_choice_rate=named_matches / count if count else 0.0,
        rank_profile=profile,
        fallback_reasons=dict(sorted((k, v) for k, v in fallback_reasons.items() if v)),
        blocking_pairs=blocking_pairs,
        top_decile_choice_share=choice_share(mentees, lists.index.position, len(lists.index)),
        by_institution=_group_rates([m.institution_id for m in mentees], matched, first),
        by_seniority=_group_rates([m.seniority for m in mentees], matched, first),
    )
