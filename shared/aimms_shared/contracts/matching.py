"""Events the matching service produces."""

from datetime import date
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from aimms_shared.events import Event, Topic, contract

PREFERENCES = Topic("matching.preferences")


@contract
class MentorPreferencesSubmitted(Event, topic=PREFERENCES, key="mentee_id"):
    """A mentee named (or changed) her ranked mentor choices, at most three."""

    mentee_id: str
    programme_id: str
    institution_id: str
    choices: list[str]


PAIRS = Topic("matching.pairs")

Side = Literal["mentee", "mentor"]


class ProposalLinks(BaseModel):
    """Signed, single-use links by which one side answers from her email."""

    model_config = ConfigDict(frozen=True)

    accept: str
    decline: str


class _PairEvent(Event, topic=PAIRS, key="pair_id"):
    pair_id: str
    programme_id: str
    mentee_id: str
    mentor_id: str


@contract
class MatchProposed(_PairEvent):
    """A mentor was proposed to a mentee; both are asked to accept or decline by `reply_by`."""

    mentee_institution_id: str
    mentor_institution_id: str
    round: Literal["stable", "residual", "rolling", "manual"] = Field(
        description="manual: a coordinator proposed the pair by hand, for the reason in `note`."
    )
    choice_rank: int | None = Field(description="1-3: her n-th named choice; null: a fallback by score.")
    fallback_reason: str | None
    score: float
    components: dict[str, float] = Field(
        default_factory=dict,
        description="The score's parts, each 0-1: seniority, interests, other_institution, background (both asked "
        "to be matched by background and describe the same one), pathway (the same career pathway).",
    )
    shared_interests: list[str]
    seniority_gap: int
    note: str | None = Field(default=None, description="A coordinator's reason for a pair proposed by hand.")
    reply_by: AwareDatetime
    mentee_links: ProposalLinks
    mentor_links: ProposalLinks


@contract
class MatchProposalReminder(_PairEvent):
    """A proposal is still unanswered by the sides named; it expires at `reply_by`."""

    awaiting: list[Side]
    reply_by: AwareDatetime
    mentee_links: ProposalLinks
    mentor_links: ProposalLinks


@contract
class MatchAccepted(_PairEvent):
    """One side accepted the proposal."""

    side: Side


@contract
class MatchDeclined(_PairEvent):
    """A side declined (or let the proposal expire): the pair is never proposed again."""

    side: Side | None = Field(description="Who declined; null when neither answered before it expired.")
    expired: bool = False
    reason: str | None = None


@contract
class MentoringStarted(_PairEvent):
    """Both accepted: the partnership starts; the first meeting is a trial."""

    mentee_institution_id: str
    mentor_institution_id: str
    started_at: AwareDatetime
    trial_ends_at: AwareDatetime
    follow_up_at: AwareDatetime
    term_ends_at: AwareDatetime


@contract
class SixMonthsElapsed(_PairEvent):
    """The programme's follow-up point of a partnership passed (six months unless the programme says otherwise).

    Raised for every partnership that started, also one that ended early: the evaluation asks them all.
    """

    started_at: AwareDatetime
    follow_up_at: AwareDatetime
    still_mentoring: bool = Field(default=True, description="False when the partnership ended before this point.")


@contract
class MentoringTermEnded(_PairEvent):
    """The term is over: both are asked to extend or conclude by `reply_by`; silence concludes it."""

    term_ended_at: AwareDatetime
    reply_by: AwareDatetime


@contract
class MatchExtended(_PairEvent):
    """Both agreed to go on for another term."""

    term_ends_at: AwareDatetime


# coordinators: the scheme's coordinators closed it (after a concern, for instance).
EndReason = Literal["trial", "abandoned", "completed", "withdrawn", "coordinators"]


@contract
class MatchEnded(_PairEvent):
    """A proposal or partnership ended; the mentor's place is free again."""

    reason: EndReason
    stage: Literal["proposal", "mentoring"]
    ended_by: Side | None = None


@contract
class MatchPaused(_PairEvent):
    """Coordinators paused a proposal or partnership: nothing is asked of either side until resumed."""


@contract
class MatchResumed(_PairEvent):
    """Coordinators resumed a paused proposal or partnership."""


@contract
class MeetingRecorded(_PairEvent):
    """A side recorded a meeting of the partnership (never its notes, which stay with the pair)."""

    held_on: date
    meetings: int = Field(description="Meetings recorded so far, this one included.")
    trial_ended: bool = Field(description="This first meeting ended the trial: ending as a trial is over.")


CONCERNS = Topic("matching.concerns")


@contract
class ConcernRaised(Event, topic=CONCERNS, key="pair_id"):
    """One side of a pair raised a safeguarding concern; the programme's coordinators are told at once.

    What she wrote stays in matching's store, for coordinators only: the event says where to read it,
    never what it says, and nothing of it reaches the other side.
    """

    concern_id: str
    pair_id: str
    programme_id: str
    asks: Literal["advice", "pause", "end"] = Field(description="What she asks the coordinators to do.")
    review_url: str = Field(description="The coordinators' page where the concern is read and acted on.")


WAITING = Topic("matching.waiting")


@contract
class MenteeUnplaced(Event, topic=WAITING, key="mentee_id"):
    """Matching tried a waiting mentee one by one and found no mentor with a place free who fits her.

    Once per wait (a newcomer, or after each proposal that closed): coordinators are told, and may
    propose a mentor by hand from the waiting list the event links to.
    """

    mentee_id: str
    programme_id: str
    institution_id: str
    waiting_url: str = Field(description="The coordinators' page of the programme's waiting mentees.")


CIRCLES = Topic("matching.circles")
CircleRole = Literal["peer", "facilitator"]


class CircleMember(BaseModel):
    """One member of a circle, and what she is told of why she is in it."""

    model_config = ConfigDict(frozen=True)

    participant_id: str
    institution_id: str
    role: CircleRole
    shared_interests: list[str] = Field(description="Her interests that others in the circle hold too.")


class _CircleEvent(Event, topic=CIRCLES, key="circle_id"):
    circle_id: str
    programme_id: str


@contract
class CircleFormed(_CircleEvent):
    """A mentoring circle was formed: 4-8 peers of alike career stage and interests, from more than one
    institution, and a facilitator where one was free. Every member is introduced to the others."""

    members: list[CircleMember] = Field(description="The peers, then the facilitator if there is one.")
    shared_interests: list[str] = Field(description="Interests two or more of its peers hold.")
    stages: list[str] = Field(description="The lowest and highest career stage of its peers.")
    formed_at: AwareDatetime
    follow_up_at: AwareDatetime


@contract
class CircleMemberLeft(_CircleEvent):
    """A member left the circle (withdrew or was erased); the others go on."""

    participant_id: str
    role: CircleRole
    remaining: list[str] = Field(description="Ids of the members still in the circle.")


@contract
class CircleFollowUpDue(_CircleEvent):
    """The circle reached the programme's follow-up point: its members are asked how it went."""

    members: list[CircleMember] = Field(description="The members still in the circle.")
    formed_at: AwareDatetime
    follow_up_at: AwareDatetime
