"""Signed links: a participant acts from her email (answers a proposal, opts out) without logging in.

A link's token names what it stands for and carries an HMAC-SHA256 of it. Each part is
length-prefixed before signing, so no two lists of parts sign the same text, and a purpose is the
first part, so a signature made for one kind of link never verifies for another.
"""

import base64
import hashlib
import hmac
from collections.abc import Sequence

from aimms_shared.errors import NotFound

SIGNATURE_BYTES = 18  # 144 bits: far beyond guessing, and short in a URL


class InvalidLink(NotFound):
    """The link was altered, or never issued here."""

    code = "invalid-link"
    title = "This link is not valid"


def sign(key: bytes, purpose: str, *parts: str) -> str:
    """The signature of a link for `purpose` naming `parts`, in URL-safe base64."""
    message = "".join(f"{len(part)}:{part}" for part in (purpose, *parts))
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:SIGNATURE_BYTES]).decode()


def verify(key: bytes, signature: str, purpose: str, *parts: str) -> bool:
    """Whether `signature` is `sign(key, purpose, *parts)`, compared in constant time."""
    return hmac.compare_digest(signature.encode(), sign(key, purpose, *parts).encode())


def verify_any(keys: Sequence[bytes], signature: str, purpose: str, *parts: str) -> bool:
    """Whether one of `keys` (the current one, or one a rotation retired) made `signature`."""
    return any(verify(key, signature, purpose, *parts) for key in keys)


class SignedLinks:
    """What every kind of emailed link shares: the site it points at, the key that signs new links, and
    the keys that still read old ones (the current key and those a rotation retired)."""

    def __init__(self, key: bytes, public_url: str, retired: tuple[bytes, ...] = ()) -> None:
        self._key = key
        self._keys = (key, *retired)
        self._base = public_url.rstrip("/")

    def _signed(self, purpose: str, *parts: str) -> str:
        return sign(self._key, purpose, *parts)

    def _genuine(self, signature: str, purpose: str, *parts: str) -> bool:
        return verify_any(self._keys, signature, purpose, *parts)

    def _at(self, path: str) -> str:
        return f"{self._base}{path}"
