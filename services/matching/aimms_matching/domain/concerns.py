"""Safeguarding concerns, free of I/O: one side of a pair tells the coordinators, and only them.

What she writes is kept for the coordinators alone: the event that alerts them says where to read
it, never what it says, and nothing of it reaches the other side. Coordinators close a concern
with an outcome: no action, the pair paused, or the pair ended.
"""

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from aimms_matching.domain.pairs import Pair
from aimms_shared.contracts.matching import ConcernRaised, Side
from aimms_shared.errors import StateConflict

Asks = Literal["advice", "pause", "end"]
Outcome = Literal["no-action", "paused", "ended"]


@dataclass(frozen=True)
class Concern:
    concern_id: str
    pair_id: str
    programme_id: str
    raised_by: Side
    participant_id: str
    text: str
    asks: Asks
    raised_at: datetime
    closed_at: datetime | None = None
    outcome: Outcome | None = None
    note: str | None = None  # the coordinators' record of what they did
    version: int = 1

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


def raise_concern(
    pair: Pair, side: Side, text: str, asks: Asks, *, concern_id: str, now: datetime, review_url: str
) -> tuple[Concern, ConcernRaised]:
    """Her concern about a pair she is, or was, part of, and the alert to the coordinators."""
    if pair.state == "held":
        raise StateConflict("pair_id", "proposed-pair", "this pair is still being proposed; try again shortly")
    concern = Concern(
        concern_id=concern_id,
        pair_id=pair.pair_id,
        programme_id=pair.programme_id,
        raised_by=side,
        participant_id=pair.participant(side),
        text=text,
        asks=asks,
        raised_at=now,
    )
    alert = ConcernRaised(
        concern_id=concern_id, pair_id=pair.pair_id, programme_id=pair.programme_id, asks=asks, review_url=review_url
    )
    return concern, alert


def close(concern: Concern, outcome: Outcome, note: str | None, now: datetime) -> Concern:
    """The coordinators' decision, recorded once."""
    if not concern.is_open:
        raise StateConflict("concern_id", "open-concern", f"this concern was already closed ({concern.outcome})")
    return replace(concern, closed_at=now, outcome=outcome, note=note)
