"""Integration events: the envelope every event travels in, topics, and the wire format.

Contracts live in `aimms_shared.contracts`, one module per producing service. Consumers
ignore fields they do not know; a breaking change is a new `schema_version` of the event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, create_model

from aimms_shared import context

# Kafka header names, so any consumer (or a person reading a topic) sees the essentials.
HEADER_EVENT_ID = "event_id"
HEADER_EVENT_TYPE = "event_type"
HEADER_SCHEMA_VERSION = "schema_version"
HEADER_CORRELATION_ID = "correlation_id"
HEADER_PRODUCER = "producer"


@dataclass(frozen=True)
class Topic:
    """A Kafka topic and how it is laid out; the key of every message is the aggregate id."""

    name: str
    partitions: int = 3
    compacted: bool = False


def in_namespace(name: str, namespace: str) -> str:
    """The Kafka name of a topic or consumer group within a deployment's namespace."""
    return f"{namespace}.{name}" if namespace else name


def dead_letter(topic: str) -> str:
    """Where a consumer parks the messages of `topic` it cannot process, with the reason."""
    return f"{topic}.dlq"


class Event(BaseModel):
    """Base of every integration event payload: immutable, tolerant of unknown fields."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]  # on the wire: the class name
    schema_version: ClassVar[int] = 1
    topic: ClassVar[Topic]
    key_field: ClassVar[str]  # the field whose value is the message key

    def __init_subclass__(cls, *, topic: Topic | None = None, key: str | None = None, **kwargs: Any) -> None:
        """`class MatchEnded(Event, topic=PAIRS, key="pair_id")`: a contract's layout in its first line."""
        super().__init_subclass__(**kwargs)
        cls.event_type = cls.__name__
        if topic is not None:
            cls.topic = topic
        if key is not None:
            cls.key_field = key

    def key(self) -> str:
        """The message key: the aggregate id, so one aggregate's events stay in order."""
        return str(getattr(self, self.key_field))


class Envelope(BaseModel):
    """What goes on the wire: metadata every event shares, then the event's own payload."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: uuid.UUID
    event_type: str
    schema_version: int
    occurred_at: AwareDatetime
    producer: str
    correlation_id: str
    causation_id: str | None = None
    institution_id: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        """Kafka headers that repeat the routing essentials of the envelope."""
        return {
            HEADER_EVENT_ID: str(self.event_id),
            HEADER_EVENT_TYPE: self.event_type,
            HEADER_SCHEMA_VERSION: str(self.schema_version),
            HEADER_CORRELATION_ID: self.correlation_id,
            HEADER_PRODUCER: self.producer,
        }

    def encode(self) -> bytes:
        """The message value: the envelope as JSON."""
        return self.model_dump_json().encode()


class UnknownEvent(LookupError):
    """An event type or schema version this code has no contract for."""


_CONTRACTS: dict[tuple[str, int], type[Event]] = {}
_E = TypeVar("_E", bound=type[Event])


def contract(event_cls: _E) -> _E:
    """Class decorator: register an event class so consumers can decode it."""
    key = (event_cls.event_type, event_cls.schema_version)
    if key in _CONTRACTS:
        raise ValueError(f"duplicate event contract {key}")
    _CONTRACTS[key] = event_cls
    return event_cls


def contract_for(event_type: str, schema_version: int) -> type[Event]:
    """The registered class of an event type at a schema version."""
    try:
        return _CONTRACTS[(event_type, schema_version)]
    except KeyError:
        raise UnknownEvent(f"no contract for {event_type} v{schema_version}") from None


def wrap(
    event: Event,
    *,
    producer: str,
    institution_id: str | None = None,
    occurred_at: datetime | None = None,
) -> Envelope:
    """Put an event in its envelope, correlated with whatever request or event caused it."""
    event_id = uuid.uuid4()
    return Envelope(
        event_id=event_id,
        event_type=event.event_type,
        schema_version=event.schema_version,
        occurred_at=occurred_at or datetime.now(UTC),
        producer=producer,
        correlation_id=context.correlation_id.get() or str(event_id),
        causation_id=context.causation_id.get(),
        institution_id=institution_id,
        payload=event.model_dump(mode="json"),
    )


def decode(raw: bytes) -> Envelope:
    """Parse a message value into its envelope (raises pydantic.ValidationError)."""
    return Envelope.model_validate_json(raw)


def payload(envelope: Envelope) -> Event:
    """The typed event inside an envelope (raises UnknownEvent or ValidationError)."""
    return contract_for(envelope.event_type, envelope.schema_version).model_validate(envelope.payload)


def envelope_schema(event_cls: type[Event]) -> type[Envelope]:
    """The wire shape of one event type (envelope with its typed payload), for the AsyncAPI document."""
    return create_model(
        f"{event_cls.event_type}V{event_cls.schema_version}", __base__=Envelope, payload=(event_cls, ...)
    )
