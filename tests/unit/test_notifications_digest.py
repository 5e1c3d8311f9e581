"""The coordinators' daily digest: which day it belongs to, what it lists, and that it is keyed per day."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from aimms_notifications.domain import compose, digest
from aimms_shared.errors import RuleBroken
from tests.unit.test_notifications_templates import COORDINATOR, MENTEE, MENTOR, NOW, digest_notes

CONFIG = digest.DigestConfig("aimms-mentoring", (COORDINATOR, "lead@northgate.ac.uk"), True, 7)


@pytest.mark.parametrize(
    ("now", "hour", "slot"),
    [
        (datetime(2025, 3, 3, 9, 30, tzinfo=UTC), 7, datetime(2025, 3, 3, 7, tzinfo=UTC)),
        (datetime(2025, 3, 3, 7, 0, tzinfo=UTC), 7, datetime(2025, 3, 3, 7, tzinfo=UTC)),
        (datetime(2025, 3, 3, 6, 59, tzinfo=UTC), 7, datetime(2025, 3, 2, 7, tzinfo=UTC)),
        (datetime(2025, 3, 1, 0, 10, tzinfo=UTC), 23, datetime(2025, 2, 28, 23, tzinfo=UTC)),
    ],
)
def test_a_digest_belongs_to_the_latest_of_its_hours_and_the_next_is_a_day_later(now, hour, slot) -> None:
    assert digest.digest_slot(now, hour) == slot
    assert digest.next_digest_at(now, hour) == slot + timedelta(days=1)


def test_each_recipient_gets_one_digest_per_programme_and_day() -> None:
    today = digest_notes()
    again = digest_notes(built_at=NOW + timedelta(hours=3))  # rebuilt later the same day (a restart)
    tomorrow = digest_notes(slot=NOW.replace(hour=7, minute=0) + timedelta(days=1))
    assert [n.notification_id for n in today] == [n.notification_id for n in again]
    assert {n.notification_id for n in today}.isdisjoint(n.notification_id for n in tomorrow)
    assert today[0].source_event_id == "digest:aimms-mentoring:2025-03-03"
    two = digest.digest(CONFIG, programme_name="P", slot=NOW, built_at=NOW, proposals=[], failures=[])
    assert [n.recipient_email for n in two] == list(CONFIG.recipients)
    assert len({n.notification_id for n in two}) == 2


def test_a_disabled_digest_queues_nothing() -> None:
    off = digest.DigestConfig("aimms-mentoring", (COORDINATOR,), False, 7)
    assert digest.digest(off, programme_name="P", slot=NOW, built_at=NOW, proposals=[], failures=[]) == []


def test_the_digest_lists_proposals_by_deadline_with_the_sides_still_silent() -> None:
    [note] = digest_notes()
    rows = note.context["awaiting"]
    assert [r["pair_id"] for r in rows] == ["pair-7", "pair-1"]
    assert rows[0]["waiting_for"] == ["mentee", "mentor"] and rows[0]["overdue"] is True
    assert rows[1]["waiting_for"] == ["mentor"] and rows[1]["overdue"] is False
    assert compose.named_participants(note) == sorted({MENTEE, MENTOR, "p-erased"})


def test_the_digest_holds_ids_times_and_redacted_reasons_only() -> None:
    [note] = digest_notes()
    assert set(note.context["awaiting"][0]) == {
        "pair_id",
        "mentee_id",
        "mentor_id",
        "proposed_at",
        "reply_by",
        "overdue",
        "waiting_for",
    }
    assert set(note.context["failed"][0]) == {"template", "recipient_id", "failed_at", "reason"}
    assert note.context["failed"][1]["reason"] == "rejected by SMTP server (550): <[address]>"  # latest first
    assert note.recipient_id is None and note.recipient_email == COORDINATOR


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        (
            "rejected (550): 5.1.1 <amina.okafor@demo.ac.uk>: Recipient address rejected",
            "rejected (550): 5.1.1 <[address]>: Recipient address rejected",
        ),
        ("refused: {'a@b.org': (550, b'no')}", "refused: {'[address]': (550, b'no')}"),
        ("details still missing: participant:p-1", "details still missing: participant:p-1"),
    ],
)
def test_error_texts_lose_their_addresses_before_they_reach_a_digest(text: str, redacted: str) -> None:
    assert digest.redact_addresses(text) == redacted
    assert len(digest.redact_addresses("x" * 1000)) == 200


def test_a_long_digest_lists_its_first_rows_and_counts_the_rest() -> None:
    many = [
        digest.OpenProposal(f"pair-{i}", "aimms-mentoring", f"e{i}", f"r{i}", NOW, NOW + timedelta(minutes=i))
        for i in range(digest.DIGEST_ROWS + 50)
    ]
    started = time.perf_counter()
    [note] = digest_notes(proposals=many)
    took = time.perf_counter() - started
    assert note.context["awaiting_total"] == digest.DIGEST_ROWS + 50
    assert len(note.context["awaiting"]) == digest.DIGEST_ROWS
    assert took < 0.5


def test_digest_settings_are_normalised_and_a_digest_nobody_would_get_is_refused() -> None:
    checked = digest.check_digest(digest.DigestConfig("p", (" A@X.org", "a@x.org", "b@y.org"), True, 7))
    assert checked.recipients == ("a@x.org", "b@y.org")
    with pytest.raises(RuleBroken, match="at least one recipient"):
        digest.check_digest(digest.DigestConfig("p", (), True, 7))
    assert digest.check_digest(digest.DigestConfig("p", (), False, 7)).enabled is False
    with pytest.raises(RuleBroken):
        digest.check_digest(digest.DigestConfig("p", ("a@x.org",), True, 24))
