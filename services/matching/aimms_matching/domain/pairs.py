"""A pair's life, free of I/O: held, proposed, answered by both sides, mentoring, ended.

Every change is a pure function from a pair and the time to the changed pair and the events it
raises. Times come from the programme's durations (captured on the pair when it is proposed), so
a programme with a term of seconds runs the whole life in a test without faking any clock.
"""

from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from typing import Literal

from aimms_shared.contracts import matching as ev
from aimms_shared.contracts.matching import EndReason, ProposalLinks, Side
from aimms_shared.durations import after
from aimms_shared.errors import RuleBroken, StateConflict
from aimms_shared.events import Event
from aimms_shared.mapping import picked

State = Literal["held", "proposed", "declined", "mentoring", "ended"]
SIDES: tuple[Side, Side] = ("mentee", "mentor")
OPEN_STATES: tuple[State, ...] = ("held", "proposed", "mentoring")


@dataclass(frozen=True)
class Timing:
    """The programme's durations a pair lives by (ISO 8601)."""

    reply_within: str
    reminder_after: str
    trial_period: str
    term: str
    follow_up_after: str


@dataclass(frozen=True)
class Explanation:
    """Why this mentor: her n-th choice or a fallback (and why), and the score's parts."""

    round: Literal["stable", "residual", "rolling", "manual"]
    choice_rank: int | None
    fallback_reason: str | None
    score: float
    components: dict[str, float]
    shared_interests: tuple[str, ...]
    seniority_gap: int
    note: str | None = None  # a coordinator's reason, for a pair proposed by hand


@dataclass(frozen=True)
class Meeting:
    """A meeting the pair held, as one side recorded it; the notes are for the two of them alone."""

    meeting_id: str
    held_on: date
    recorded_by: Side
    recorded_at: datetime
    notes: str | None = None


@dataclass(frozen=True)
class Pair:
    """A proposal and, once both accept, the mentoring partnership it becomes."""

    pair_id: str
    programme_id: str
    mentee_id: str
    mentor_id: str
    mentee_institution_id: str
    mentor_institution_id: str
    explanation: Explanation
    timing: Timing
    created_at: datetime
    state: State = "held"
    proposed_at: datetime | None = None
    reply_by: datetime | None = None
    reminded: bool = False
    answers: dict[str, str] = field(default_factory=dict)  # side -> "accepted" | "declined"
    decline_reason: str | None = None
    started_at: datetime | None = None
    trial_ends_at: datetime | None = None
    follow_up_at: datetime | None = None
    follow_up_sent: bool = False
    term_ends_at: datetime | None = None
    term_reply_by: datetime | None = None  # set when the term ended and both were asked: extend or conclude?
    extend_votes: tuple[Side, ...] = ()
    ended_at: datetime | None = None
    end_reason: EndReason | None = None
    ended_by: Side | None = None
    paused_at: datetime | None = None  # coordinators paused it: nothing is asked of either side meanwhile
    meetings: tuple[Meeting, ...] = ()
    version: int = 1

    def participant(self, side: Side) -> str:
        """The participant on that side."""
        return self.mentee_id if side == "mentee" else self.mentor_id

    def institution(self, side: Side) -> str:
        """That side's institution."""
        return self.mentee_institution_id if side == "mentee" else self.mentor_institution_id

    @property
    def is_open(self) -> bool:
        """Still holds the mentee and one of the mentor's places."""
        return self.state in OPEN_STATES

    @property
    def excludes_pair(self) -> bool:
        """Never propose these two again: one declined, they stopped in the trial, or coordinators closed it."""
        return self.state == "declined" or self.end_reason in ("trial", "coordinators")

    def next_due(self) -> datetime | None:
        """When the scheduler next has something to do for this pair (None: nothing, or not while paused)."""
        if self.paused_at is not None:
            return None
        if self.state == "proposed":
            remind_at = None if self.reminded else after(self.proposed_at, self.timing.reminder_after)
            return min(t for t in (remind_at, self.reply_by) if t is not None)
        if self.state == "mentoring":
            if self.term_reply_by is not None:
                return self.term_reply_by
            return self.term_ends_at if self.follow_up_sent else min(self.follow_up_at, self.term_ends_at)
        if self.owes_follow_up:
            return self.follow_up_at
        return None

    @property
    def owes_follow_up(self) -> bool:
        """A partnership that started and ended before its follow-up point: the follow-up still comes."""
        return self.state == "ended" and self.started_at is not None and not self.follow_up_sent


Change = tuple[Pair, list[Event]]


