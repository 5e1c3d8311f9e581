"""Events the registration service produces."""

from typing import ClassVar

from pydantic import EmailStr

from aimms_shared.events import Event, Topic, contract

INTERESTS = Topic("registration.interests")


@contract
class InterestExpressed(Event):
    """Someone eligible asked to join a programme; she is owed the welcome pack."""

    event_type: ClassVar[str] = "InterestExpressed"
    topic: ClassVar[Topic] = INTERESTS
    key_field: ClassVar[str] = "interest_id"

    interest_id: str
    name: str
    email: EmailStr
    institution_id: str
    institution_name: str
    programme_id: str
    programme_name: str
