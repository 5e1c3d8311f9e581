"""Answering a proposal from the email's signed links (API and a plain page)."""

from typing import Annotated, Literal

from fastapi import Form
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from aimms_matching.routes.deps import Matching
from aimms_matching.routes.directory import Profile
from aimms_matching.routes.pairs import PairOut
from aimms_shared.contracts.matching import Side
from aimms_shared.http import api_router, page, problem_responses
from aimms_shared.mapping import carried_over
from aimms_shared.ratelimit import emailed_link_limit

router = api_router("answer links", dependencies=[emailed_link_limit()])


class LinkedProposal(BaseModel):
    """What an answer link stands for: her side, the answer it gives, the proposal and the other side."""

    side: Side
    action: Literal["accept", "decline"]
    proposal: PairOut
    proposed: Profile | None = Field(description="The other side's profile; null once she left the scheme.")
    giver: str = Field(description="What the programme calls its giving side: mentor, sponsor or ally.")


class LinkAnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=2000, description="Why she declines (optional).")


@router.get("/answer-links/{token}", response_model=LinkedProposal, responses=problem_responses(404))
async def linked_proposal(token: str, matching: Matching) -> LinkedProposal:
    """The proposal behind an emailed answer link, for a page to show before she confirms (the link is the key)."""
    pair, side, action, other, giver = await matching.proposal_by_link(token)
    return LinkedProposal(
        side=side,
        action=action,
        proposal=PairOut.of_pair(pair),
        proposed=carried_over(Profile, other) if other else None,
        giver=giver,
    )


@router.post("/answer-links/{token}", response_model=PairOut, responses=problem_responses(404, 409))
async def answer_through_link(token: str, body: LinkAnswerIn, matching: Matching) -> PairOut:
    """Give the answer the link stands for; a side answers once (409 after that, or once the proposal lapsed)."""
    pair, _ = await matching.answer_by_link(token, body.reason or None)
    return PairOut.of_pair(pair)


@router.get("/answers/{token}", response_class=HTMLResponse)
async def answer_page(token: str, matching: Matching) -> HTMLResponse:
    """The page an email link opens: one button, so a mail scanner following links answers nothing."""
    _, _, action = matching.links.read(token)
    reason = '<p><label>Reason (optional)<br><textarea name="reason" rows="3" cols="40"></textarea></label></p>'
    body = f'<form method="post">{reason if action == "decline" else ""}<button>Confirm: {action}</button></form>'
    return page(f"{action.capitalize()} this mentoring proposal", body)


@router.post("/answers/{token}", response_class=HTMLResponse)
async def answer_by_link(token: str, matching: Matching, reason: Annotated[str | None, Form()] = None) -> HTMLResponse:
    """Record the answer the link stands for; a link works once (a refusal is a page in words)."""
    _, accepted = await matching.answer_by_link(token, reason or None)
    done = "You accepted the proposal. We will introduce you both" if accepted else "You declined the proposal"
    return page("Thank you", f"<p>{done}.</p>")
