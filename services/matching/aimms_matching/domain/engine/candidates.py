"""Preference lists without comparing every mentee with every mentor.

Mentors are indexed by seniority level, and within a level by interest tag, pair of tags, background, and
background with tag. A mentee's candidate pool is drawn from her eligible levels, best seniority fit first, most
promising source first: mentors sharing her background (and a tag) when the programme weighs background at
least as much as two shared tags can add, mentors sharing two or more of her tags, mentors sharing one tag;
topped up from whole levels when that is still fewer than needed. Only the pool is scored (exactly), so the
cost per mentee is bounded by the pool size, not by the number of mentors. At scale the pool is a bounded
sample of those reachable mentors; when a mentee has at most SCORE_ALL_UP_TO eligible mentors, all are scored
and her list is exactly the top by score.
"""

import bisect
import copy
import itertools
import math
import zlib
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from aimms_matching.domain.engine.model import (
    ListEntry,
    Mentee,
    Mentor,
    Policy,
    PreferenceList,
    SkippedChoice,
    SkipReason,
)
from aimms_matching.domain.engine.scoring import seniority_fit, seniority_gap

NOT_NAMED = 4  # mentor priority position of a mentee who did not name her
POOL_SLACK = 1.25  # score this many times the places to fill, so the best of the pool rise to the list
SCORE_ALL_UP_TO = 200  # with no more eligible mentors than this (or than the pool), score them all: exact lists
MAX_PAIR_TAGS = 10  # index tag pairs among at most this many tags (by name) per person, to bound index size

# level, tag bitmask, tag count, institution code, background code, pathway code
_MentorRow = tuple[int, int, int, int, int, int]
NO_CODE = -1  # a mentor without a background or pathway, or a mentee's institution no mentor belongs to
NEVER_SHARED = -2  # never equal to a mentor's code: her absent background or pathway is never "shared"


class _LevelPostings:
    """Available mentors of one seniority level, in mentor order, by tag, tag pair and background.

    Postings are int arrays: compact (good for the cache on large rounds) and invisible to the garbage collector.
    """

    __slots__ = ("everyone", "by_tag", "by_pair", "by_background", "by_background_tag")

    def __init__(self) -> None:
        self.everyone = array("i")
        self.by_tag: dict[int, array] = {}
        self.by_pair: dict[int, array] = {}
        self.by_background: dict[int, array] = {}
        self.by_background_tag: dict[int, array] = {}


