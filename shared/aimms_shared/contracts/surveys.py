"""Events the surveys service produces. None carries an answer.

An invitation names who to ask and carries her single-use link, so notifications can deliver it;
a completed survey is announced without saying who answered, so responses stay anonymous.
"""

from typing import Literal

from pydantic import AwareDatetime, Field

from aimms_shared.contracts.registration import Role
from aimms_shared.events import Event, Topic, contract

INVITATIONS = Topic("surveys.invitations")
RESPONSES = Topic("surveys.responses")

Wave = Literal["baseline", "follow_up"]


class _InvitationEvent(Event, topic=INVITATIONS, key="invitation_id"):
    invitation_id: str
    participant_id: str
    programme_id: str
    wave: Wave
    role: Role
    link: str = Field(description="Her single-use questionnaire link; it carries the token, so treat it as secret.")
    expires_at: AwareDatetime


@contract
class SurveyInvitationIssued(_InvitationEvent):
    """She is asked to answer a questionnaire (baseline or follow-up) as mentor or mentee."""


@contract
class SurveyReminderIssued(_InvitationEvent):
    """Her invitation is still unanswered: the n-th reminder, with a fresh link (earlier links still work)."""

    reminder: int = Field(ge=1)


@contract
class SurveyCompleted(Event, topic=RESPONSES, key="programme_id"):
    """Someone answered a questionnaire; deliberately not who, and no answers."""

    programme_id: str
    wave: Wave
    role: Role
    questionnaire_version: int
