"""Every event the surveys service consumes, in one table.

The service runs, connects and reports its health now; its subscriptions
(MentoringStarted and SixMonthsElapsed from matching)
are added here as its domain is built.
"""

from aimms_shared.consumer import Subscriptions


def subscriptions() -> Subscriptions:
    """Surveys's subscriptions."""
    return Subscriptions()
