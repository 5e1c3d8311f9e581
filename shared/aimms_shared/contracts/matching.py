"""Events the matching service produces."""

from typing import ClassVar

from aimms_shared.events import Event, Topic, contract

PREFERENCES = Topic("matching.preferences")


@contract
class MentorPreferencesSubmitted(Event):
    """A mentee named (or changed) her ranked mentor choices, at most three."""

    event_type: ClassVar[str] = "MentorPreferencesSubmitted"
    topic: ClassVar[Topic] = PREFERENCES
    key_field: ClassVar[str] = "mentee_id"

    mentee_id: str
    programme_id: str
    institution_id: str
    choices: list[str]
