"""A coordinator's retry of a failed delivery, as a pure rule: only a failed one, only while it can be composed."""

from datetime import UTC, datetime, timedelta

import pytest

from aimms_notifications.domain import delivery
from aimms_shared.errors import StateConflict

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
LATER = T0 + timedelta(days=3)
WAIT = 86400.0


def failed(**changes) -> delivery.Delivery:
    """A delivery given up on after three looks for details and four SMTP attempts."""
    fields = {"status": "failed", "attempts": 4, "detail_checks": 3} | changes
    return delivery.Delivery("n-1", "<n-1@aimms>", details_deadline=T0 + timedelta(hours=1), **fields)


def test_a_failed_delivery_is_pending_again_with_fresh_patience() -> None:
    requeued = delivery.retried(failed(), LATER, WAIT)

    assert requeued == delivery.Delivery(
        "n-1", "<n-1@aimms>", details_deadline=LATER + timedelta(seconds=WAIT), status="pending"
    )
    assert (requeued.attempts, requeued.detail_checks) == (0, 0)


def test_the_new_deadline_for_details_counts_from_the_retry_as_when_it_was_queued() -> None:
    requeued = delivery.retried(failed(), LATER, 4.0)

    assert requeued.details_deadline == LATER + timedelta(seconds=4)
    # Details still missing right after the retry are waited for again, not given up on at once.
    patience = delivery.Patience(retry_base_seconds=2, retry_cap_seconds=600, recheck_cap_seconds=60, max_attempts=12)
    assert isinstance(delivery.details_missing(requeued, ["participant:p-2"], LATER, patience), delivery.LookAgain)


@pytest.mark.parametrize("status", ["pending", "sent", "cancelled", "skipped"])
def test_only_a_failed_delivery_may_be_retried(status: str) -> None:
    with pytest.raises(StateConflict) as refused:
        delivery.retried(failed(status=status), LATER, WAIT)

    assert refused.value.status == 409
    assert refused.value.extra == {"field": "status", "rule": "failed-only"}
    assert status in refused.value.detail and "n-1" in refused.value.detail


def test_a_failed_delivery_whose_details_were_purged_can_no_longer_be_composed() -> None:
    with pytest.raises(StateConflict) as refused:
        delivery.retried(failed(details_purged=True), LATER, WAIT)

    assert refused.value.extra == {"field": "notification_id", "rule": "details-kept"}
    assert "purged" in refused.value.detail


def test_a_retry_leaves_the_delivery_it_was_given_unchanged() -> None:
    before = failed()
    delivery.retried(before, LATER, WAIT)

    assert before == failed()