class MentorIndex:
    """Mentors in id order (position = tie-break rank), compact rows for scoring, and postings for candidates.

    Tags become bits of one int per mentor, and institutions and backgrounds small int codes, so scoring a
    candidate reads one small tuple and one int instead of a set and strings scattered over memory.
    """

    def __init__(
        self, mentors: Iterable[Mentor], available: Mapping[str, int] | None = None, postings: bool = True
    ) -> None:
        ordered = sorted(mentors, key=lambda m: m.participant_id)
        self.mentors: tuple[Mentor, ...] = tuple(ordered)
        self.ids: tuple[str, ...] = tuple(m.participant_id for m in ordered)
        if len(set(self.ids)) != len(self.ids):
            raise ValueError("mentor ids must be unique")
        self.position: dict[str, int] = {mentor_id: i for i, mentor_id in enumerate(self.ids)}
        self.tag_code: dict[str, int] = {
            tag: i for i, tag in enumerate(sorted({t for m in ordered for t in m.interests}))
        }
        self.institution_code: dict[str, int] = {
            name: i for i, name in enumerate(sorted({m.institution_id for m in ordered}))
        }
        self.background_code: dict[str, int] = {
            token: i for i, token in enumerate(sorted({m.background for m in ordered if m.background is not None}))
        }
        self.pathway_code: dict[str, int] = {
            name: i for i, name in enumerate(sorted({m.pathway for m in ordered if m.pathway is not None}))
        }
        self.codes: list[list[int]] = [self.tag_codes(m.interests) for m in ordered]
        self.rows: list[_MentorRow] = [
            (
                m.seniority,
                sum(1 << code for code in codes),
                len(m.interests),
                self.institution_code[m.institution_id],
                NO_CODE if m.background is None else self.background_code[m.background],
                NO_CODE if m.pathway is None else self.pathway_code[m.pathway],
            )
            for m, codes in zip(ordered, self.codes, strict=True)
        ]
        self.seniority_levels: tuple[int, ...] = tuple(sorted({m.seniority for m in ordered}))
        self.available: list[int] = [
            m.available if available is None else available.get(m.participant_id, 0) for m in ordered
        ]
        self.levels: dict[int, _LevelPostings] = self._postings() if postings else {}

    def tag_codes(self, tags: Iterable[str]) -> list[int]:
        """The codes of the tags some mentor has, in tag-name order (other tags can only lower overlap)."""
        return sorted(code for code in map(self.tag_code.get, tags) if code is not None)

    def pair_keys(self, codes: Sequence[int]) -> list[int]:
        """Keys of the tag pairs among the (at most MAX_PAIR_TAGS) first tags by name."""
        width = len(self.tag_code)
        return [first * width + second for first, second in itertools.combinations(codes[:MAX_PAIR_TAGS], 2)]

    def background_tag_keys(self, background: int, codes: Sequence[int]) -> list[int]:
        """Keys of a background with each of the tags."""
        width = len(self.tag_code)
        return [background * width + code for code in codes]

    def with_available(self, available: Sequence[int]) -> "MentorIndex":
        """The same mentors with other free places (e.g. what a round left), postings rebuilt."""
        other = copy.copy(self)
        other.available = list(available)
        other.levels = other._postings()
        return other

    def _postings(self) -> dict[int, _LevelPostings]:
        levels: dict[int, _LevelPostings] = {}
        self.level_places: dict[int, int] = {}
        for i, (codes, (level, _, _, _, background, _)) in enumerate(zip(self.codes, self.rows, strict=True)):
            if self.available[i] <= 0:
                continue  # a full mentor is never a candidate, so keep her out of the postings
            self.level_places[level] = self.level_places.get(level, 0) + self.available[i]
            postings = levels.get(level)
            if postings is None:
                postings = levels[level] = _LevelPostings()
            postings.everyone.append(i)
            for code in codes:
                postings.by_tag.setdefault(code, array("i")).append(i)
            for key in self.pair_keys(codes):
                postings.by_pair.setdefault(key, array("i")).append(i)
            if background != NO_CODE:
                postings.by_background.setdefault(background, array("i")).append(i)
                for key in self.background_tag_keys(background, codes):
                    postings.by_background_tag.setdefault(key, array("i")).append(i)
        return levels


@dataclass(frozen=True, slots=True)
class RankedLists:
    """Every mentee's preference list in compact form (mentor indices and scores, choices first)."""

    mentees: tuple[Mentee, ...]  # in id order: position = tie-break rank in mentor priority
    index: MentorIndex
    entries: tuple[array, ...]  # mentor positions, best first
    scores: tuple[array, ...]
    choice_ranks: tuple[bytes, ...]  # named rank (1-3) of each valid choice heading the list; bytes: compact
    skipped: tuple[tuple[SkippedChoice, ...], ...]

    def choice_rank(self, mentee: int, place: int) -> int | None:
        """The rank she named the mentor at the given place of her list, or None for a fallback."""
        ranks = self.choice_ranks[mentee]
        return ranks[place] if place < len(ranks) else None

    def priority_key(self, mentee: int, place: int) -> tuple[int, float, int]:
        """Mentor priority of the mentee at that place of her list: smaller is better."""
        ranks = self.choice_ranks[mentee]
        return (ranks[place] if place < len(ranks) else NOT_NAMED, -self.scores[mentee][place], mentee)

    def position_of(self, mentee_id: str) -> int:
        """Her position among the mentees (they are in id order)."""
        position = bisect.bisect_left(self.mentees, mentee_id, key=lambda m: m.participant_id)
        if position == len(self.mentees) or self.mentees[position].participant_id != mentee_id:
            raise KeyError(mentee_id)
        return position

    def preference_list(self, mentee: int) -> PreferenceList:
        """The readable list of one mentee, by her position."""
        ids = self.index.ids
        entries = tuple(
            ListEntry(ids[mentor], score, self.choice_rank(mentee, place))
            for place, (mentor, score) in enumerate(zip(self.entries[mentee], self.scores[mentee], strict=True))
        )
        return PreferenceList(self.mentees[mentee].participant_id, entries, self.skipped[mentee])

    def preference_lists(self) -> dict[str, PreferenceList]:
        """Every readable list by mentee id (for inspection and tests; costly on large rounds)."""
        return {mentee.participant_id: self.preference_list(i) for i, mentee in enumerate(self.mentees)}


