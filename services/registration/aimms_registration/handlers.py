"""Every event the registration service consumes, in one table.

Registration is the source of identity and consumes nothing yet: withdrawal and erasure
requests arrive over HTTP. Later subscriptions are added here.
"""

from aimms_shared.consumer import Subscriptions


def subscriptions() -> Subscriptions:
    """Registration's subscriptions."""
    return Subscriptions()
