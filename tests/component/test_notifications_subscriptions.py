"""Notifications' subscriptions on FastStream's in-memory broker: a circle's events, redelivered, queue each
member's email once and hand it to the delivery worker; the follow-up is left to surveys."""

from dataclasses import dataclass, field
from typing import Any

from faststream.kafka import KafkaBroker, TestKafkaBroker

from aimms_notifications import handlers
from aimms_notifications.domain import messages
from aimms_shared.contracts import matching as m
from aimms_shared.events import wrap
from tests.component.test_consumer_wiring import _no_dead_letters, consumer_of
from tests.factories import notifications_settings
from tests.fakes import FakeNotificationStore
from tests.unit.test_notifications_circles import EVERYONE
from tests.unit.test_notifications_templates import CIRCLE, circle_formed, member_left

SETTINGS = notifications_settings(sender="Peer Circles <circles@example.ac.uk>")


@dataclass
class HandedOver:
    """Stands in for the delivery worker: what the handlers hand it to send at once."""

    handed: list[dict[str, Any]] = field(default_factory=list)

    def hand(self, queued: list[dict[str, Any]]) -> None:
        self.handed += queued

    def nudge(self) -> None:
        pass


async def test_a_circles_events_queue_each_members_email_once_however_often_they_are_delivered() -> None:
    store, worker, broker = FakeNotificationStore(), HandedOver(), KafkaBroker()
    table = handlers.subscriptions(store, worker, SETTINGS)  # type: ignore[arg-type]
    consumer_of(table, broker, send=_no_dead_letters, max_attempts=1).bind()
    circle = circle_formed()
    formed, left = wrap(circle, producer="matching"), wrap(member_left("p-sara"), producer="matching")
    follow_up = m.CircleFollowUpDue(**circle.model_dump(include={*CIRCLE, "members", "formed_at", "follow_up_at"}))

    async with TestKafkaBroker(broker) as kafka:
        for envelope in (formed, formed, left, left, wrap(follow_up, producer="matching")):
            await kafka.publish(envelope.encode(), m.CIRCLES.name, key=CIRCLE["circle_id"].encode())

    assert m.CIRCLES.name in table.topics
    queued = sorted((d["template"], d["recipient_id"]) for d in store.notifications.values())
    assert queued == sorted(
        [(messages.CIRCLE_FORMED, pid) for pid in EVERYONE]
        + [(messages.CIRCLE_MEMBER_LEFT, pid) for pid in EVERYONE if pid != "p-sara"]
    )
    assert sorted(d["_id"] for d in worker.handed) == sorted(store.notifications)  # each handed over once
    assert all(d["source_event_id"] in (str(formed.event_id), str(left.event_id)) for d in worker.handed)
