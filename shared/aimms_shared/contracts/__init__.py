"""Integration event contracts, one module per producing service.

Importing this package registers every contract, so any consumer can decode any event.
"""

from aimms_shared.contracts import matching, notifications, registration, surveys

__all__ = ["matching", "notifications", "registration", "surveys"]
