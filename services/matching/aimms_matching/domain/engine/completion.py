"""The residual round's completion: as many of its mentees placed as its places allow (maximum cardinality).

Deferred acceptance over bounded lists can leave a mentee unmatched while an eligible mentor, on nobody's list,
still has a place, or while a place she could take is held by a mentee who could go elsewhere. The completion
places every mentee it can over the whole eligible graph of the round, not only the lists: a mentee may take
any mentor the fallback rules allow (more senior in the programme's direction, not herself, not excluded) with
a place left after the stable round.

What may move: only mentees of the residual round who hold a fallback. To free a place, one of them may be moved
to another mentor eligible for her (an augmenting path). Pairs of the stable round never move, and neither does a
pair in which she got a mentor she named. Within those rules the result is a maximum matching (Berge: no
augmenting path is left), found greedily first (a free place at an eligible level, the best-scoring of a few),
then by breadth-first augmenting paths. A search that fails proves its whole alternating tree useless for every
later search (a Hungarian tree), so those mentees and mentors are dropped, which bounds the total work.
"""

from collections import deque

import numpy as np

from aimms_matching.domain.engine.candidates import NO_MENTOR, NOT_NAMED, ListBuilder, MenteeArrays, RankedLists

FEW = 16  # free mentors scored when a mentee is placed directly


class _Completion:
    def __init__(self, lists: RankedLists, builder: ListBuilder, cohort: MenteeArrays, assigned: np.ndarray) -> None:
        self.lists, self.builder, self.cohort = lists, builder, cohort
        index = lists.index
        self.assigned: list[int] = assigned.tolist()
        load = np.bincount(assigned[assigned >= 0], minlength=len(index))
        self.free: list[int] = (index.available - load).tolist()
        plans = {s: [level for level, _ in builder.level_plan(s)] for s in np.unique(cohort.seniority).tolist()}
        self.plan: list[list[int]] = [plans[s] for s in cohort.seniority.tolist()]
        self.fits = {s: builder.fit_row(s, named=False) for s in plans}
        self.level_of: list[int] = index.level.tolist()
        self.level_mentors: list[list[int]] = [mentors.tolist() for mentors in index.level_mentors]
        self.with_room: list[list[int]] = [[m for m in level if self.free[m] > 0] for level in self.level_mentors]
        self.self_position: list[int] = cohort.self_position.tolist()
        position = index.position
        self.excluded: dict[int, set[int]] = {}
        for row, mentee in enumerate(cohort.mentees):
            names = builder.excluded.get(mentee.participant_id)
            if names:
                self.excluded[row] = {position[name] for name in names if name in position}
        places = lists.places_of(assigned)
        self.holders: dict[int, list[int]] = {}
        for row in np.flatnonzero(assigned >= 0).tolist():
            if lists.ranks[lists.starts[row] + places[row]] == NOT_NAMED:  # a named choice never moves
                self.holders.setdefault(self.assigned[row], []).append(row)
        self.dead_mentees: set[int] = set()

    def allowed(self, mentee: int, mentor: int) -> bool:
        return mentor != self.self_position[mentee] and mentor not in self.excluded.get(mentee, ())

    def with_room_for(self, mentee: int, limit: int) -> list[int]:
        """Up to `limit` mentors with a place free that she may take, best-fitting levels first."""
        found: list[int] = []
        for level in self.plan[mentee]:
            mentors = self.with_room[level]
            while mentors and self.free[mentors[-1]] <= 0:
                mentors.pop()
            full = 0
            for mentor in reversed(mentors):
                if self.free[mentor] <= 0:
                    full += 1
                elif self.allowed(mentee, mentor):
                    found.append(mentor)
                    if len(found) >= limit:
                        break
            if full > FEW:  # too many filled places passed over: keep only mentors with room
                self.with_room[level] = [m for m in dict.fromkeys(mentors) if self.free[m] > 0]
            if len(found) >= limit:
                break
        return found

    def move(self, mentee: int, mentor: int, via: dict[int, tuple[int, int] | None]) -> None:
        """Augment: she takes the mentor, and back along the path each mentee takes the place the next one left."""
        current, target = mentee, mentor
        while True:
            old = self.assigned[current]
            self.assigned[current] = target
            self.free[target] -= 1
            self.holders.setdefault(target, []).append(current)
            if old >= 0:
                self.free[old] += 1
                self.holders[old].remove(current)
                if self.free[old] == 1:
                    self.with_room[self.level_of[old]].append(old)
            step = via[current]
            if step is None:
                return
            current, target = step[1], step[0]

    def place_directly(self, mentee: int) -> bool:
        """The best-scoring of a few mentors with a place free that she may take, if any."""
        mentors = self.with_room_for(mentee, FEW)
        if not mentors:
            return False
        cells = np.array([mentors], dtype=np.int64)
        seniority = int(self.cohort.seniority[mentee])
        scores = self.builder.score(self.cohort, np.array([mentee]), cells, self.fits[seniority])[0]
        best = min(range(len(mentors)), key=lambda i: (-scores[i], mentors[i]))
        self.move(mentee, mentors[best], {mentee: None})
        return True

    def augment(self, root: int) -> bool:
        """Breadth-first search for an augmenting path from an unmatched mentee; apply it if found."""
        via: dict[int, tuple[int, int] | None] = {root: None}
        unvisited: dict[int, list[int]] = {}  # per level, mentors this search has not reached
        reached: list[int] = []
        queue = deque([root])
        while queue:
            mentee = queue.popleft()
            for level in self.plan[mentee]:
                mentors = unvisited.get(level, self.level_mentors[level])
                skipped: list[int] = []
                for mentor in mentors:
                    if not self.allowed(mentee, mentor):
                        skipped.append(mentor)
                        continue
                    reached.append(mentor)
                    if self.free[mentor] > 0:
                        self.move(mentee, mentor, via)
                        return True
                    for holder in self.holders.get(mentor, ()):
                        if holder in via or holder in self.dead_mentees:
                            continue
                        via[holder] = (mentor, mentee)
                        room = self.with_room_for(holder, 1)  # look ahead: can she move straight on?
                        if room:
                            self.move(holder, room[0], via)
                            return True
                        queue.append(holder)
                unvisited[level] = skipped
        # A Hungarian tree: no later augmenting path passes through any of it.
        self.dead_mentees.update(via)
        dead = set(reached)
        for level in unvisited:
            self.level_mentors[level] = [m for m in self.level_mentors[level] if m not in dead]
        return False

    def run(self) -> np.ndarray:
        unmatched = [row for row, mentor in enumerate(self.assigned) if mentor == NO_MENTOR and self.plan[row]]
        waiting = [row for row in unmatched if not self.place_directly(row)]
        for row in waiting:
            if row not in self.dead_mentees:
                self.augment(row)
        return np.array(self.assigned, dtype=np.int64)