def _ids(pair: Pair) -> dict[str, str]:
    return picked(pair, "pair_id", "programme_id", "mentee_id", "mentor_id")


def _follow_up(pair: Pair, *, still_mentoring: bool) -> ev.SixMonthsElapsed:
    return ev.SixMonthsElapsed(
        **_ids(pair), started_at=pair.started_at, follow_up_at=pair.follow_up_at, still_mentoring=still_mentoring
    )


def propose(pair: Pair, now: datetime, links: dict[Side, ProposalLinks]) -> Change:
    """Both places are held: ask both sides (MatchProposed)."""
    if pair.state != "held":
        return pair, []
    proposed = replace(pair, state="proposed", proposed_at=now, reply_by=after(now, pair.timing.reply_within))
    event = ev.MatchProposed(
        **_ids(pair),
        mentee_institution_id=pair.mentee_institution_id,
        mentor_institution_id=pair.mentor_institution_id,
        **asdict(pair.explanation),  # the event speaks the explanation's own fields
        reply_by=proposed.reply_by,
        mentee_links=links["mentee"],
        mentor_links=links["mentor"],
    )
    return proposed, [event]


def answer(pair: Pair, side: Side, accept: bool, now: datetime, reason: str | None = None) -> Change:
    """One side's answer; both accepted starts the partnership, a decline ends the proposal."""
    if pair.state != "proposed":
        raise StateConflict("pair_id", "open-proposal", f"proposal {pair.pair_id} is no longer open ({pair.state})")
    _not_paused(pair)
    if now >= pair.reply_by:
        raise StateConflict("pair_id", "before-reply-by", f"proposal {pair.pair_id} expired at {pair.reply_by}")
    if side in pair.answers:
        raise StateConflict("side", "answer-once", f"the {side} already answered ({pair.answers[side]})")
    if not accept:
        declined = replace(pair, state="declined", answers=pair.answers | {side: "declined"}, decline_reason=reason)
        return declined, [ev.MatchDeclined(**_ids(pair), side=side, reason=reason)]
    accepted = replace(pair, answers=pair.answers | {side: "accepted"})
    events: list[Event] = [ev.MatchAccepted(**_ids(pair), side=side)]
    if len(accepted.answers) < len(SIDES):
        return accepted, events
    t = pair.timing
    started = replace(
        accepted,
        state="mentoring",
        started_at=now,
        trial_ends_at=after(now, t.trial_period),
        follow_up_at=after(now, t.follow_up_after),
        term_ends_at=after(now, t.term),
    )
    events.append(
        ev.MentoringStarted(
            **_ids(pair),
            mentee_institution_id=pair.mentee_institution_id,
            mentor_institution_id=pair.mentor_institution_id,
            started_at=now,
            trial_ends_at=started.trial_ends_at,
            follow_up_at=started.follow_up_at,
            term_ends_at=started.term_ends_at,
        )
    )
    return started, events


def end(pair: Pair, reason: EndReason, now: datetime, side: Side | None = None) -> Change:
    """End a partnership (or, on withdrawal or by coordinators, a proposal); the mentor's place is free again."""
    stage = "mentoring" if pair.state == "mentoring" else "proposal"
    if not pair.is_open or (stage == "proposal" and reason not in ("withdrawn", "coordinators")):
        raise StateConflict("pair_id", "active-match", f"pair {pair.pair_id} is not an active match ({pair.state})")
    if reason == "trial" and now >= pair.trial_ends_at:
        raise RuleBroken("reason", "within-trial", f"the trial period ended at {pair.trial_ends_at}")
    ended = replace(pair, state="ended", ended_at=now, end_reason=reason, ended_by=side, paused_at=None)
    return ended, [ev.MatchEnded(**_ids(pair), reason=reason, stage=stage, ended_by=side)]


def decide_term(pair: Pair, side: Side, extend: bool, now: datetime) -> Change:
    """At the term's end each side says extend or conclude: both extend → one more term; one concludes → ended."""
    if pair.state != "mentoring" or pair.term_reply_by is None:
        raise StateConflict("pair_id", "term-ended", f"pair {pair.pair_id} is not at the end of its term")
    _not_paused(pair)
    if not extend:
        return end(pair, "completed", now, side)
    votes = tuple(dict.fromkeys((*pair.extend_votes, side)))
    if len(votes) < len(SIDES):
        return replace(pair, extend_votes=votes), []
    term_ends_at = after(pair.term_ends_at, pair.timing.term)
    extended = replace(pair, term_ends_at=term_ends_at, term_reply_by=None, extend_votes=())
    return extended, [ev.MatchExtended(**_ids(pair), term_ends_at=term_ends_at)]


