"""Records built from like-named fields: an event into a read model's record."""

from dataclasses import dataclass

from pydantic import BaseModel

from aimms_shared.mapping import carried_over


class Announced(BaseModel):
    participant_id: str
    roles: list[str]
    extra: str = "ignored"


@dataclass(frozen=True)
class Record:
    participant_id: str
    roles: tuple[str, ...]
    joined: str
    active: bool = True


def test_like_named_fields_are_carried_over_lists_become_tuples_and_the_rest_is_given_or_defaulted() -> None:
    record = carried_over(Record, Announced(participant_id="p", roles=["mentor"]), joined="today")

    assert record == Record("p", ("mentor",), "today", active=True)


def test_an_override_wins_over_a_like_named_field() -> None:
    assert (
        carried_over(Record, Announced(participant_id="p", roles=[]), joined="x", participant_id="q").participant_id
        == "q"
    )


def test_a_stored_document_becomes_its_dataclass_with_its_id_tuples_and_aware_times() -> None:
    from datetime import UTC, datetime

    from aimms_shared.mongo import from_document

    @dataclass(frozen=True)
    class Kept:
        kept_id: str
        tags: tuple[str, ...]
        at: datetime
        note: str = "default"

    naive = datetime(2026, 12, 6, 9, 0)
    kept = from_document(Kept, {"_id": "k-1", "tags": ["a", "b"], "at": naive, "stray": 1}, "kept_id")

    assert kept == Kept("k-1", ("a", "b"), naive.replace(tzinfo=UTC))
    assert from_document(Kept, {"_id": "k-2", "tags": [], "at": naive}, "kept_id", note="given").note == "given"
