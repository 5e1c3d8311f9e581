"""Preference lists without comparing every mentee with every mentor, computed in bulk with numpy.

Mentors with free places are indexed by seniority level, and within a level by interest tag, pair of tags,
background, and background with tag (postings). A mentee's candidates at each eligible level are a window of
each posting she has a key for, rotated by a per-mentee offset so that mentees sharing tags spread over equally
suitable mentors, plus a window of the whole level. Candidates are scored exactly, and each eligible level keeps
its best in proportion to its free places, so a crowded best-fit level does not hide places further up; her list
is the best of that pool by score (ties by mentor id). When a mentee has at most SCORE_ALL_UP_TO eligible mentors
(or no more than the pool), all are scored and her list is exactly the top by score.

Mentees are processed in blocks of rows: every step is a numpy operation on a block, and a block is small enough
that its temporaries are reused from the allocator instead of being mapped (and page-faulted) afresh.
"""

import bisect
import copy
import functools
import itertools
import math
import os
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from operator import attrgetter

import numpy as np

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
BLOCK_CELLS = 1 << 18  # candidate cells per block of rows: temporaries of a few MiB, reused between blocks
WORKERS = min(2, os.cpu_count() or 1)  # threads building lists: blocks of rows are independent

NO_CODE = -1  # a mentor without a background or pathway, or a mentee's institution no mentor belongs to
NEVER_SHARED = -2  # never equal to a mentor's code: her absent background or pathway is never "shared"
NO_MENTOR = -1  # an empty candidate cell
SKIP_REASONS: dict[int, SkipReason] = {
    1: "duplicate",
    2: "self",
    3: "unknown",
    4: "excluded",
    5: "ineligible",
    6: "full",
}


def _codes(values: Iterable[object], code: Mapping[object, int], missing: int) -> np.ndarray:
    """Each value's code, `missing` for a value without one (None included)."""
    return np.fromiter(map(code.get, values, itertools.repeat(missing)), dtype=np.int64)