def mentor_priority_key(choice_rank: int | None, score: float, mentee_id: str) -> tuple[int, float, str]:
    """A mentor ranks mentees by the rank they named her at, then by score, then by id: smaller is better."""
    return (choice_rank if choice_rank is not None else NOT_NAMED, -score, mentee_id)


def mentor_priorities(lists: Mapping[str, PreferenceList]) -> dict[str, tuple[str, ...]]:
    """Each listed mentor's strict order over the mentees who list her, best first."""
    keyed: dict[str, list[tuple[tuple[int, float, str], str]]] = {}
    for mentee_id, preference in lists.items():
        for entry in preference.entries:
            key = mentor_priority_key(entry.choice_rank, entry.score, mentee_id)
            keyed.setdefault(entry.mentor_id, []).append((key, mentee_id))
    return {mentor_id: tuple(mentee for _, mentee in sorted(ranked)) for mentor_id, ranked in keyed.items()}


# tag mask, tag count, institution, background, pathway, tag codes
_MenteeContext = tuple[int, int, int, int, int, list[int]]


def _take(posting: array | None, quota: int, offset: int, seen: set[int], pool: list[int]) -> None:
    """Add up to `quota` unseen mentors from a posting, starting at a per-mentee offset.

    The offset spreads mentees who share tags over equally suitable mentors instead of piling them all on the
    lowest ids, which would leave those mentors flooded and the rest of the posting unused.
    """
    if not posting or quota <= 0:
        return
    size = len(posting)
    if size <= quota:  # all of it fits: no need to rotate
        for mentor in posting:
            if mentor not in seen:
                seen.add(mentor)
                pool.append(mentor)
        return
    start = offset % size
    for step in range(start, start + size):
        mentor = posting[step if step < size else step - size]
        if mentor not in seen:
            seen.add(mentor)
            pool.append(mentor)
            quota -= 1
            if quota == 0:
                return


def _take_spread(postings: Iterable[array | None], target: int, offset: int, seen: set[int], pool: list[int]) -> None:
    """Fill the pool toward `target` from several postings, shortest first, each taking a fair share of what is left.

    Shortest first, so what a short posting cannot fill passes to the longer ones.
    """
    ordered = sorted(filter(None, postings), key=len)
    for left, posting in zip(range(len(ordered), 0, -1), ordered, strict=True):
        _take(posting, math.ceil((target - len(pool)) / left), offset, seen, pool)


