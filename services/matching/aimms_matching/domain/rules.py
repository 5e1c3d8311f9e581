"""Matching's rules outside the engine, free of I/O: who is a mentor or mentee, and valid choices."""

import math
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime

from aimms_matching.domain import engine
from aimms_matching.domain.pairs import Pair, Timing
from aimms_shared.contracts.registration import MatchingPolicy, giver_of, gives
from aimms_shared.errors import Missing, RuleBroken, StateConflict

MAX_CHOICES = engine.MAX_CHOICES


@dataclass(frozen=True)
class ProgrammeRules:
    """What matching needs of a programme (from ProgrammeOpened / ProgrammeUpdated)."""

    programme_id: str
    seniority_scale: tuple[str, ...]
    mentor_more_senior: bool
    default_mentor_capacity: int
    max_mentor_capacity: int
    term: str
    follow_up_after: str
    matching: MatchingPolicy = MatchingPolicy()
    ideas_for_change: bool = False  # pairs record ideas for change (reverse mentoring)
    kind: str = "pairs"  # or "circles": 4-8 peers with a facilitator
    roles_offered: tuple[str, ...] = ("mentor", "mentee")

    @property
    def giver(self) -> str:
        """Who gives the programme's support: mentor, sponsor or ally."""
        return giver_of(self.roles_offered)

    def rank(self, seniority: str) -> int:
        """A level's position on the scale (0 = most junior); unknown levels count as most junior."""
        return self.seniority_scale.index(seniority) if seniority in self.seniority_scale else 0

    def may_mentor(self, mentor: "Member", mentee: "Member") -> bool:
        """Seniority in the programme's direction: mentor more senior (inverted for reverse mentoring)."""
        return self._gap(mentor, mentee) >= 1

    def far_enough(self, mentor: "Member", mentee: "Member") -> bool:
        """The programme's least gap for any pair (sponsors need standing to advocate); none by default."""
        least = self.matching.min_seniority_gap
        return least == 0 or self._gap(mentor, mentee) >= least

    def _gap(self, mentor: "Member", mentee: "Member") -> int:
        """Levels from mentee to mentor in the programme's direction (negative: the wrong way)."""
        gap = self.rank(mentor.seniority) - self.rank(mentee.seniority)
        return gap if self.mentor_more_senior else -gap

    def timing(self) -> Timing:
        """The durations a pair proposed now lives by."""
        m = self.matching
        return Timing(m.reply_within, m.reminder_after, m.trial_period, self.term, self.follow_up_after)

    def policy(self) -> engine.Policy:
        """The engine's view of the programme's matching settings."""
        m, w = self.matching, self.matching.weights
        return engine.Policy(
            mentor_more_senior=self.mentor_more_senior,
            preferred_gap=m.preferred_seniority_gap,
            weights=engine.Weights(w.seniority, w.interests, w.other_institution, w.background, w.pathway),
            fallback_candidates=m.fallback_candidates,
            residual_candidates=m.residual_candidates,
            choices_by_seniority=m.choices_by_seniority,
        )

    def as_mentor(self, member: "Member") -> engine.Mentor:
        """A mentor as the engine sees her, with the places she already holds.

        Her background is registration's keyed hash, present only where she asked to be matched by it:
        the engine compares it and never learns the background itself.
        """
        return engine.Mentor(
            member.participant_id,
            member.institution_id,
            self.rank(member.seniority),
            frozenset(member.research_interests),
            member.mentor_capacity or 0,
            min(member.load, member.mentor_capacity or 0),
            background=member.background_token,
            pathway=member.pathway,
        )

    def as_mentee(self, member: "Member", choices: tuple[str, ...]) -> engine.Mentee:
        """A mentee as the engine sees her, with her ranked choices."""
        return engine.Mentee(
            member.participant_id,
            member.institution_id,
            self.rank(member.seniority),
            frozenset(member.research_interests),
            choices,
            background=member.background_token,
            pathway=member.pathway,
        )


