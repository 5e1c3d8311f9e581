"""Many-to-one deferred acceptance, mentee-proposing: the mentee-optimal stable matching for given lists."""

from collections.abc import Sequence
from heapq import heappush, heapreplace

from aimms_matching.domain.engine.candidates import NOT_NAMED, RankedLists

UNMATCHED = -1


def deferred_acceptance(lists: RankedLists, capacities: Sequence[int]) -> list[int]:
    """Each mentee's mentor position (UNMATCHED if none) in the mentee-optimal stable matching.

    Mentors hold their best mentees so far by priority (named rank, score, mentee id) up to capacity and
    release the worst when a better one proposes. The result does not depend on the order of proposals.
    """
    entries, scores, choice_ranks = lists.entries, lists.scores, lists.choice_ranks
    assigned = [UNMATCHED] * len(entries)
    next_place = [0] * len(entries)
    # Per mentor, a min-heap of negated priority keys: its top is the worst mentee she holds.
    held: list[list[tuple[int, float, int]]] = [[] for _ in capacities]
    free = [mentee for mentee in range(len(entries) - 1, -1, -1) if entries[mentee]]
    while free:
        mentee = free.pop()
        mentee_entries, mentee_scores, ranks = entries[mentee], scores[mentee], choice_ranks[mentee]
        place = next_place[mentee]
        while place < len(mentee_entries):
            mentor = mentee_entries[place]
            rank = ranks[place] if place < len(ranks) else NOT_NAMED
            worst_first = (-rank, mentee_scores[place], -mentee)
            place += 1
            heap = held[mentor]
            if len(heap) < capacities[mentor]:
                heappush(heap, worst_first)
                assigned[mentee] = mentor
                break
            if worst_first > heap[0]:  # she outranks the worst mentee held, who is released to propose on
                released = -heapreplace(heap, worst_first)[2]
                assigned[mentee] = mentor
                assigned[released] = UNMATCHED
                free.append(released)
                break
        next_place[mentee] = place
    return assigned