class ListBuilder:
    """Builds preference lists for mentees against one MentorIndex under one policy."""

    def __init__(self, index: MentorIndex, policy: Policy, exclusions: Iterable[tuple[str, str]]) -> None:
        self.index = index
        self.policy = policy
        self.excluded: dict[str, set[str]] = {}
        for mentee_id, mentor_id in exclusions:
            self.excluded.setdefault(mentee_id, set()).add(mentor_id)
        self._plans: dict[int, tuple[tuple[int, float], ...]] = {}
        self._fit_terms: dict[int, dict[int, float]] = {}
        self._choice_fit_terms: dict[int, dict[int, float]] = {}
        self._eligible: dict[int, array] = {}

    def level_plan(self, seniority: int) -> tuple[tuple[int, float], ...]:
        """Eligible levels for a mentee of this seniority with their weighted fit, best fit (then smaller gap) first."""
        plan = self._plans.get(seniority)
        if plan is None:
            policy = self.policy
            gaps = {
                level: seniority_gap(seniority, level, policy.mentor_more_senior)
                for level in self.index.seniority_levels
            }
            eligible = sorted((abs(gap - policy.preferred_gap), gap, level) for level, gap in gaps.items() if gap >= 1)
            plan = tuple(
                (level, policy.weights.seniority * seniority_fit(gap, policy.preferred_gap))
                for _, gap, level in eligible
            )
            self._plans[seniority] = plan
        return plan

    def fit_terms(self, seniority: int) -> dict[int, float]:
        """Weighted seniority fit by eligible mentor level for a mentee of this seniority."""
        terms = self._fit_terms.get(seniority)
        if terms is None:
            terms = self._fit_terms[seniority] = dict(self.level_plan(seniority))
        return terms

    def eligible(self, seniority: int) -> array:
        """Every available mentor who may mentor a mentee of this seniority, best seniority fit first."""
        everyone = self._eligible.get(seniority)
        if everyone is None:
            everyone = array("i")
            for level, _ in self.level_plan(seniority):
                postings = self.index.levels.get(level)
                if postings is not None:
                    everyone.extend(postings.everyone)
            self._eligible[seniority] = everyone
        return everyone

    def context(self, mentee: Mentee) -> _MenteeContext:
        """What scoring needs of her, in the index's codes."""
        index = self.index
        background = NEVER_SHARED if mentee.background is None else index.background_code.get(mentee.background)
        pathway = NEVER_SHARED if mentee.pathway is None else index.pathway_code.get(mentee.pathway)
        codes = index.tag_codes(mentee.interests)
        return (
            sum(1 << code for code in codes),
            len(mentee.interests),
            index.institution_code.get(mentee.institution_id, NO_CODE),
            NEVER_SHARED if background is None else background,
            NEVER_SHARED if pathway is None else pathway,
            codes,
        )

    def score_all(
        self, context: _MenteeContext, candidates: Iterable[int], fit_terms: Mapping[int, float]
    ) -> list[float]:
        """Scores of eligible candidates, computed exactly as scoring.score_pair does (same order of additions)."""
        w = self.policy.weights
        mask, tag_count, institution, background, pathway, _ = context
        same_institution, other_institution = w.other_institution * 0.0, w.other_institution * 1.0
        no_background, shared_background = w.background * 0.0, w.background * 1.0
        other_pathway, same_pathway = w.pathway * 0.0, w.pathway * 1.0
        rows = self.index.rows
        scores = []
        for mentor in candidates:
            level, mentor_mask, mentor_tag_count, mentor_institution, mentor_background, mentor_pathway = rows[mentor]
            shared = (mask & mentor_mask).bit_count()
            overlap = shared / (tag_count + mentor_tag_count - shared) if shared else 0.0
            scores.append(
                fit_terms[level]
                + w.interests * overlap
                + (other_institution if mentor_institution != institution else same_institution)
                + (shared_background if background == mentor_background else no_background)
                + (same_pathway if pathway == mentor_pathway else other_pathway)
            )
        return scores

    def choice_fit_terms(self, seniority: int) -> dict[int, float]:
        """Weighted seniority fit for mentors she named: as for fallbacks, and 0 at levels seniority rules out."""
        terms = self._choice_fit_terms.get(seniority)
        if terms is None:
            fit, zero = self.fit_terms(seniority), self.policy.weights.seniority * 0.0
            terms = self._choice_fit_terms[seniority] = {
                level: fit.get(level, zero) for level in self.index.seniority_levels
            }
        return terms

    def choices(self, mentee: Mentee) -> tuple[list[int], list[int], list[SkippedChoice]]:
        """Her valid choices in her order (positions, named ranks), and the skipped ones with the reason."""
        index, excluded = self.index, self.excluded.get(mentee.participant_id, ())
        eligible_levels = self.fit_terms(mentee.seniority)
        valid: list[int] = []
        ranks: list[int] = []
        skipped: list[SkippedChoice] = []
        named: set[str] = set()
        for rank, mentor_id in enumerate(mentee.choices, start=1):
            mentor = index.position.get(mentor_id)
            reason: SkipReason | None = None
            if mentor_id in named:
                reason = "duplicate"
            elif mentor_id == mentee.participant_id:
                reason = "self"
            elif mentor is None:
                reason = "unknown"
            elif mentor_id in excluded:
                reason = "excluded"
            elif self.policy.choices_by_seniority and index.rows[mentor][0] not in eligible_levels:
                reason = "ineligible"
            elif index.available[mentor] <= 0:
                reason = "full"
            named.add(mentor_id)
            if reason is None and mentor is not None:
                valid.append(mentor)
                ranks.append(rank)
            else:
                skipped.append(SkippedChoice(mentor_id, rank, reason or "unknown"))
        return valid, ranks, skipped

    def unwanted(self, mentee: Mentee) -> set[int]:
        """Mentor positions never to put on her list: herself (role "both") and her exclusions."""
        position = self.index.position
        unwanted = {position[name] for name in self.excluded.get(mentee.participant_id, ()) if name in position}
        if mentee.participant_id in position:
            unwanted.add(position[mentee.participant_id])
        return unwanted

    def pool(self, mentee: Mentee, context: _MenteeContext, target: int, seen: set[int]) -> list[int]:
        """Candidates for her fallback places, most promising sources first, about `target` of them."""
        index, plan = self.index, self.level_plan(mentee.seniority)
        pool: list[int] = []
        everyone = self.eligible(mentee.seniority)
        if len(everyone) <= max(target, SCORE_ALL_UP_TO):  # few enough to score them all
            _take(everyone, len(everyone), 0, seen, pool)
            return pool
        _, tag_count, _, background, _, tags = context
        weights = self.policy.weights
        use_background = background >= 0 and weights.background > 0
        # Background first when sharing it is worth at least what two shared tags can add at best (overlap 2/n).
        background_first = use_background and weights.background >= weights.interests * 2 / max(tag_count, 2)
        pairs = index.pair_keys(tags)
        background_tags = index.background_tag_keys(background, tags) if background_first else []
        offset = zlib.crc32(mentee.participant_id.encode())
        # Each eligible level supplies candidates in proportion to its free places, so candidates are where the
        # places are: filling the pool from the best-fitting level alone leaves other levels' places on no list.
        places = index.level_places
        eligible_places = sum(places.get(level, 0) for level, _ in plan)
        for level, _ in plan:
            postings = index.levels.get(level)
            if postings is None:
                continue  # nobody at this level has a free place
            goal = min(target, len(pool) + math.ceil(target * places[level] / eligible_places))
            if background_first:  # her background and a tag, then her background alone
                _take_spread(map(postings.by_background_tag.get, background_tags), goal, offset, seen, pool)
                _take(postings.by_background.get(background), goal - len(pool), offset, seen, pool)
                if len(pool) >= goal:
                    continue
            _take_spread(map(postings.by_pair.get, pairs), goal, offset, seen, pool)  # two or more shared tags
            if len(pool) >= goal:
                continue
            if use_background and not background_first:
                quota = math.ceil((goal - len(pool)) / 2)  # leave half of what is left to single shared tags
                _take(postings.by_background.get(background), quota, offset, seen, pool)
            _take_spread(map(postings.by_tag.get, tags), goal, offset, seen, pool)
            _take(postings.everyone, goal - len(pool), offset, seen, pool)  # too few through her tags
        for level, _ in plan:  # what rounding and exclusions left unfilled
            postings = index.levels.get(level)
            _take(postings.everyone if postings else None, target - len(pool), offset, seen, pool)
            if len(pool) >= target:
                break
        return pool

    def build(self, mentee: Mentee, fallback_places: int) -> tuple[array, array, bytes, tuple[SkippedChoice, ...]]:
        """Her list: valid choices in her order, then up to `fallback_places` others by score (ties by mentor id)."""
        valid, ranks, skipped = self.choices(mentee) if mentee.choices else ([], [], [])
        context = self.context(mentee)
        fit_terms = self.fit_terms(mentee.seniority)
        target = math.ceil(fallback_places * POOL_SLACK) if fallback_places > 0 else 0
        seen = self.unwanted(mentee)
        seen.update(valid)
        pool = self.pool(mentee, context, target, seen) if target else []
        pool.sort()  # mentor id order, kept for equal scores by the stable sort below
        pool_scores = self.score_all(context, pool, fit_terms)
        best = sorted(range(len(pool)), key=pool_scores.__getitem__, reverse=True)[:fallback_places]
        entries = array("i", valid)
        entries.extend([pool[i] for i in best])
        scores = array("d", self.score_all(context, valid, self.choice_fit_terms(mentee.seniority)))
        scores.extend([pool_scores[i] for i in best])
        return entries, scores, bytes(ranks), tuple(skipped)


def build_ranked_lists(
    mentees: Iterable[Mentee],
    index: MentorIndex,
    policy: Policy,
    exclusions: Iterable[tuple[str, str]],
    fallback_places: int,
) -> RankedLists:
    """Every mentee's preference list against the index's available capacity."""
    ordered = tuple(sorted(mentees, key=lambda m: m.participant_id))
    if len({m.participant_id for m in ordered}) != len(ordered):
        raise ValueError("mentee ids must be unique")
    builder = ListBuilder(index, policy, exclusions)
    built: list = [None] * len(ordered)
    # Lists are independent, so build them grouped by seniority and background: mentees in a group draw on the
    # same postings and mentor rows, which then stay in the processor's cache. The result is the same in any order.
    by_group = sorted(
        range(len(ordered)),
        key=lambda i: (ordered[i].seniority, ordered[i].background or "", min(ordered[i].interests, default="")),
    )
    for position in by_group:
        built[position] = builder.build(ordered[position], fallback_places)
    return RankedLists(
        mentees=ordered,
        index=index,
        entries=tuple(b[0] for b in built),
        scores=tuple(b[1] for b in built),
        choice_ranks=tuple(b[2] for b in built),
        skipped=tuple(b[3] for b in built),
    )
