"""Ideas for change, free of I/O: what reverse-mentoring pairs propose, read by the programme's leads
without names.

An idea is kept without the pair's or anyone's id: only a keyed token of the pair, so that the leads'
report can tell how many pairs contributed and withhold everything until enough have, and the month
it was recorded. Nothing in the report points to a pair or a person.
"""

from dataclasses import dataclass
from datetime import datetime

from aimms_matching.domain.pairs import Pair
from aimms_shared.errors import RuleBroken, StateConflict

# Fewer pairs than this, and who proposed what could be guessed: the report shows no idea.
MIN_PAIRS = 3


@dataclass(frozen=True)
class Idea:
    programme_id: str
    text: str
    month: str  # "2026-12": no finer, so the day cannot point to a pair
    pair_token: str


def record(pair: Pair, text: str, *, programme_asks: bool, pair_token: str, now: datetime) -> Idea:
    """An idea from a partnership of a programme that asks for them."""
    if not programme_asks:
        raise RuleBroken("programme_id", "ideas-for-change", "this programme does not collect ideas for change")
    if pair.state != "mentoring":
        raise StateConflict("pair_id", "mentoring", "ideas are recorded during a partnership")
    return Idea(pair.programme_id, text, now.strftime("%Y-%m"), pair_token)


def report(ideas: list[Idea]) -> dict[str, object]:
    """The leads' view: ideas and months only, newest first, withheld until MIN_PAIRS pairs contributed."""
    pairs = len({i.pair_token for i in ideas})
    shown = pairs >= MIN_PAIRS
    return {
        "pairs": pairs,
        "withheld": not shown,
        "ideas": [
            {"text": i.text, "month": i.month} for i in sorted(ideas, key=lambda i: (i.month, i.text), reverse=True)
        ]
        if shown
        else [],
    }
