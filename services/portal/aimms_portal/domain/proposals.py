"""A proposal, as matching shows it to the side an answer link belongs to, in a participant's words.

Pure: no I/O. Matching knows profiles, never names or contact details: the email that carried the
link names the other person; this page says who she is professionally and why she was proposed.
The background component of the score is never shown: it would disclose special category data.
"""

from dataclasses import dataclass
from typing import Any

from aimms_portal.domain.words import day, label, listed, with_article

ORDINALS = {1: "first", 2: "second", 3: "third"}
# {giver} is what the programme calls its giving side: mentor, sponsor or ally.
FALLBACKS = {
    "no-choices": "You did not name {giver}s, so the scheme proposed the best-fitting {giver} with a place free.",
    "choices-full": "The {giver}s you named had no place left, so the scheme proposed the best fit with a place free.",
    "choices-declined": "{A_giver} you named declined before, so the scheme proposed the best fit with a place free.",
    "choices-ineligible": "The {giver}s you named could not take you on in this programme, so the scheme proposed "
    "the best fit with a place free.",
}
STATES = {
    "declined": "This proposal was declined, so it is closed.",
    "mentoring": "You both accepted: your mentoring has started.",
    "ended": "This proposal is closed.",
    "held": "This proposal is being prepared.",
}


@dataclass(frozen=True)
class Proposal:
    """What the proposal page shows."""

    action: str  # "accept" | "decline": what the link's button does
    side: str
    other_role: str
    headline: str
    profile: list[tuple[str, str]]  # (label, value) rows
    reasons: list[str]
    reply_by: str | None
    answerable: bool
    status: str | None  # why she cannot answer, or her answer already recorded


def proposal(view: dict[str, Any]) -> Proposal:
    """The page for matching's `GET /answer-links/{token}` answer."""
    side, pair, other, giver = view["side"], view["proposal"], view.get("proposed"), view.get("giver", "mentor")
    other_role = giver if side == "mentee" else "mentee"
    headline = f"Your proposed {other_role}" if side == "mentee" else "A mentee proposed to you"
    answered = pair["answers"].get(side)
    if pair["state"] == "proposed" and answered:
        status = f"You already {answered} this proposal."
    elif pair["state"] == "proposed" and other is None:
        status = "The other person has left the scheme, so this proposal will close."
    else:
        status = None if pair["state"] == "proposed" else STATES.get(pair["state"], STATES["ended"])
    return Proposal(
        action=view["action"],
        side=side,
        other_role=other_role,
        headline=headline,
        profile=_profile(other) if other else [],
        reasons=_reasons(side, pair, giver),
        reply_by=day(pair.get("reply_by")),
        answerable=status is None,
        status=status,
    )


def _profile(other: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("Role", other["job_title"]),
        ("Career stage", label(other["seniority"])),
        ("Pathway", label(other["pathway"])),
        ("Research interests", listed(other["research_interests"]) or "None given"),
    ]
    if other.get("offers"):
        rows.append(("Offers", other["offers"]))
    return rows


def _reasons(side: str, pair: dict[str, Any], giver: str) -> list[str]:
    """Why these two, from the explanation matching recorded when it proposed them."""
    reasons = []
    if pair.get("note"):
        reasons.append(f"The scheme's coordinators chose this match: {pair['note']}")
    rank = pair.get("choice_rank")
    if rank:
        nth = ORDINALS.get(rank, f"number {rank}")
        reasons.append(f"She was your {nth} choice." if side == "mentee" else f"You were her {nth} choice.")
    elif side == "mentee" and pair.get("fallback_reason") in FALLBACKS:
        reasons.append(FALLBACKS[pair["fallback_reason"]].format(giver=giver, A_giver=with_article(giver).capitalize()))
    if pair.get("shared_interests"):
        reasons.append(f"You share research interests: {listed(pair['shared_interests'])}.")
    gap = pair.get("seniority_gap") or 0
    if gap >= 1:
        senior = "She is" if side == "mentee" else "You are"
        reasons.append(f"{senior} {gap} career stage{'s' if gap > 1 else ''} further on.")
    if pair["mentee_institution_id"] != pair["mentor_institution_id"]:
        reasons.append("You work at different institutions, which the scheme favours.")
    return reasons
