"""Correlation context carried from an HTTP request or a consumed event to the events it raises, and to
the APIs a request calls on someone's behalf."""

from contextvars import ContextVar

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
causation_id: ContextVar[str | None] = ContextVar("causation_id", default=None)
# The address of the person an HTTP request serves: a portal passes it on to the APIs it calls for her.
client_address: ContextVar[str | None] = ContextVar("client_address", default=None)
