"""Signed opt-out links: a participant (or a digest's coordinator) stops optional mail from her email.

A token names who opts out and carries a signature of it (aimms_shared.links), so it cannot be
forged or turned into someone else's opt-out. Using it twice is harmless: opting out is
idempotent. Coordinators are named by a keyed hash of their address, so the address itself never
appears in a URL.
"""

import base64

from aimms_shared.links import InvalidLink, SignedLinks

PARTICIPANT, ADDRESS = "participant", "address"
_PURPOSE = "opt-out"


class OptOutLinks(SignedLinks):
    """Issues and reads the opt-out links in optional emails."""

    def subscriber_for_address(self, email: str) -> str:
        """The subscriber key of someone addressed by email only (a digest's recipient)."""
        return f"{ADDRESS}:{self._signed(ADDRESS, email.strip().lower())}"

    def url(self, subscriber: str) -> str:
        """The link for one subscriber key (`participant:<id>` or `address:<hash>`)."""
        return self._at(f"/opt-out/{self.token(subscriber)}")

    def token(self, subscriber: str) -> str:
        """`<subscriber, base64>.<signature>`."""
        encoded = base64.urlsafe_b64encode(subscriber.encode()).decode().rstrip("=")
        return f"{encoded}.{self._signed(_PURPOSE, subscriber)}"

    def read(self, token: str) -> str:
        """The subscriber key a genuine token stands for."""
        encoded, _, signature = token.partition(".")
        try:
            subscriber = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except ValueError:  # not base64 (binascii.Error), not ASCII, or not UTF-8 once decoded
            subscriber = ""
        kind, _, _ = subscriber.partition(":")
        if kind in (PARTICIPANT, ADDRESS) and signature and self._genuine(signature, _PURPOSE, subscriber):
            return subscriber
        raise InvalidLink("this opt-out link is not valid; ask your coordinator to change your preferences")