def tick(pair: Pair, now: datetime, links: dict[Side, ProposalLinks]) -> Change:
    """What the passing of time does: remind, expire, the follow-up point, the term's end."""
    if pair.state == "proposed":
        awaiting = [side for side in SIDES if side not in pair.answers]
        if now >= pair.reply_by:
            who = awaiting[0] if len(awaiting) == 1 else None
            expired = replace(pair, state="declined", decline_reason="expired")
            return expired, [ev.MatchDeclined(**_ids(pair), side=who, expired=True, reason="no answer in time")]
        if not pair.reminded and now >= after(pair.proposed_at, pair.timing.reminder_after):
            reminder = ev.MatchProposalReminder(
                **_ids(pair),
                awaiting=awaiting,
                reply_by=pair.reply_by,
                mentee_links=links["mentee"],
                mentor_links=links["mentor"],
            )
            return replace(pair, reminded=True), [reminder]
    if pair.owes_follow_up and now >= pair.follow_up_at:
        # The evaluation asks everyone whose partnership started, including pairs that ended early.
        followed_up = replace(pair, follow_up_sent=True)
        return followed_up, [_follow_up(followed_up, still_mentoring=False)]
    if pair.state == "mentoring":
        events: list[Event] = []
        if not pair.follow_up_sent and now >= pair.follow_up_at:
            pair = replace(pair, follow_up_sent=True)
            events.append(_follow_up(pair, still_mentoring=True))
        if pair.term_reply_by is not None and now >= pair.term_reply_by:
            ended, ending = end(pair, "completed", now)
            return ended, events + ending
        if pair.term_reply_by is None and now >= pair.term_ends_at:
            pair = replace(pair, term_reply_by=after(now, pair.timing.reply_within))
            events.append(
                ev.MentoringTermEnded(**_ids(pair), term_ended_at=pair.term_ends_at, reply_by=pair.term_reply_by)
            )
        return pair, events
    return pair, []


def pause(pair: Pair, now: datetime) -> Change:
    """Coordinators pause an open pair (after a concern): no reminder, lapse or term step until resumed."""
    if not pair.is_open or pair.state == "held":
        raise StateConflict("pair_id", "active-match", f"pair {pair.pair_id} is not an active match ({pair.state})")
    if pair.paused_at is not None:
        return pair, []
    return replace(pair, paused_at=now), [ev.MatchPaused(**_ids(pair))]


def resume(pair: Pair, now: datetime) -> Change:
    """Coordinators resume a paused pair; whatever fell due meanwhile happens now."""
    if pair.paused_at is None or not pair.is_open:
        return pair, []
    return replace(pair, paused_at=None), [ev.MatchResumed(**_ids(pair))]


def _not_paused(pair: Pair) -> None:
    if pair.paused_at is not None:
        raise StateConflict(
            "pair_id", "not-paused", "the scheme's coordinators paused this pair; they will be in touch"
        )


def record_meeting(pair: Pair, side: Side, held_on: date, notes: str | None, now: datetime, meeting_id: str) -> Change:
    """A meeting of the partnership, once per day whichever side records it (MeetingRecorded).

    The first meeting is the trial: recording it ends the trial, so from then on the partnership
    is ended as abandoned or completed, no longer as a trial. Before it, either side may still end
    it as a trial within the programme's window.
    """
    if pair.state != "mentoring":
        raise StateConflict("pair_id", "mentoring", f"pair {pair.pair_id} is not a partnership in progress")
    _not_paused(pair)
    if held_on > now.date() or held_on < pair.started_at.date():
        raise RuleBroken("held_on", "during-partnership", "a meeting is recorded on or after the start, up to today")
    if any(m.held_on == held_on for m in pair.meetings):
        raise StateConflict("held_on", "once-per-day", f"a meeting on {held_on.isoformat()} is already recorded")
    first = not pair.meetings
    meeting = Meeting(meeting_id, held_on, side, now, notes)
    recorded = replace(
        pair,
        meetings=tuple(sorted((*pair.meetings, meeting), key=lambda m: m.held_on)),
        trial_ends_at=min(pair.trial_ends_at, now) if first else pair.trial_ends_at,
    )
    event = ev.MeetingRecorded(
        **_ids(pair), held_on=held_on, meetings=len(recorded.meetings), trial_ended=first and now < pair.trial_ends_at
    )
    return recorded, [event]
