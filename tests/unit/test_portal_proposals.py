"""The proposal page's content from matching's view of an answer link: pure, no I/O."""

from typing import Any

from aimms_portal.domain.proposals import proposal


def view(side: str = "mentee", state: str = "proposed", **pair: Any) -> dict[str, Any]:
    return {
        "side": side,
        "action": "accept",
        "proposal": {
            "state": state,
            "answers": {},
            "choice_rank": 2,
            "fallback_reason": None,
            "shared_interests": ["global-health"],
            "seniority_gap": 2,
            "components": {"background": 1.0},
            "mentee_institution_id": "a",
            "mentor_institution_id": "b",
            "reply_by": "2026-12-19T21:01:27.560000Z",
        }
        | pair,
        "proposed": {
            "job_title": "Professor",
            "seniority": "professor",
            "pathway": "clinical",
            "research_interests": ["global-health", "medical-education"],
            "offers": None,
        },
    }


def test_a_mentee_sees_her_mentor_and_why_in_words() -> None:
    shown = proposal(view())
    assert shown.headline == "Your proposed mentor" and shown.answerable and shown.status is None
    assert ("Research interests", "global health, medical education") in shown.profile
    assert "Offers" not in dict(shown.profile)
    assert shown.reasons == [
        "She was your second choice.",
        "You share research interests: global health.",
        "She is 2 career stages further on.",
        "You work at different institutions, which the scheme favours.",
    ]
    assert shown.reply_by == "19 December 2026"


def test_the_shared_background_is_never_shown() -> None:
    """A background in common is part of the score, but naming it would disclose special category data."""
    shown = proposal(view())
    assert not any("background" in reason.lower() for reason in shown.reasons)


def test_a_mentor_is_told_she_was_chosen_and_a_fallback_is_explained() -> None:
    assert proposal(view("mentor")).reasons[0] == "You were her second choice."
    fallback = proposal(view(choice_rank=None, fallback_reason="choices-full")).reasons[0]
    assert fallback.startswith("The mentors you named had no place left")


def test_the_giving_side_is_called_what_the_programme_calls_it() -> None:
    sponsored = view(choice_rank=None, fallback_reason="choices-declined") | {"giver": "ally"}
    shown = proposal(sponsored)
    assert shown.headline == "Your proposed ally" and shown.other_role == "ally"
    assert shown.reasons[0].startswith("An ally you named declined before")
    assert proposal(sponsored | {"side": "mentor"}).headline == "A mentee proposed to you"


def test_an_answered_or_closed_proposal_offers_no_button() -> None:
    answered = proposal(view(answers={"mentee": "accepted"}))
    assert not answered.answerable and answered.status == "You already accepted this proposal."
    declined = proposal(view(state="declined"))
    assert not declined.answerable and "declined" in declined.status
    gone = view()
    gone["proposed"] = None
    assert not proposal(gone).answerable


def test_a_pair_proposed_by_hand_opens_with_the_coordinators_reason() -> None:
    shown = proposal(view(round="manual", choice_rank=None, note="You both run stroke trials"))
    assert shown.reasons[0] == "The scheme's coordinators chose this match: You both run stroke trials"
