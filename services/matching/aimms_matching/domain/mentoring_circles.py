"""A mentoring circle's life, free of I/O: formed from the engine's grouping, members leave, the follow-up.

`circles.form_circles` decides who is together; this module turns one of its circles into the
aggregate matching stores, and decides each later step with the events it raises.
"""

from dataclasses import dataclass, replace
from datetime import datetime

from aimms_matching.domain.circles import Circle, CircleResult, Peer
from aimms_matching.domain.rules import Member, ProgrammeRules
from aimms_shared import durations
from aimms_shared.contracts import matching as ev
from aimms_shared.events import Event
from aimms_shared.mapping import carried_over, picked


@dataclass(frozen=True)
class CircleMember:
    participant_id: str
    institution_id: str
    role: ev.CircleRole
    shared_interests: tuple[str, ...]  # hers that others in the circle hold too


@dataclass(frozen=True)
class MentoringCircle:
    circle_id: str
    programme_id: str
    members: tuple[CircleMember, ...]  # those still in it: peers, then the facilitator
    shared_interests: tuple[str, ...]
    stages: tuple[str, str]  # lowest and highest career stage of its peers, in the programme's words
    formed_at: datetime
    follow_up_at: datetime
    left: tuple[str, ...] = ()  # ids of members who left
    followed_up: bool = False
    version: int = 1

    @property
    def member_ids(self) -> tuple[str, ...]:
        return tuple(m.participant_id for m in self.members)

    @property
    def facilitator(self) -> str | None:
        return next((m.participant_id for m in self.members if m.role == "facilitator"), None)

    def next_due(self) -> datetime | None:
        """When the scheduler next has something to do: the follow-up, once."""
        return None if self.followed_up else self.follow_up_at


Change = tuple[MentoringCircle, list[Event]]


def as_peer(programme: ProgrammeRules, member: Member) -> Peer:
    """A peer as the engine groups her: career stage, interests, and her background token as her group (only
    when she asked to be matched by background; the token never says what it stands for)."""
    return Peer(
        member.participant_id,
        member.institution_id,
        programme.rank(member.seniority),
        frozenset(member.research_interests),
        member.background_token if member.background_matching else None,
    )


def formed(
    circle_id: str,
    programme: ProgrammeRules,
    circle: Circle,
    result: CircleResult,
    members: dict[str, Member],
    now: datetime,
) -> Change:
    """One circle of the engine's result as a mentoring circle, announced (CircleFormed)."""
    peers = tuple(
        CircleMember(pid, members[pid].institution_id, "peer", result.why[pid].shared_interests)
        for pid in circle.members
    )
    facilitating = ()
    if circle.facilitator is not None:
        facilitator = members[circle.facilitator]
        shared = tuple(sorted(set(facilitator.research_interests) & set(circle.shared_interests)))
        facilitating = (CircleMember(facilitator.participant_id, facilitator.institution_id, "facilitator", shared),)
    lowest, highest = circle.stages
    mentoring = MentoringCircle(
        circle_id=circle_id,
        programme_id=programme.programme_id,
        members=peers + facilitating,
        shared_interests=circle.shared_interests,
        stages=(programme.seniority_scale[lowest], programme.seniority_scale[highest]),
        formed_at=now,
        follow_up_at=durations.after(now, programme.follow_up_after),
    )
    event = ev.CircleFormed(
        **_about(mentoring),
        members=[_announced(m) for m in mentoring.members],
        shared_interests=list(mentoring.shared_interests),
        stages=list(mentoring.stages),
        formed_at=mentoring.formed_at,
        follow_up_at=mentoring.follow_up_at,
    )
    return mentoring, [event]


def leave(circle: MentoringCircle, participant_id: str) -> Change:
    """A member withdrew or was erased: the others go on (CircleMemberLeft); leaving twice changes nothing."""
    leaving = next((m for m in circle.members if m.participant_id == participant_id), None)
    if leaving is None:
        return circle, []
    remaining = tuple(m for m in circle.members if m.participant_id != participant_id)
    changed = replace(circle, members=remaining, left=(*circle.left, participant_id))
    event = ev.CircleMemberLeft(
        **_about(circle), participant_id=participant_id, role=leaving.role, remaining=list(changed.member_ids)
    )
    return changed, [event]


def tick(circle: MentoringCircle, now: datetime) -> Change:
    """The scheduler's step: at the follow-up point its members still in it are asked how it went."""
    if circle.followed_up or now < circle.follow_up_at:
        return circle, []
    event = ev.CircleFollowUpDue(
        **_about(circle),
        members=[_announced(m) for m in circle.members],
        formed_at=circle.formed_at,
        follow_up_at=circle.follow_up_at,
    )
    return replace(circle, followed_up=True), [event]


def _about(circle: MentoringCircle) -> dict[str, object]:
    return picked(circle, "circle_id", "programme_id")


def _announced(member: CircleMember) -> ev.CircleMember:
    return carried_over(ev.CircleMember, member)