@dataclass(frozen=True)
class Member:
    """A participant as matching knows her (from registration's events; no contact details). Her profile's
    free text comes apart, on the contacts topic, and may arrive after the rest."""

    participant_id: str
    programme_id: str
    institution_id: str
    roles: tuple[str, ...]
    seniority: str
    pathway: str
    research_interests: tuple[str, ...]
    mentor_capacity: int | None
    profile_published: bool
    background_matching: bool
    background_token: str | None = None  # registration's keyed hash of her background, only if she opted in
    job_title: str = ""
    offers: str | None = None
    answers: dict[str, str] = field(default_factory=dict)  # to the programme's own profile questions
    active: bool = True
    joined_at: datetime | None = None
    open_pair: str | None = None  # a mentee's proposal or partnership in progress
    load: int = 0  # a mentor's places held by proposals and partnerships
    done: bool = False  # a mentee whose partnership ran its course: not matched again

    @property
    def places_left(self) -> int:
        """A mentor's capacity not held by proposals or partnerships."""
        return max((self.mentor_capacity or 0) - self.load, 0)

    @property
    def is_waiting_mentee(self) -> bool:
        """An active mentee to be matched now."""
        return self.is_mentee and self.open_pair is None and not self.done

    @property
    def is_published_mentor(self) -> bool:
        """Mentees may choose her."""
        return self.active and gives(self.roles) and self.profile_published

    @property
    def is_mentee(self) -> bool:
        """She may name choices."""
        return self.active and "mentee" in self.roles


def check_choices(
    mentee: Member, choices: list[str], mentors: dict[str, Member], programme: ProgrammeRules
) -> tuple[str, ...]:
    """Her ranked choices, or the rule the first bad one breaks."""
    if not mentee.is_mentee:
        raise RuleBroken("participant_id", "active-mentee", "only an active mentee names mentor choices")
    if len(choices) > MAX_CHOICES:
        raise RuleBroken("choices", "at-most-three", f"name at most {MAX_CHOICES} mentors")
    if len(set(choices)) != len(choices):
        raise RuleBroken("choices", "distinct-choices", "each mentor may be named once")
    for position, mentor_id in enumerate(choices):
        field = f"choices.{position}"
        mentor = mentors.get(mentor_id)
        if mentor_id == mentee.participant_id:
            raise RuleBroken(field, "not-self", "she cannot choose herself")
        if mentor is None or not mentor.is_published_mentor or mentor.programme_id != mentee.programme_id:
            raise RuleBroken(field, "published-mentor", f"'{mentor_id}' is not a published mentor of the programme")
        if programme.matching.choices_by_seniority and not programme.may_mentor(mentor, mentee):
            raise RuleBroken(field, "eligible-seniority", f"'{mentor_id}' cannot mentor her at this seniority")
        if not programme.far_enough(mentor, mentee):
            raise RuleBroken(field, "seniority-gap", f"'{mentor_id}' is too close to her in seniority here")
    return tuple(choices)


def declared_conflicts(programme: ProgrammeRules, mentees: list[Member], mentors: list[Member]) -> set[tuple[str, str]]:
    """(mentee, mentor) pairs the programme rules out: same-school pairs where it says so, and pairs closer in
    seniority than its least gap."""
    conflicts = set()
    if not programme.matching.same_institution_allowed:
        by_institution: dict[str, list[str]] = {}
        for mentor in mentors:
            by_institution.setdefault(mentor.institution_id, []).append(mentor.participant_id)
        conflicts = {
            (mentee.participant_id, mentor_id)
            for mentee in mentees
            for mentor_id in by_institution.get(mentee.institution_id, ())
        }
    if programme.matching.min_seniority_gap:
        conflicts |= {
            (mentee.participant_id, mentor.participant_id)
            for mentee in mentees
            for mentor in mentors
            if not programme.far_enough(mentor, mentee)
        }
    return conflicts


# Why a mentee is still waiting, from her last proposal (if any) and whether rounds have begun.
WAITING_REASONS = {
    "no-round-yet": "No matching round has run for the programme yet.",
    # Matching tries a newcomer once, when she arrives; places freed or added later wait for a round.
    "no-place-free": "When matching last tried, no mentor with a place free fitted her.",
    "declined": "Her last proposal was declined, and no other mentor with a place free fits her.",
    "lapsed": "Her last proposal lapsed unanswered, and no other mentor with a place free fits her.",
    "ended-in-trial": "Her partnership ended after the trial meeting, and no other mentor fits her.",
    "partner-left": "Her mentor left the scheme, and no other mentor with a place free fits her.",
}


@dataclass(frozen=True)
class Waiting:
    """A mentee to be matched, and why she still waits."""

    mentee: Member
    reason: str  # a key of WAITING_REASONS
    choices: tuple[str, ...]
    last_proposed_at: datetime | None


def waiting_mentees(
    members: list[Member], pairs: list[Pair], choices: dict[str, tuple[str, ...]], rounds_begun: bool
) -> list[Waiting]:
    """Every waiting mentee, longest waiting first, with the reason coordinators act on."""
    last: dict[str, Pair] = {}
    for pair in sorted(pairs, key=lambda p: p.created_at):
        last[pair.mentee_id] = pair  # the newest wins
    waiting = []
    for mentee in (m for m in members if m.is_waiting_mentee):
        pair = last.get(mentee.participant_id)
        waiting.append(
            Waiting(
                mentee,
                _waiting_reason(pair, rounds_begun),
                choices.get(mentee.participant_id, ()),
                pair.proposed_at if pair else None,
            )
        )
    return sorted(waiting, key=lambda w: (w.mentee.joined_at is None, w.mentee.joined_at, w.mentee.participant_id))