def complete(lists: RankedLists, builder: ListBuilder, cohort: MenteeArrays, assigned: np.ndarray) -> np.ndarray:
    """The residual round's assignment completed to a maximum matching (see the module's rules)."""
    if not np.any(assigned < 0):
        return assigned
    return _Completion(lists, builder, cohort, assigned).run()


def with_assigned_on_lists(
    lists: RankedLists, builder: ListBuilder, cohort: MenteeArrays, assigned: np.ndarray
) -> RankedLists:
    """The lists with each mentor the completion gave a mentee off her list appended to it, scored as a fallback,
    so every pair of the round is on its mentee's list and explained from it."""
    owners = lists.owners()
    on_list = np.zeros(len(assigned), dtype=bool)
    on_list[owners[lists.mentors == assigned[owners]]] = True
    rows = np.flatnonzero((assigned >= 0) & ~on_list)
    if not len(rows):
        return lists
    mentors = assigned[rows]
    scores = np.empty(len(rows))
    for seniority in np.unique(cohort.seniority[rows]).tolist():
        mine = cohort.seniority[rows] == seniority
        fit = builder.fit_row(seniority, named=False)
        scores[mine] = builder.score(cohort, rows[mine], mentors[mine][:, None], fit)[:, 0]
    at = lists.starts[rows + 1]
    lengths = np.diff(lists.starts)
    lengths[rows] += 1
    return RankedLists.of(
        lists.mentees,
        lists.index,
        np.concatenate(([0], np.cumsum(lengths))).astype(np.int64),
        np.insert(lists.mentors, at, mentors),
        np.insert(lists.scores, at, scores),
        np.insert(lists.ranks, at, NOT_NAMED),
        lists.skipped,
    )