def _tag_rows(interests: Sequence[frozenset[str]], tag_code: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """(row, code) of every known tag, sorted by row then code (codes follow tag names)."""
    counts = np.fromiter(map(len, interests), dtype=np.int64, count=len(interests))
    tags = itertools.chain.from_iterable(interests)
    codes = np.fromiter(map(tag_code.get, tags, itertools.repeat(-1)), dtype=np.int64, count=int(counts.sum()))
    rows = np.repeat(np.arange(len(interests), dtype=np.int64), counts)
    known = codes >= 0
    rows, codes = rows[known], codes[known]
    order = np.argsort(rows * max(len(tag_code), 1) + codes, kind="stable")
    return rows[order], codes[order]


def _masks(rows: np.ndarray, codes: np.ndarray, count: int, words: int) -> np.ndarray:
    """One bit per known tag, `words` 64-bit words per person."""
    masks = np.zeros((count, words), dtype=np.uint64)
    np.bitwise_or.at(masks, (rows, codes >> 6), np.left_shift(np.uint64(1), (codes & 63).astype(np.uint64)))
    return masks


def _slots(rows: np.ndarray, values: np.ndarray, count: int) -> np.ndarray:
    """Values grouped by row (rows sorted) into a left-packed (count, widest) array, padded with -1."""
    lengths = np.bincount(rows, minlength=count)
    width = int(lengths.max(initial=0))
    slots = np.full((count, width), -1, dtype=np.int64)
    if len(rows):
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        slots[rows, np.arange(len(rows)) - starts[rows]] = values
    return slots


def _pair_slots(tag_slots: np.ndarray, width: int) -> np.ndarray:
    """Keys (first * width + second) of the tag pairs among each row's first MAX_PAIR_TAGS tags, left-packed and
    -1 padded. Pairs are ordered by their second tag's place, so a row's valid pairs (both places below her tag
    count, tags being left-packed) come first without sorting."""
    tags = tag_slots[:, :MAX_PAIR_TAGS]
    combos = [(first, second) for second in range(tags.shape[1]) for first in range(second)]
    if not combos:
        return np.full((len(tags), 0), -1, dtype=np.int64)
    first, second = (np.array(side, dtype=np.int64) for side in zip(*combos, strict=True))
    a, b = tags[:, first], tags[:, second]
    return np.where((a >= 0) & (b >= 0), a * width + b, -1)


class _Postings:
    """Mentor positions grouped by an integer key below `space`, each group in position order."""

    __slots__ = ("keys", "starts", "mentors", "dense_starts", "dense_lengths")

    DENSE_UP_TO = 1 << 22  # key spaces up to this size are looked up in a table, larger ones by bisection

    def __init__(self, keys: np.ndarray, mentors: np.ndarray, space: int, ordered: bool = False) -> None:
        if not ordered:
            order = np.lexsort((mentors, keys))
            keys, mentors = keys[order], mentors[order]
        self.mentors = mentors.astype(np.int64, copy=False)
        self.keys, first = np.unique(keys, return_index=True)
        self.starts = np.append(first, len(keys)).astype(np.int64)
        self.dense_starts = self.dense_lengths = None
        if space <= self.DENSE_UP_TO:
            self.dense_starts = np.zeros(space + 1, dtype=np.int64)
            self.dense_lengths = np.zeros(space + 1, dtype=np.int64)  # the last slot answers key -1
            self.dense_starts[self.keys] = self.starts[:-1]
            self.dense_lengths[self.keys] = np.diff(self.starts)

    def keeping(self, keep: np.ndarray, space: int) -> "_Postings":
        """The postings of the mentors `keep` (a flag by position) leaves in."""
        kept = keep[self.mentors]
        keys = np.repeat(self.keys, np.diff(self.starts))
        return _Postings(keys[kept], self.mentors[kept], space, ordered=True)

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Start and length of each key's group (length 0 for a missing key or -1)."""
        if self.dense_starts is not None:
            return self.dense_starts[keys], self.dense_lengths[keys]
        if not len(self.keys):
            return np.zeros_like(keys), np.zeros_like(keys)
        at = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        found = (keys >= 0) & (self.keys[at] == keys)
        starts = self.starts[at]
        return starts, np.where(found, self.starts[at + 1] - starts, 0)

    def windows(self, keys: np.ndarray, spread: "_Spread", width: int) -> np.ndarray:
        """Per row, `width` mentors taken round-robin from the groups of the row's keys (left-packed, -1 padded),
        each group read from the row's rotating offset; NO_MENTOR where a group runs out."""
        if width <= 0 or keys.shape[1] == 0 or not len(self.keys):
            return np.full((len(keys), max(width, 0)), NO_MENTOR, dtype=np.int64)
        starts, lengths = self.lookup(keys)
        slot, step, ahead = spread.slot[:, :width], spread.step[:, :width], spread.ahead[:, :width]
        length = lengths.ravel()[slot]
        valid = step < length
        at = starts.ravel()[slot] + ahead % np.maximum(length, 1)
        return np.where(valid, self.mentors[np.where(valid, at, 0)], NO_MENTOR)


class _Spread:
    """How a block's rows take `width` cells round-robin from their keys: the key slot (flat index) and the step
    into that key's group of each cell, and the step plus the row's rotating offset."""

    __slots__ = ("slot", "step", "ahead")

    def __init__(self, keys: np.ndarray, offsets: np.ndarray, width: int) -> None:
        slots = max(keys.shape[1], 1)
        used = np.maximum((keys >= 0).sum(axis=1), 1)[:, None]
        column = np.arange(width, dtype=np.int64)[None, :]
        self.step = column // used
        self.slot = column % used + np.arange(len(keys), dtype=np.int64)[:, None] * slots
        self.ahead = offsets[:, None] + self.step


class MentorIndex:
    """Mentors in id order (position = tie-break rank), their attributes as arrays, and postings for candidates.

    Tags become bits of a few 64-bit words per mentor, institutions, backgrounds and pathways small int codes.
    Every attribute array has one more row than there are mentors: a neutral row that empty cells point to.
    Postings are built on first use (`postings` is accepted for callers that never need them, and changes nothing).
    """

    def __init__(
        self, mentors: Iterable[Mentor], available: Mapping[str, int] | None = None, postings: bool = True
    ) -> None:
        ordered = sorted(mentors, key=attrgetter("participant_id"))
        self.mentors: tuple[Mentor, ...] = tuple(ordered)
        self.ids: tuple[str, ...] = tuple(map(attrgetter("participant_id"), ordered))
        self.position: dict[str, int] = dict(zip(self.ids, range(len(self.ids)), strict=True))
        if len(self.position) != len(self.ids):
            raise ValueError("mentor ids must be unique")
        count = len(ordered)
        interests = list(map(attrgetter("interests"), ordered))
        self.tag_code: dict[str, int] = {tag: i for i, tag in enumerate(sorted(set().union(*interests)))}
        self.institution_code: dict[str, int] = {
            name: i for i, name in enumerate(sorted({m.institution_id for m in ordered}))
        }
        self.background_code: dict[str, int] = {
            token: i for i, token in enumerate(sorted({m.background for m in ordered if m.background is not None}))
        }
        self.pathway_code: dict[str, int] = {
            name: i for i, name in enumerate(sorted({m.pathway for m in ordered if m.pathway is not None}))
        }
        self.words = max(1, -(-len(self.tag_code) // 64))
        self.tag_rows, self.tag_codes = _tag_rows(interests, self.tag_code)
        self.seniority_levels: tuple[int, ...] = tuple(sorted({m.seniority for m in ordered}))
        level_index = {level: i for i, level in enumerate(self.seniority_levels)}
        # The extra last row: level -1 (no fit), no tags, codes that match nothing.
        self.level = np.append(_codes(map(attrgetter("seniority"), ordered), level_index, -1), -1)
        self.tag_count = np.append(np.fromiter(map(len, interests), dtype=np.int64, count=count), 0)
        self.masks = _masks(self.tag_rows, self.tag_codes, count + 1, self.words)
        self.mask_words = [np.ascontiguousarray(self.masks[:, word]) for word in range(self.words)]
        self.institution = np.append(
            _codes(map(attrgetter("institution_id"), ordered), self.institution_code, NO_CODE), -3
        )
        self.background = np.append(_codes(map(attrgetter("background"), ordered), self.background_code, NO_CODE), -3)
        self.pathway = np.append(_codes(map(attrgetter("pathway"), ordered), self.pathway_code, NO_CODE), -3)
        if available is None:
            free = np.fromiter(map(attrgetter("available"), ordered), dtype=np.int64, count=count)
        else:
            free = np.fromiter((max(available.get(i, 0), 0) for i in self.ids), dtype=np.int64, count=count)
        self.available: np.ndarray = free

    def __len__(self) -> int:
        return len(self.ids)

    def with_available(self, available: Sequence[int] | np.ndarray) -> "MentorIndex":
        """The same mentors with other free places (e.g. what a round left). Where nobody gained a place, the
        postings are this index's with the mentors now full left out; otherwise they are built afresh."""
        other = copy.copy(self)
        other.available = np.asarray(available, dtype=np.int64).copy()
        for name in ("postings", "level_places", "level_mentors"):
            other.__dict__.pop(name, None)
        keep = other.available > 0
        if "postings" in self.__dict__ and not np.any(keep & (self.available <= 0)):  # nobody gained a place
            spaces = self.key_spaces()
            other.postings = {name: p.keeping(keep, spaces[name]) for name, p in self.postings.items()}
        return other

    @cached_property
    def level_mentors(self) -> list[np.ndarray]:
        """Mentors with a free place, by level index, in position order."""
        free = self.available > 0
        levels = self.level[:-1]
        return [np.flatnonzero(free & (levels == i)) for i in range(len(self.seniority_levels))]

    @cached_property
    def level_places(self) -> np.ndarray:
        """Free places by level index."""
        free = np.maximum(self.available, 0)
        return np.bincount(self.level[:-1], weights=free, minlength=len(self.seniority_levels)).astype(np.int64)

    def key_spaces(self) -> dict[str, int]:
        """How many keys each kind of posting can have: (level, tag), (level, tag pair), (level, background) and
        (level, background, tag), each flattened into one integer."""
        levels = max(len(self.seniority_levels), 1)
        tags = len(self.tag_code) or 1
        backgrounds = len(self.background_code) or 1
        return {
            "tag": levels * tags,
            "pair": levels * tags * tags,
            "background": levels * backgrounds,
            "background_tag": levels * backgrounds * tags,
        }

    @cached_property
    def postings(self) -> dict[str, _Postings]:
        """Mentors with a free place by level and tag, level and tag pair, level and background, and both."""
        spaces = self.key_spaces()
        tags = len(self.tag_code) or 1
        backgrounds = len(self.background_code) or 1
        free = self.available[self.tag_rows] > 0
        rows, codes = self.tag_rows[free], self.tag_codes[free]
        level = self.level[rows]
        pairs = _pair_slots(_slots(rows, codes, len(self.ids)), tags)
        pair_rows = np.repeat(np.arange(len(self.ids), dtype=np.int64), pairs.shape[1]).reshape(pairs.shape)
        has = pairs >= 0
        mentors = np.flatnonzero((self.available > 0) & (self.background[:-1] >= 0))
        shared = self.background[rows] >= 0
        return {
            "tag": _Postings(level * tags + codes, rows, spaces["tag"]),
            "pair": _Postings(self.level[pair_rows[has]] * tags * tags + pairs[has], pair_rows[has], spaces["pair"]),
            "background": _Postings(
                self.level[mentors] * backgrounds + self.background[mentors], mentors, spaces["background"]
            ),
            "background_tag": _Postings(
                (level[shared] * backgrounds + self.background[rows][shared]) * tags + codes[shared],
                rows[shared],
                spaces["background_tag"],
            ),
        }


@dataclass(frozen=True, slots=True, eq=False)
class RankedLists:
    """Every mentee's preference list in flat arrays: hers are entries starts[i]:starts[i+1], choices first.

    `distinct` holds the distinct scores, sorted: with them, priorities() orders the entries pointing to one mentor
    as that mentor ranks the mentees (named rank, then score, higher first, then mentee position) by one integer.
    """

    mentees: tuple[Mentee, ...]  # in id order: position = tie-break rank in mentor priority
    index: MentorIndex
    starts: np.ndarray  # int64, one more than there are mentees
    mentors: np.ndarray  # int64 mentor positions, best first within each list
    scores: np.ndarray  # float64
    ranks: np.ndarray  # int8: the rank (1-3) she named the mentor at, NOT_NAMED for a fallback
    skipped: tuple[tuple[SkippedChoice, ...], ...]
    distinct: np.ndarray

    @classmethod
    def of(
        cls,
        mentees: tuple[Mentee, ...],
        index: MentorIndex,
        starts: np.ndarray,
        mentors: np.ndarray,
        scores: np.ndarray,
        ranks: np.ndarray,
        skipped: tuple[tuple[SkippedChoice, ...], ...],
    ) -> "RankedLists":
        """Lists from their flat arrays."""
        mentors, ranks = mentors.astype(np.int64, copy=False), ranks.astype(np.int8, copy=False)
        return cls(mentees, index, starts, mentors, scores, ranks, skipped, np.unique(scores))

    @property
    def priority_bound(self) -> int:
        """One more than any priority."""
        return (NOT_NAMED + 1) * max(len(self.distinct), 1) * max(len(self.mentees), 1)

    def priorities(self, entries: np.ndarray, owners: np.ndarray) -> np.ndarray:
        """Mentor priority of each entry (its owner is the mentee whose list holds it): smaller is better."""
        worse = len(self.distinct) - 1 - np.searchsorted(self.distinct, self.scores[entries])  # 0 for the best
        rank = self.ranks[entries].astype(np.int64)
        return (rank * max(len(self.distinct), 1) + worse) * max(len(self.mentees), 1) + owners

    @property
    def lengths(self) -> np.ndarray:
        """Length of each list."""
        return np.diff(self.starts)

    def owners(self) -> np.ndarray:
        """The mentee position of each entry."""
        return np.repeat(np.arange(len(self.mentees), dtype=np.int64), self.lengths)

    def entries_of(self, mentee: int) -> np.ndarray:
        """Her list as mentor positions, best first."""
        return self.mentors[self.starts[mentee] : self.starts[mentee + 1]]

    def choice_rank(self, mentee: int, place: int) -> int | None:
        """The rank she named the mentor at the given place of her list, or None for a fallback."""
        rank = int(self.ranks[self.starts[mentee] + place])
        return None if rank == NOT_NAMED else rank

    def priority_key(self, mentee: int, place: int) -> tuple[int, float, int]:
        """Mentor priority of the mentee at that place of her list: smaller is better."""
        entry = self.starts[mentee] + place
        return (int(self.ranks[entry]), -float(self.scores[entry]), mentee)

    def position_of(self, mentee_id: str) -> int:
        """Her position among the mentees (they are in id order)."""
        position = bisect.bisect_left(self.mentees, mentee_id, key=attrgetter("participant_id"))
        if position == len(self.mentees) or self.mentees[position].participant_id != mentee_id:
            raise KeyError(mentee_id)
        return position

    def places_of(self, assigned: np.ndarray) -> np.ndarray:
        """The place of each mentee's assigned mentor on her list (her list's length if unmatched).

        Raises ValueError if a mentee is assigned a mentor who is not on her list: a broken matching.
        """
        assigned = np.asarray(assigned, dtype=np.int64)
        places = self.lengths.copy()
        owners = self.owners()
        hits = np.flatnonzero(self.mentors == assigned[owners])
        hit_owners, first = np.unique(owners[hits], return_index=True)  # her earliest hit
        places[hit_owners] = hits[first] - self.starts[hit_owners]
        matched = np.flatnonzero(assigned >= 0)
        if len(np.setdiff1d(matched, hit_owners, assume_unique=True)):
            raise ValueError("a mentee is assigned a mentor who is not on her list")
        return places

    def preference_list(self, mentee: int) -> PreferenceList:
        """The readable list of one mentee, by her position."""
        ids = self.index.ids
        start, stop = int(self.starts[mentee]), int(self.starts[mentee + 1])
        entries = tuple(
            ListEntry(ids[mentor], score, None if rank == NOT_NAMED else rank)
            for mentor, score, rank in zip(
                self.mentors[start:stop].tolist(),
                self.scores[start:stop].tolist(),
                self.ranks[start:stop].tolist(),
                strict=True,
            )
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


class MenteeArrays:
    """Mentees in id order as arrays in one index's codes: what scoring and candidate windows need of them."""

    def __init__(self, mentees: Iterable[Mentee], index: MentorIndex) -> None:
        ordered = tuple(sorted(mentees, key=attrgetter("participant_id")))
        ids = list(map(attrgetter("participant_id"), ordered))
        if len(set(ids)) != len(ids):
            raise ValueError("mentee ids must be unique")
        self.mentees = ordered
        self.index = index
        count = len(ordered)
        interests = list(map(attrgetter("interests"), ordered))
        self.seniority = np.fromiter(map(attrgetter("seniority"), ordered), dtype=np.int64, count=count)
        self.tag_count = np.fromiter(map(len, interests), dtype=np.int64, count=count)
        rows, codes = _tag_rows(interests, index.tag_code)
        self.masks = _masks(rows, codes, count, index.words)
        self.mask_words = [np.ascontiguousarray(self.masks[:, word]) for word in range(index.words)]
        self.tag_slots = _slots(rows, codes, count)
        self.pair_slots = _pair_slots(self.tag_slots, len(index.tag_code) or 1)
        self.institution = _codes(map(attrgetter("institution_id"), ordered), index.institution_code, NO_CODE)
        self.background = _codes(map(attrgetter("background"), ordered), index.background_code, NEVER_SHARED)
        self.pathway = _codes(map(attrgetter("pathway"), ordered), index.pathway_code, NEVER_SHARED)
        self.offset = np.fromiter(map(zlib.crc32, map(str.encode, ids)), dtype=np.int64, count=count)
        self.self_position = _codes(ids, index.position, -1)

    ARRAYS = (
        "seniority",
        "tag_count",
        "masks",
        "tag_slots",
        "pair_slots",
        "institution",
        "background",
        "pathway",
        "offset",
        "self_position",
    )

    def subset(self, rows: np.ndarray, index: MentorIndex) -> "MenteeArrays":
        """The mentees at these rows (ascending), against an index with the same codes (e.g. with other places)."""
        other = copy.copy(self)
        other.mentees = tuple(map(self.mentees.__getitem__, rows.tolist()))
        other.index = index
        for name in self.ARRAYS:
            setattr(other, name, getattr(self, name)[rows])
        other.mask_words = [np.ascontiguousarray(other.masks[:, word]) for word in range(index.words)]
        return other


class ListBuilder:
    """Builds preference lists for a cohort of mentees against one MentorIndex under one policy."""

    def __init__(self, index: MentorIndex, policy: Policy, exclusions: Iterable[tuple[str, str]]) -> None:
        self.index = index
        self.policy = policy
        self.excluded: dict[str, set[str]] = {}
        for mentee_id, mentor_id in exclusions:
            self.excluded.setdefault(mentee_id, set()).add(mentor_id)
        w = policy.weights
        # Each term as score_pair adds it (weight times a 0/1 component), so sums agree to the bit.
        self.terms = (
            (w.other_institution * 0.0, w.other_institution * 1.0),
            (w.background * 0.0, w.background * 1.0),
            (w.pathway * 0.0, w.pathway * 1.0),
        )

    def with_index(self, index: MentorIndex) -> "ListBuilder":
        """The same policy and exclusions against another index (e.g. the places a round left)."""
        other = copy.copy(self)
        other.index = index
        return other

    # -- seniority

    def level_plan(self, seniority: int) -> tuple[tuple[int, float], ...]:
        """Eligible level indices for a mentee of this seniority with their weighted fit, best fit (then smaller
        gap) first."""
        policy = self.policy
        eligible = []
        for level_index, level in enumerate(self.index.seniority_levels):
            gap = seniority_gap(seniority, level, policy.mentor_more_senior)
            if gap >= 1:
                eligible.append((abs(gap - policy.preferred_gap), gap, level_index))
        return tuple(
            (level_index, policy.weights.seniority * seniority_fit(gap, policy.preferred_gap))
            for _, gap, level_index in sorted(eligible)
        )

    def fit_row(self, seniority: int, named: bool) -> np.ndarray:
        """Weighted seniority fit by mentor level index (last: the empty row). Fallbacks: -inf where the rule
        rules the level out; named choices: 0 there (the fit component is 0)."""
        levels = len(self.index.seniority_levels)
        row = np.full(levels + 1, -np.inf)
        if named:
            row[:levels] = self.policy.weights.seniority * 0.0
        for level_index, fit in self.level_plan(seniority):
            row[level_index] = fit
        return row

    # -- scoring

    def score(self, cohort: MenteeArrays, rows: np.ndarray, candidates: np.ndarray, fit: np.ndarray) -> np.ndarray:
        """Scores of candidates (one row of mentor positions, NO_MENTOR for none, per mentee row), exactly as
        scoring.score_pair computes them; -inf for empty cells. `fit` is the weighted seniority fit by mentor level
        index (see fit_row)."""
        cells = np.where(candidates >= 0, candidates, len(self.index))
        scores = self._scores(cohort, rows[:, None], cells, fit)
        scores[candidates < 0] = -np.inf
        return scores

    def score_pairs(
        self, cohort: MenteeArrays, mentees: np.ndarray, mentors: np.ndarray, fit: np.ndarray
    ) -> np.ndarray:
        """Scores of (mentee row, mentor position) pairs, exactly as scoring.score_pair computes them."""
        return self._scores(cohort, mentees, mentors, fit)

    def _scores(self, cohort: MenteeArrays, mentees: np.ndarray, mentors: np.ndarray, fit: np.ndarray) -> np.ndarray:
        """score_pair's terms added in score_pair's order, so sums agree to the bit; `mentees` broadcasts against
        `mentors` (a column of rows against a block of candidates, or pair by pair)."""
        index, w = self.index, self.policy.weights
        shared = None
        for mentor_word, mentee_word in zip(index.mask_words, cohort.mask_words, strict=True):
            count = np.bitwise_count(mentor_word[mentors] & mentee_word[mentees])
            shared = count.astype(np.int64) if shared is None else shared + count
        distinct = cohort.tag_count[mentees] + index.tag_count[mentors] - shared
        overlap = shared / np.maximum(distinct, 1)  # 0 where nothing is shared, else shared / distinct
        scores = fit[index.level[mentors]] + w.interests * overlap
        # A term adding w * 0.0 leaves every sum as it was, so only the cells where a term is w * 1.0 get it; in
        # score_pair's order (institution, background, pathway), so each sum is the same to the bit.
        for (no, yes), mentor_codes, mentee_codes, differ in (
            (self.terms[0], index.institution, cohort.institution, True),
            (self.terms[1], index.background, cohort.background, False),
            (self.terms[2], index.pathway, cohort.pathway, False),
        ):
            theirs = mentee_codes[mentees]
            if yes == no or (not differ and not np.any(theirs != NEVER_SHARED)):
                continue  # the term is the same everywhere, or nobody here can share it: adds w * 0.0 throughout
            counts = (mentor_codes[mentors] != theirs) if differ else (mentor_codes[mentors] == theirs)
            np.add(scores, yes, out=scores, where=counts)
        return scores

    # -- choices

    def choices(
        self, cohort: MenteeArrays, excluded: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, tuple[tuple[SkippedChoice, ...], ...]]:
        """Valid choices per mentee (positions, left-packed in her order, NO_MENTOR padded), their named ranks, and
        the skipped ones with the reason: the first that applies of duplicate, self, unknown, excluded, ineligible
        (where the programme limits choices by seniority) and full."""
        index, mentees = self.index, cohort.mentees
        count = len(mentees)
        counts = np.fromiter(map(len, map(attrgetter("choices"), mentees)), dtype=np.int64, count=count)
        width = int(counts.max(initial=0))
        valid = np.full((count, width), NO_MENTOR, dtype=np.int64)
        ranks = np.zeros((count, width), dtype=np.int8)
        if not width:
            return valid, ranks, ((),) * count
        names = list(itertools.chain.from_iterable(map(attrgetter("choices"), mentees)))
        rows = np.repeat(np.arange(count, dtype=np.int64), counts)
        column = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
        named = _codes(names, index.position, NO_MENTOR)
        unknown = named < 0
        # Same name, same code: a mentor's position, or for names no mentor has, a code of its own below -1.
        codes = named.copy()
        if np.any(unknown):
            others: dict[str, int] = {}
            codes[unknown] = [-2 - others.setdefault(names[i], len(others)) for i in np.flatnonzero(unknown).tolist()]
        grid = np.full((count, width), NO_MENTOR, dtype=np.int64)
        grid[rows, column] = codes
        duplicate = np.zeros(len(rows), dtype=bool)
        for later in range(1, width):
            seen = np.zeros(count, dtype=bool)
            for earlier in range(later):
                seen |= grid[:, earlier] == grid[:, later]
            duplicate |= seen[rows] & (column == later)
        herself = ~unknown & (named == cohort.self_position[rows])
        if np.any(unknown):  # she named herself, and she is no mentor
            ids = [mentees[row].participant_id for row in rows[unknown].tolist()]
            herself[unknown] = [names[i] == her for i, her in zip(np.flatnonzero(unknown).tolist(), ids, strict=True)]
        position = np.maximum(named, 0)
        barred = np.isin(rows * (len(index) + 1) + position, excluded) if len(excluded) else np.zeros(len(rows), bool)
        ineligible = np.zeros(len(rows), dtype=bool)
        if self.policy.choices_by_seniority:
            for seniority in np.unique(cohort.seniority).tolist():
                mine = cohort.seniority[rows] == seniority
                ineligible[mine] = ~np.isfinite(self.fit_row(seniority, named=False)[index.level[position[mine]]])
        full = index.available[position] <= 0
        reason = np.select(
            [duplicate, herself, unknown, barred, ineligible, full], np.arange(1, 7, dtype=np.int64), default=0
        )
        ok = reason == 0
        taken = np.cumsum(ok)
        before = np.concatenate(([0], taken))[np.cumsum(counts) - counts]  # valid choices of earlier mentees
        place = taken - 1 - before[rows]  # her valid choices, left-packed
        valid[rows[ok], place[ok]] = named[ok]
        ranks[rows[ok], place[ok]] = column[ok] + 1
        skipped: list[tuple[SkippedChoice, ...]] = [()] * count
        lost = np.flatnonzero(~ok)
        for row, group in itertools.groupby(
            zip(rows[lost].tolist(), lost.tolist(), (column[lost] + 1).tolist(), reason[lost].tolist(), strict=True),
            key=lambda item: item[0],
        ):
            skipped[row] = tuple(SkippedChoice(names[at], rank, SKIP_REASONS[why]) for _, at, rank, why in group)
        return valid, ranks, tuple(skipped)

    def excluded_keys(self, cohort: MenteeArrays) -> np.ndarray:
        """Sorted keys (mentee row * mentors + mentor position) of the excluded pairs among the cohort's."""
        if not self.excluded:
            return np.zeros(0, dtype=np.int64)
        position, count = self.index.position, len(self.index) + 1
        keys = []
        for row, mentee in enumerate(cohort.mentees):
            for mentor_id in self.excluded.get(mentee.participant_id, ()):
                mentor = position.get(mentor_id)
                if mentor is not None:
                    keys.append(row * count + mentor)
        return np.unique(np.array(keys, dtype=np.int64))

    # -- candidates and lists

    def fallbacks(
        self,
        cohort: MenteeArrays,
        choices: np.ndarray,
        excluded: np.ndarray,
        places: int,
        out: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Up to `places` fallbacks per mentee (mentor positions and scores, best first, ties by mentor id;
        NO_MENTOR / -inf padded): never a valid choice of hers, herself, or an excluded, full or ineligible mentor.

        Blocks of rows are independent, so they are spread over WORKERS threads (numpy lets go of the GIL)."""
        count = len(cohort.mentees)
        if out is None:
            out = (np.full((count, places), NO_MENTOR, dtype=np.int64), np.full((count, places), -np.inf))
        mentors, scores = out
        if places <= 0 or not count:
            return mentors, scores
        target = math.ceil(places * POOL_SLACK)
        index = self.index
        index.postings, index.level_places  # noqa: B018 - built once, before the threads share them
        blocks: list[tuple[np.ndarray, Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]]] = []
        for seniority in np.unique(cohort.seniority).tolist():
            group = np.flatnonzero(cohort.seniority == seniority)
            plan = self.level_plan(seniority)
            everyone = [index.level_mentors[level] for level, _ in plan]
            eligible = sum(map(len, everyone))
            if not eligible:
                continue
            fit = self.fit_row(seniority, named=False)
            if eligible <= max(target, SCORE_ALL_UP_TO):  # few enough to score them all: exact lists
                whole = np.sort(np.concatenate(everyone))
                best = functools.partial(self._all_of, cohort, whole, fit, choices, excluded, places)
                step = max(1, BLOCK_CELLS // len(whole))
                blocks += [(group[start : start + step], best) for start in range(0, len(group), step)]
                continue
            quotas = self._quotas(plan, target)
            best = functools.partial(self._sampled, cohort, quotas, fit, choices, excluded, places)
            step = max(1, BLOCK_CELLS // (5 * (target + len(quotas))))  # five windows per level at most
            with_background = (cohort.background[group] >= 0) & (self.policy.weights.background > 0)
            for subgroup in (group[~with_background], group[with_background]):  # a block is all one or the other
                blocks += [(subgroup[start : start + step], best) for start in range(0, len(subgroup), step)]

        def run(block: tuple[np.ndarray, Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]]) -> None:
            rows, best = block
            mentors[rows], scores[rows] = best(rows)

        if WORKERS > 1 and len(blocks) > 1:
            with ThreadPoolExecutor(max_workers=WORKERS) as pool:
                list(pool.map(run, blocks))
        else:
            for block in blocks:
                run(block)
        return mentors, scores

    def _all_of(
        self,
        cohort: MenteeArrays,
        whole: np.ndarray,
        fit: np.ndarray,
        choices: np.ndarray,
        excluded: np.ndarray,
        places: int,
        rows: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The best of every eligible mentor, for a block of rows."""
        pool = self.usable(cohort, rows, np.broadcast_to(whole, (len(rows), len(whole))), choices, excluded)
        return _best(pool, self.score(cohort, rows, pool, fit), places)

    def _sampled(
        self,
        cohort: MenteeArrays,
        quotas: list[tuple[int, int]],
        fit: np.ndarray,
        choices: np.ndarray,
        excluded: np.ndarray,
        places: int,
        rows: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The best of a pool drawn level by level (each level's best candidates up to its quota), for a block."""
        pools, pool_scores = [], []
        context = self._context(cohort, rows, max(quota for _, quota in quotas))
        for level, quota in quotas:
            found = self.usable(cohort, rows, self._candidates(context, level, quota), choices, excluded)
            found_scores = self.score(cohort, rows, found, fit)
            keep = _best_first(found_scores)[:, :quota]
            pools.append(np.take_along_axis(found, keep, axis=1))
            pool_scores.append(np.take_along_axis(found_scores, keep, axis=1))
        return _best(np.hstack(pools), np.hstack(pool_scores), places)

    def _quotas(self, plan: tuple[tuple[int, float], ...], target: int) -> list[tuple[int, int]]:
        """Candidates each eligible level supplies, in proportion to its free places (best fit first)."""
        places = self.index.level_places
        total = int(sum(places[level] for level, _ in plan))
        quotas, taken = [], 0
        for level, _ in plan:
            if taken >= target or not places[level]:
                continue
            goal = min(target, taken + math.ceil(target * int(places[level]) / total))
            quotas.append((level, goal - taken))
            taken = goal
        return quotas

    def _context(self, cohort: MenteeArrays, rows: np.ndarray, width: int) -> dict:
        """What a block of rows draws candidates with at every level: its keys and how its rows spread over them."""
        offsets = cohort.offset[rows]
        tag_slots = cohort.tag_slots[rows]
        pairs = cohort.pair_slots[rows]
        background = cohort.background[rows]
        with_background = self.policy.weights.background > 0 and bool(np.all(background >= 0))
        tags = len(self.index.tag_code) or 1
        context = {
            "tags": tag_slots,
            "pairs": pairs,
            "background": background if with_background else None,
            "background_tags": np.where(tag_slots >= 0, background[:, None] * tags + tag_slots, -1),
            "offsets": offsets,
            "spread_tags": _Spread(tag_slots, offsets, width),
            "spread_pairs": _Spread(pairs, offsets, width),
            "spread_one": _Spread(np.zeros((len(rows), 1), dtype=np.int64), offsets, width),
        }
        return context

    def _candidates(self, context: dict, level: int, quota: int) -> np.ndarray:
        """Candidate cells at one level: windows of her tag-pair, tag, background and background-with-tag postings
        and of the whole level, deduplicated (repeats become NO_MENTOR), in mentor order."""
        index = self.index
        postings = index.postings
        tags = len(index.tag_code) or 1
        backgrounds = len(index.background_code) or 1
        tag_slots, pairs, background = context["tags"], context["pairs"], context["background"]
        blocks = []
        if pairs.shape[1]:
            keys = np.where(pairs >= 0, level * tags * tags + pairs, -1)
            blocks.append(postings["pair"].windows(keys, context["spread_pairs"], quota))
        if tag_slots.shape[1]:
            keys = np.where(tag_slots >= 0, level * tags + tag_slots, -1)
            blocks.append(postings["tag"].windows(keys, context["spread_tags"], quota))
        if background is not None:  # a block is all with a background or all without
            key = level * backgrounds + background
            blocks.append(postings["background"].windows(key[:, None], context["spread_one"], quota))
            if tag_slots.shape[1]:
                keys = context["background_tags"]
                keys = np.where(keys >= 0, level * backgrounds * tags + keys, -1)
                blocks.append(postings["background_tag"].windows(keys, context["spread_tags"], quota))
        whole = index.level_mentors[level]
        if len(whole):
            blocks.append(whole[context["spread_one"].ahead[:, :quota] % len(whole)])
            if len(whole) < quota:
                blocks[-1][:, len(whole) :] = NO_MENTOR
        found = np.sort(np.hstack(blocks), axis=1)
        repeat = np.zeros(found.shape, dtype=bool)
        repeat[:, 1:] = found[:, 1:] == found[:, :-1]
        found[repeat] = NO_MENTOR
        return found

    def usable(
        self, cohort: MenteeArrays, rows: np.ndarray, cells: np.ndarray, choices: np.ndarray, excluded: np.ndarray
    ) -> np.ndarray:
        """The cells with herself, her valid choices and her excluded mentors emptied."""
        drop = cells == cohort.self_position[rows][:, None]
        for column in range(choices.shape[1]):
            drop |= cells == choices[rows, column][:, None]
        if len(excluded):
            keys = rows[:, None] * (len(self.index) + 1) + np.maximum(cells, 0)
            at = np.searchsorted(excluded, keys).clip(0, len(excluded) - 1)
            drop |= excluded[at] == keys
        return np.where(drop | (cells < 0), NO_MENTOR, cells)

    def build(self, cohort: MenteeArrays, fallback_places: int) -> RankedLists:
        """Every list: valid choices in her order, then up to `fallback_places` others by score."""
        excluded = self.excluded_keys(cohort)
        choices, ranks, skipped = self.choices(cohort, excluded)
        named = choices.shape[1]
        # One grid per list field, choices in the first columns, fallbacks written beside them.
        grid = np.full((len(cohort.mentees), named + max(fallback_places, 0)), NO_MENTOR, dtype=np.int64)
        grid_scores = np.full(grid.shape, -np.inf)
        grid[:, :named] = choices
        for seniority in np.unique(cohort.seniority).tolist():
            group = np.flatnonzero(cohort.seniority == seniority)
            fit = self.fit_row(seniority, named=True)
            grid_scores[group, :named] = self.score(cohort, group, choices[group], fit)
        self.fallbacks(cohort, choices, excluded, fallback_places, out=(grid[:, named:], grid_scores[:, named:]))
        used = grid >= 0
        grid_ranks = np.full(grid.shape, NOT_NAMED, dtype=np.int8)
        grid_ranks[:, :named] = ranks
        starts = np.concatenate(([0], np.cumsum(used.sum(axis=1)))).astype(np.int64)
        return RankedLists.of(
            cohort.mentees, self.index, starts, grid[used], grid_scores[used], grid_ranks[used], skipped
        )


def _best_first(scores: np.ndarray) -> np.ndarray:
    """Column order of each row by score, highest first, ties by column: a sort of integers, each a score's bits
    (order-preserving, the lowest few dropped) above its column. Scores closer than those bits count as ties, so
    this is for choosing a pool, never for the order of a list."""
    shift = max(int(scores.shape[1] - 1).bit_length(), 1)
    keys = (~_ascending(scores) >> shift) << shift | np.arange(scores.shape[1], dtype=np.int64)
    return np.sort(keys, axis=1) & ((1 << shift) - 1)


def _best(pool: np.ndarray, pool_scores: np.ndarray, places: int) -> tuple[np.ndarray, np.ndarray]:
    """The `places` best cells per row, by score (highest first), equal scores by mentor id; NO_MENTOR / -inf
    padded. Sorted by one integer per cell (a score's bits above the mentor), then checked with the exact scores:
    rows where dropping the low bits merged two different scores are sorted again exactly."""
    shift = (int(pool.max(initial=0)) + 1).bit_length()
    keys = (~_ascending(pool_scores) >> shift) << shift | (pool + 1)
    order = np.argsort(keys, axis=1)[:, :places]
    best, best_scores = np.take_along_axis(pool, order, axis=1), np.take_along_axis(pool_scores, order, axis=1)
    later, earlier = best_scores[:, 1:], best_scores[:, :-1]
    wrong = np.any((later > earlier) | ((later == earlier) & (best[:, 1:] < best[:, :-1]) & (later > -np.inf)), 1)
    for row in np.flatnonzero(wrong).tolist():
        exact = np.lexsort((pool[row], -pool_scores[row]))[:places]
        best[row], best_scores[row] = pool[row, exact], pool_scores[row, exact]
    if best.shape[1] < places:
        pad = places - best.shape[1]
        best = np.hstack((best, np.full((len(best), pad), NO_MENTOR, dtype=np.int64)))
        best_scores = np.hstack((best_scores, np.full((len(best), pad), -np.inf)))
    return np.where(np.isfinite(best_scores), best, NO_MENTOR), best_scores


def _ascending(scores: np.ndarray) -> np.ndarray:
    """Each float's bits as an integer in the floats' order."""
    bits = scores.view(np.int64)
    return np.where(bits < 0, bits ^ np.int64(0x7FFF_FFFF_FFFF_FFFF), bits)


def build_ranked_lists(
    mentees: Iterable[Mentee],
    index: MentorIndex,
    policy: Policy,
    exclusions: Iterable[tuple[str, str]],
    fallback_places: int,
) -> RankedLists:
    """Every mentee's preference list against the index's available capacity."""
    return ListBuilder(index, policy, exclusions).build(MenteeArrays(mentees, index), fallback_places)