def _waiting_reason(pair: Pair | None, rounds_begun: bool) -> str:
    if pair is None:
        return "no-place-free" if rounds_begun else "no-round-yet"
    if pair.state == "declined":
        return "lapsed" if pair.decline_reason == "expired" else "declined"
    if pair.end_reason == "trial":
        return "ended-in-trial"
    return "partner-left"


def manual_proposal(
    programme: ProgrammeRules,
    mentee: Member | None,
    mentor: Member | None,
    choices: tuple[str, ...],
    exclusions: set[tuple[str, str]],
) -> engine.Proposal:
    """A coordinator's pair, checked and explained like the engine's (round `manual`).

    The seniority rule only guides the engine's fallbacks, so a coordinator may pair across it, as
    a mentee may name any mentor; a pair declined before, or ended in its trial, is never proposed
    again, and a mentor with no place free cannot take one more.
    """
    if mentee is None or mentee.programme_id != programme.programme_id or not mentee.is_mentee:
        raise Missing("mentee_id", "mentee-in-programme", "no waiting mentee by that id in this programme")
    if not mentee.is_waiting_mentee:
        raise StateConflict("mentee_id", "waiting-mentee", "she already has a proposal or partnership, or finished one")
    if mentor is None or mentor.programme_id != programme.programme_id or not (mentor.active and gives(mentor.roles)):
        raise Missing("mentor_id", "mentor-in-programme", "no mentor by that id in this programme")
    if mentor.participant_id == mentee.participant_id:
        raise RuleBroken("mentor_id", "someone-else", "a mentee cannot be her own mentor")
    if mentor.places_left <= 0:
        raise StateConflict("mentor_id", "place-free", "this mentor has no place free")
    if not programme.far_enough(mentor, mentee):
        raise RuleBroken("mentor_id", "seniority-gap", "the programme needs a wider seniority gap between them")
    if (mentee.participant_id, mentor.participant_id) in exclusions:
        raise RuleBroken(
            "mentor_id", "not-declined-before", "these two were proposed before: declined or ended in trial"
        )
    policy = replace(programme.policy(), choices_by_seniority=False)
    as_mentee, as_mentor = programme.as_mentee(mentee, choices), programme.as_mentor(mentor)
    scored = engine.score_pair(as_mentee, as_mentor, policy, named=True)
    assert scored is not None  # named, with the seniority rule off: always scored
    rank = choices.index(mentor.participant_id) + 1 if mentor.participant_id in choices else None
    return engine.proposal_of("manual", as_mentee, as_mentor, scored, rank, None)


def _percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def matching_summary(pairs: list[Pair], joined: dict[str, datetime]) -> dict[str, object]:
    """Pairs by state and institution, how long mentees waited from joining to a partnership, and how
    often partnerships met (counts only: the meetings' notes are the pairs' own)."""
    by_state = Counter(p.state for p in pairs)
    by_institution: dict[str, Counter] = {}
    waits: list[float] = []
    for pair in pairs:
        for institution in {pair.mentee_institution_id, pair.mentor_institution_id}:
            by_institution.setdefault(institution, Counter())[pair.state] += 1
        start = joined.get(pair.mentee_id)
        if pair.started_at is not None and start is not None:
            waits.append((pair.started_at - start).total_seconds() / 86400)
    return {
        "pairs_by_state": dict(by_state),
        "pairs_by_institution": {name: dict(states) for name, states in sorted(by_institution.items())},
        "partnerships_started": len(waits),
        "days_to_match_median": _percentile(waits, 0.5),
        "days_to_match_p90": _percentile(waits, 0.9),
        "meetings": _meetings([len(p.meetings) for p in pairs if p.started_at is not None]),
    }


def _meetings(counts: list[int]) -> dict[str, object]:
    """Meetings per partnership that started: how many had each count, and the mean and range."""
    if not counts:
        return {"partnerships": 0, "mean": None, "min": None, "max": None, "by_count": {}}
    return {
        "partnerships": len(counts),
        "mean": round(sum(counts) / len(counts), 2),
        "min": min(counts),
        "max": max(counts),
        "by_count": {str(n): c for n, c in sorted(Counter(counts).items())},
    }
