"""Event contracts and the envelope: what goes on the wire, and what consumers accept."""

import json
import uuid

import pytest
from pydantic import ValidationError

from aimms_shared import context
from aimms_shared.contracts.registration import INTERESTS, InterestExpressed
from aimms_shared.events import UnknownEvent, decode, in_namespace, payload, wrap
from tests.factories import interest_expressed


def test_an_event_survives_the_wire_unchanged() -> None:
    event = interest_expressed()
    envelope = wrap(event, producer="registration", institution_id="demo-university")

    received = decode(envelope.encode())

    assert received == envelope
    assert payload(received) == event
    assert received.occurred_at.tzinfo is not None
    assert received.schema_version == 1


def test_the_message_key_is_the_aggregate_id_so_its_events_stay_in_order() -> None:
    assert interest_expressed(interest_id="abc").key() == "abc"
    assert InterestExpressed.topic is INTERESTS


def test_events_are_immutable() -> None:
    with pytest.raises(ValidationError):
        interest_expressed().name = "someone else"  # type: ignore[misc]


def test_consumers_ignore_fields_they_do_not_know() -> None:
    envelope = wrap(interest_expressed(), producer="registration")
    raw = json.loads(envelope.encode())
    raw["added_later"] = "envelope field from a newer producer"
    raw["payload"]["added_later"] = "payload field from a newer producer"

    received = decode(json.dumps(raw).encode())

    assert payload(received) == interest_expressed()


def test_an_unknown_schema_version_is_refused_rather_than_misread() -> None:
    envelope = wrap(interest_expressed(), producer="registration").model_copy(update={"schema_version": 2})
    with pytest.raises(UnknownEvent):
        payload(envelope)


def test_an_envelope_without_its_metadata_is_malformed() -> None:
    with pytest.raises(ValidationError):
        decode(b'{"event_type": "InterestExpressed", "payload": {}}')
    with pytest.raises(ValidationError):
        decode(b"not json at all")


def test_events_raised_while_handling_another_carry_its_correlation_and_cause() -> None:
    cause = str(uuid.uuid4())
    correlation = context.correlation_id.set("request-42")
    causation = context.causation_id.set(cause)
    try:
        envelope = wrap(interest_expressed(), producer="registration")
    finally:
        context.causation_id.reset(causation)
        context.correlation_id.reset(correlation)

    assert envelope.correlation_id == "request-42"
    assert envelope.causation_id == cause


def test_an_event_with_no_cause_starts_its_own_correlation() -> None:
    envelope = wrap(interest_expressed(), producer="registration")
    assert envelope.correlation_id == str(envelope.event_id)
    assert envelope.causation_id is None


def test_headers_repeat_the_routing_essentials() -> None:
    envelope = wrap(interest_expressed(), producer="registration")
    assert envelope.headers() == {
        "event_id": str(envelope.event_id),
        "event_type": "InterestExpressed",
        "schema_version": "1",
        "correlation_id": envelope.correlation_id,
        "producer": "registration",
    }


def test_a_namespace_prefixes_topics_and_groups_only_when_set() -> None:
    assert in_namespace("registration.interests", "") == "registration.interests"
    assert in_namespace("registration.interests", "ci42") == "ci42.registration.interests"


def test_no_contract_carries_special_category_data() -> None:
    from aimms_shared.events import _CONTRACTS

    for event_cls in _CONTRACTS.values():
        fields = " ".join(event_cls.model_fields).lower()
        assert "ethnic" not in fields and "age_band" not in fields, event_cls.__name__


async def test_a_decision_is_taken_again_on_the_newer_state_and_given_up_after_a_few_tries() -> None:
    from aimms_shared.outbox import ConcurrentUpdate, on_latest

    tries: list[int] = []

    async def saved_on_third_try() -> str:
        tries.append(len(tries))
        if len(tries) < 3:
            raise ConcurrentUpdate("someone saved meanwhile")
        return "saved"

    assert await on_latest(saved_on_third_try, what="pair p-1") == "saved" and len(tries) == 3

    async def never_saved() -> str:
        raise ConcurrentUpdate("someone saved meanwhile")

    with pytest.raises(ConcurrentUpdate, match="pair p-1 keeps changing"):
        await on_latest(never_saved, what="pair p-1", attempts=2)
