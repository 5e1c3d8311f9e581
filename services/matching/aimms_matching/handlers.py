"""Every event the matching service consumes, in one table.

The service runs, connects and reports its health now; its subscriptions
(ParticipantRegistered, ParticipantWithdrawn and ParticipantErased from registration)
are added here as its domain is built.
"""

from aimms_shared.consumer import Subscriptions


def subscriptions() -> Subscriptions:
    """Matching's subscriptions."""
    return Subscriptions()
