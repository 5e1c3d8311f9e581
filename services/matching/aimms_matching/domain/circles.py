"""Mentoring circles, free of I/O: peers grouped 4-8 to a circle with a facilitator, explained per member.

Peers are ordered by career stage and then by their most widely shared interest, so neighbours in
the order are alike; the order is cut into circles of near-equal size. Two balance rules are then
repaired by swapping members between nearby circles (alike, so a swap costs little):
  - institutions mixed: no institution holds more than `max_institution_share` of a circle;
  - nobody alone of her group: a circle holds none, or at least two, of each group (a group is an
    opaque token, such as registration's keyed hash of a self-description: never its meaning).
Facilitators are given to circles by shared interests, preferring another institution. What each
member is told: the interests she shares with her circle, and its range of career stages.
"""

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

NEIGHBOURS = 6  # how far along the order a swap looks for a partner circle


@dataclass(frozen=True, slots=True)
class Peer:
    participant_id: str
    institution_id: str
    stage: int  # position on the programme's seniority scale
    interests: frozenset[str]
    group: str | None = None  # an opaque token; None: she did not say


@dataclass(frozen=True, slots=True)
class Facilitator:
    participant_id: str
    institution_id: str
    interests: frozenset[str]


@dataclass(frozen=True)
class CirclePolicy:
    min_size: int = 4
    max_size: int = 8
    target_size: int = 6
    max_institution_share: float = 0.5


@dataclass(frozen=True)
class Circle:
    members: tuple[str, ...]
    facilitator: str | None
    shared_interests: tuple[str, ...]  # interests two or more members hold
    stages: tuple[int, int]  # lowest and highest career stage
    institutions: int


@dataclass(frozen=True)
class Why:
    """What a member is told of her circle."""

    circle: int
    shared_interests: tuple[str, ...]  # hers that others in the circle hold too
    stages: tuple[int, int]


@dataclass(frozen=True)
class CircleResult:
    circles: list[Circle]
    why: dict[str, Why]
    unplaced: tuple[str, ...]  # too few peers to make a circle
    quality: dict[str, float | int] = field(default_factory=dict)


def form_circles(
    peers: Sequence[Peer], facilitators: Sequence[Facilitator], policy: CirclePolicy = CirclePolicy()
) -> CircleResult:
    """Every peer in a circle of `min_size` to `max_size` (unless there are fewer peers than `min_size`)."""
    if len(peers) < policy.min_size:
        return CircleResult([], {}, tuple(p.participant_id for p in peers), _quality([], peers, {}, policy))
    popularity = Counter(tag for p in peers for tag in p.interests)

    def theme(peer: Peer) -> str:
        return max(peer.interests, key=lambda tag: (popularity[tag], tag)) if peer.interests else ""

    ordered = [p for run in _runs(peers, theme) for p in _spread(run)]
    count = _circle_count(len(ordered), policy)
    bounds = [round(i * len(ordered) / count) for i in range(count + 1)]
    circles = [ordered[bounds[i] : bounds[i + 1]] for i in range(count)]
    _mix_institutions(circles, policy)
    _no_one_alone(circles, policy)
    assigned = _facilitate(circles, facilitators)
    formed, why = [], {}
    for index, (members, facilitator) in enumerate(zip(circles, assigned, strict=True)):
        held = Counter(tag for p in members for tag in p.interests)
        shared = tuple(sorted(tag for tag, n in held.items() if n >= 2))
        stages = (min(p.stage for p in members), max(p.stage for p in members))
        formed.append(
            Circle(
                tuple(p.participant_id for p in members),
                facilitator,
                shared,
                stages,
                len({p.institution_id for p in members}),
            )
        )
        for p in members:
            why[p.participant_id] = Why(index, tuple(sorted(t for t in p.interests if held[t] >= 2)), stages)
    return CircleResult(formed, why, (), _quality(circles, peers, dict(enumerate(assigned)), policy))


def _runs(peers: Sequence[Peer], theme: Callable[[Peer], str]) -> list[list[Peer]]:
    """Peers alike (the same career stage and main interest) together, runs in that order."""
    runs: dict[tuple[int, str], list[Peer]] = {}
    for peer in sorted(peers, key=lambda p: (p.stage, theme(p), p.participant_id)):
        runs.setdefault((peer.stage, theme(peer)), []).append(peer)
    return list(runs.values())


def _spread(run: list[Peer]) -> list[Peer]:
    """Within a run, institutions taking turns, and each group's members side by side (so a cut into
    circles seldom leaves one alone)."""
    turn: Counter[str] = Counter()
    keyed = []
    for peer in run:
        keyed.append(((peer.group or "~"), turn[peer.institution_id], peer.institution_id, peer))
        turn[peer.institution_id] += 1
    return [peer for *_, peer in sorted(keyed, key=lambda k: k[:3])]


