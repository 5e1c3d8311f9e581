"""Signed answer links: a side accepts or declines from her email without logging in.

A token names the pair, the side and the action, and carries an HMAC of them, so it cannot be
forged or turned into another side's answer. It works once: a side answers a proposal only once,
and a later use meets the recorded answer.
"""

import base64
import hashlib
import hmac
from typing import Literal

from aimms_shared.contracts.matching import ProposalLinks, Side
from aimms_shared.errors import NotFound

Action = Literal["accept", "decline"]
_SIDES = ("mentee", "mentor")
_ACTIONS = ("accept", "decline")


class InvalidLink(NotFound):
    """The link was altered, or never issued here."""

    code = "invalid-link"
    title = "This link is not valid"


class AnswerLinks:
    """Issues and reads the links in proposals' emails."""

    def __init__(self, key: bytes, public_url: str) -> None:
        self._key = key
        self._base = public_url.rstrip("/")

    def for_pair(self, pair_id: str) -> dict[Side, ProposalLinks]:
        """Both sides' accept and decline links."""
        return {
            side: ProposalLinks(accept=self.url(pair_id, side, "accept"), decline=self.url(pair_id, side, "decline"))
            for side in _SIDES
        }

    def url(self, pair_id: str, side: Side, action: Action) -> str:
        """One link."""
        return f"{self._base}/answers/{self.token(pair_id, side, action)}"

    def token(self, pair_id: str, side: Side, action: Action) -> str:
        """`pair.side.action.signature`."""
        return f"{pair_id}.{side}.{action}.{self._sign(pair_id, side, action)}"

    def read(self, token: str) -> tuple[str, Side, Action]:
        """The pair, side and action a genuine token stands for."""
        parts = token.split(".")
        if len(parts) == 4 and parts[1] in _SIDES and parts[2] in _ACTIONS:
            pair_id, side, action, signature = parts
            if hmac.compare_digest(signature, self._sign(pair_id, side, action)):
                return pair_id, side, action  # type: ignore[return-value]
        raise InvalidLink("this answer link is not valid; ask your coordinator for a new one")

    def _sign(self, pair_id: str, side: str, action: str) -> str:
        digest = hmac.new(self._key, f"{pair_id}|{side}|{action}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode()
