"""Registration use cases: load, decide with the domain, store state and events in one write."""

import uuid
from collections.abc import Callable

from aimms_registration import domain
from aimms_registration.store import RegistrationStore
from aimms_shared.events import wrap
from aimms_shared.mongo import utcnow
from aimms_shared.outbox import outbox_entry

PRODUCER = "registration"


async def express_interest(
    store: RegistrationStore, submission: domain.InterestSubmission, *, on_events: Callable[[], None]
) -> tuple[str, bool]:
    """Record an expression of interest and raise InterestExpressed; return (interest id, created)."""
    institution = await store.institution(submission.institution_id)
    programme = await store.programme(submission.programme_id)
    interest, event = domain.express_interest(
        submission, institution, programme, interest_id=str(uuid.uuid4()), now=utcnow()
    )
    envelope = wrap(event, producer=PRODUCER, institution_id=interest.institution_id)
    interest_id, created = await store.add_interest(interest, [outbox_entry(event, envelope)])
    if created:
        on_events()
    return interest_id, created