def _circle_count(n: int, policy: CirclePolicy) -> int:
    """As near the target size as the bounds allow."""
    fewest, most = math.ceil(n / policy.max_size), max(n // policy.min_size, 1)
    return min(max(round(n / policy.target_size), fewest), most)


def _too_many_from_one(members: list[Peer], policy: CirclePolicy) -> str | None:
    """The institution that holds more than its share of the circle, if one does."""
    institution, n = Counter(p.institution_id for p in members).most_common(1)[0]
    return institution if n > policy.max_institution_share * len(members) else None


def _mix_institutions(circles: list[list[Peer]], policy: CirclePolicy) -> None:
    for i in range(len(circles)):
        for _ in range(len(circles[i])):
            crowded = _too_many_from_one(circles[i], policy)
            if crowded is None:
                break
            crowding = lambda p, c=crowded: p.institution_id == c  # noqa: E731
            everywhere = [j for j in range(len(circles)) if j != i]
            if not (
                _swap_out(circles, i, crowding, _nearby(i, len(circles)), policy)
                or _swap_out(circles, i, crowding, everywhere, policy)
            ):
                break


def _swap_out(
    circles: list[list[Peer]], i: int, leaving: Callable[[Peer], bool], where: list[int], policy: CirclePolicy
) -> bool:
    """Swap one member matching `leaving` for a member of a circle in `where` who keeps both in balance
    (nearby circles first: they are alike)."""
    members = circles[i]
    for out in [p for p in members if leaving(p)]:
        for j in where:
            for k, other in enumerate(circles[j]):
                if other.institution_id == out.institution_id or other.group != out.group:
                    continue  # a swap within a group keeps every group's counts as they were
                there = circles[j][:k] + [out] + circles[j][k + 1 :]
                if _too_many_from_one(there, policy) is None:
                    circles[i] = [other if p is out else p for p in members]
                    circles[j] = there
                    return True
    return False


def _no_one_alone(circles: list[list[Peer]], policy: CirclePolicy) -> None:
    """Move each member alone of her group to a circle with others of it, or bring one of them to her;
    nearby circles first (alike), then any."""
    for i in range(len(circles)):
        for _ in range(len(circles[i])):
            counts = Counter(p.group for p in circles[i] if p.group is not None)
            alone = next((p for p in circles[i] if p.group is not None and counts[p.group] == 1), None)
            if alone is None:
                break
            everywhere = [j for j in range(len(circles)) if j != i]
            if not (
                _rejoin(circles, i, alone, _nearby(i, len(circles)), policy)
                or _rejoin(circles, i, alone, everywhere, policy)
            ):
                break


def _rejoin(circles: list[list[Peer]], i: int, alone: Peer, where: list[int], policy: CirclePolicy) -> bool:
    for j in where:
        there = Counter(p.group for p in circles[j] if p.group is not None)
        if there[alone.group] >= 1 and _exchange(circles, i, alone, j, policy):
            return True  # she joins others of her group
        if there[alone.group] >= 3:
            mate = next(p for p in circles[j] if p.group == alone.group)
            if _exchange(circles, j, mate, i, policy):
                return True  # one of them joins her
    return False


def _exchange(circles: list[list[Peer]], i: int, mover: Peer, j: int, policy: CirclePolicy) -> bool:
    """`mover` goes from circle i to circle j for a member of no group there, keeping both circles mixed
    (someone of the same institution first: then nobody's institution counts change)."""
    candidates = sorted(
        (p for p in circles[j] if p.group is None), key=lambda p: p.institution_id != mover.institution_id
    )
    for other in candidates:
        here = [other if p is mover else p for p in circles[i]]
        there = [mover if p is other else p for p in circles[j]]
        if _too_many_from_one(here, policy) is None and _too_many_from_one(there, policy) is None:
            circles[i], circles[j] = here, there
            return True
    return False


def _nearby(i: int, n: int) -> list[int]:
    return [j for d in range(1, NEIGHBOURS + 1) for j in (i - d, i + d) if 0 <= j < n]


def _facilitate(circles: list[list[Peer]], facilitators: Sequence[Facilitator]) -> list[str | None]:
    """A facilitator per circle while they last: one who shares the circle's main interest, from another
    institution where possible."""
    by_interest: dict[str, list[Facilitator]] = {}
    for f in sorted(facilitators, key=lambda f: f.participant_id):
        for tag in f.interests:
            by_interest.setdefault(tag, []).append(f)
    free = {f.participant_id for f in facilitators}
    remaining = sorted(facilitators, key=lambda f: f.participant_id)
    assigned: list[str | None] = []
    for members in circles:
        institutions = {p.institution_id for p in members}
        themes = [tag for tag, _ in Counter(t for p in members for t in p.interests).most_common(3)]
        candidates = [f for tag in themes for f in by_interest.get(tag, ()) if f.participant_id in free]
        candidates += [f for f in remaining if f.participant_id in free]
        chosen = next((f for f in candidates if f.institution_id not in institutions), None)
        chosen = chosen or next(iter(candidates), None)
        if chosen is not None:
            free.discard(chosen.participant_id)
        assigned.append(chosen.participant_id if chosen else None)
    return assigned


def _quality(
    circles: list[list[Peer]], peers: Sequence[Peer], facilitators: dict[int, str | None], policy: CirclePolicy
) -> dict[str, float | int]:
    """How well the circles keep the rules and how alike their members are."""
    if not circles:
        return {"peers": len(peers), "circles": 0, "placed": 0}
    sizes = [len(c) for c in circles]
    alone = 0
    connected = 0
    spans = []
    for members in circles:
        groups = Counter(p.group for p in members if p.group is not None)
        alone += sum(1 for n in groups.values() if n == 1)
        held = Counter(t for p in members for t in p.interests)
        connected += sum(1 for p in members if any(held[t] >= 2 for t in p.interests))
        spans.append(max(p.stage for p in members) - min(p.stage for p in members))
    mixed = sum(1 for members in circles if _too_many_from_one(members, policy) is None)
    placed = sum(sizes)
    return {
        "peers": len(peers),
        "circles": len(circles),
        "placed": placed,
        "size_min": min(sizes),
        "size_max": max(sizes),
        "institutions_mixed_rate": round(mixed / len(circles), 4),
        "members_alone_of_their_group": alone,
        "sharing_an_interest_rate": round(connected / placed, 4),
        "mean_stage_span": round(sum(spans) / len(spans), 3),
        "facilitated_rate": round(sum(1 for f in facilitators.values() if f) / len(circles), 4),
    }
