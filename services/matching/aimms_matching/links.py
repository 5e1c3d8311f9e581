"""Signed answer links: a side accepts or declines from her email without logging in.

A token names the pair, the side and the action, and carries a signature of them
(aimms_shared.links), so it cannot be forged or turned into another side's answer. It works once:
a side answers a proposal only once, and a later use meets the recorded answer.
"""

import base64
import hashlib
import hmac
from typing import Literal

from aimms_shared.contracts.matching import ProposalLinks, Side
from aimms_shared.links import InvalidLink, SignedLinks

Action = Literal["accept", "decline"]
_SIDES = ("mentee", "mentor")
_ACTIONS = ("accept", "decline")
_PURPOSE = "answer"

__all__ = ["Action", "AnswerLinks", "InvalidLink"]


class AnswerLinks(SignedLinks):
    """Issues and reads the links in proposals' emails."""

    def pair_token(self, pair_id: str) -> str:
        """A keyed token of a pair: equal for the same pair, unreadable without the key (ideas for change)."""
        return self._signed("idea", pair_id)

    def page(self, path: str) -> str:
        """Another page of the same site (the portal), e.g. the coordinators' concerns page."""
        return self._at(path)

    def for_pair(self, pair_id: str) -> dict[Side, ProposalLinks]:
        """Both sides' accept and decline links."""
        return {
            side: ProposalLinks(accept=self.url(pair_id, side, "accept"), decline=self.url(pair_id, side, "decline"))
            for side in _SIDES
        }

    def url(self, pair_id: str, side: Side, action: Action) -> str:
        """One link."""
        return self._at(f"/answers/{self.token(pair_id, side, action)}")

    def token(self, pair_id: str, side: Side, action: Action) -> str:
        """`pair.side.action.signature`."""
        return f"{pair_id}.{side}.{action}.{self._signed(_PURPOSE, pair_id, side, action)}"

    def read(self, token: str) -> tuple[str, Side, Action]:
        """The pair, side and action a genuine token stands for."""
        parts = token.split(".")
        if len(parts) == 4 and parts[1] in _SIDES and parts[2] in _ACTIONS:
            pair_id, side, action, signature = parts
            if self._genuine(signature, _PURPOSE, pair_id, side, action) or hmac.compare_digest(
                signature, _legacy_signature(self._key, pair_id, side, action)
            ):
                return pair_id, side, action  # type: ignore[return-value]
        raise InvalidLink("this answer link is not valid; ask your coordinator for a new one")


def _legacy_signature(key: bytes, pair_id: str, side: str, action: str) -> str:
    """How links were signed before the shared helper (parts joined by '|').

    Links already in inboxes keep working until their proposal lapses: remove this once every
    proposal made before 2026-12-05 is past its reply-by (at most the longest programme's
    `reply_within`, 14 days by default).
    """
    digest = hmac.new(key, f"{pair_id}|{side}|{action}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()
