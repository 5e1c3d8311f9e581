"""Many-to-one deferred acceptance, mentee-proposing: the mentee-optimal stable matching for given lists."""

import bisect
from collections.abc import Sequence

import numpy as np

from aimms_matching.domain.engine.candidates import RankedLists

UNMATCHED = -1
EMPTY = np.iinfo(np.int64).max  # a free place in a mentor's held row (sorts after every mentee)
SEQUENTIAL_BELOW = 64  # with fewer mentees proposing at once, go on one proposal at a time


def deferred_acceptance(lists: RankedLists, capacities: Sequence[int] | np.ndarray) -> list[int]:
    """Each mentee's mentor position (UNMATCHED if none) in the mentee-optimal stable matching.

    Mentors hold their best mentees so far by priority (named rank, score, mentee position) up to capacity and
    release the worst when a better one proposes. The result does not depend on the order of proposals.
    """
    return assign(lists, np.asarray(capacities, dtype=np.int64)).tolist()


def assign(lists: RankedLists, capacities: np.ndarray) -> np.ndarray:
    """Deferred acceptance as an array: every free mentee proposes at once, each mentor keeps her best up to
    capacity, and those released propose on; the long tail of a few proposals goes one at a time.

    Any order of proposals gives the mentee-optimal stable matching, so switching mid-way changes nothing.
    """
    count = len(lists.mentees)
    starts, mentors = lists.starts, lists.mentors
    lengths = np.diff(starts)
    assigned = np.full(count, UNMATCHED, dtype=np.int64)
    proposed = np.zeros(count, dtype=np.int64)  # how far down her list she has gone
    width = max(int(capacities.max(initial=0)), 1)
    held = np.full((len(capacities) + 1, width), EMPTY, dtype=np.int64)  # each row sorted, best first
    span = lists.priority_bound
    packed = (len(capacities) + 1) * span < 1 << 62  # (mentor, priority) fits one integer: sort values, not keys
    free = np.flatnonzero(lengths > 0)
    while len(free) >= SEQUENTIAL_BELOW:
        entries = starts[free] + proposed[free]
        proposed[free] += 1
        target, keys = mentors[entries], lists.priorities(entries, free)
        touched = np.unique(target)
        holding = held[touched]
        occupied = holding != EMPTY
        # Every contender per touched mentor: those she holds and those proposing, by mentor, then priority.
        contender_mentor = np.concatenate((np.repeat(touched, occupied.sum(axis=1)), target))
        contender_key = np.concatenate((holding[occupied], keys))
        if packed:
            ordered = np.sort(contender_mentor * span + contender_key)
            contender_mentor, contender_key = np.divmod(ordered, span)
        else:
            order = np.lexsort((contender_key, contender_mentor))
            contender_mentor, contender_key = contender_mentor[order], contender_key[order]
        first = np.ones(len(contender_mentor), dtype=bool)
        first[1:] = contender_mentor[1:] != contender_mentor[:-1]
        place = np.arange(len(first)) - np.maximum.accumulate(np.where(first, np.arange(len(first)), 0))
        kept = place < capacities[contender_mentor]
        held[touched] = EMPTY
        held[contender_mentor[kept], place[kept]] = contender_key[kept]
        assigned[contender_key[kept] % count] = contender_mentor[kept]
        released = contender_key[~kept] % count
        assigned[released] = UNMATCHED
        free = released[proposed[released] < lengths[released]]
    if len(free):
        _sequential(lists, capacities, held, free, assigned, proposed)
    return assigned


def _sequential(
    lists: RankedLists,
    capacities: np.ndarray,
    held: np.ndarray,
    free: np.ndarray,
    assigned: np.ndarray,
    proposed: np.ndarray,
) -> None:
    """Deferred acceptance one proposal at a time from the state the rounds left (held rows, pointers)."""
    count = max(len(lists.mentees), 1)
    starts, mentors = lists.starts.tolist(), lists.mentors
    rows: dict[int, list[int]] = {}  # the held rows of mentors touched here, as sorted lists
    waiting = free.tolist()[::-1]
    while waiting:
        mentee = waiting.pop()
        first, end = starts[mentee] + int(proposed[mentee]), starts[mentee + 1]
        rest = np.arange(first, end)
        proposed[mentee] = end - starts[mentee]  # unless she is held below
        for done, (mentor, key) in enumerate(
            zip(mentors[rest].tolist(), lists.priorities(rest, mentee).tolist(), strict=True), 1
        ):
            capacity = int(capacities[mentor])
            if capacity <= 0:
                continue
            row = rows.get(mentor)
            if row is None:
                row = rows[mentor] = [k for k in held[mentor].tolist() if k != EMPTY]
            if len(row) < capacity or key < row[-1]:  # room, or she outranks the worst held, who proposes on
                if len(row) == capacity:
                    released = row.pop() % count
                    assigned[released] = UNMATCHED
                    waiting.append(released)
                bisect.insort(row, key)
                assigned[mentee] = mentor
                proposed[mentee] = first + done - starts[mentee]
                break
    for mentor, row in rows.items():
        held[mentor] = EMPTY
        held[mentor, : len(row)] = row
