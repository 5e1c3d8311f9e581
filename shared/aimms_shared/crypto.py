"""Field-level authenticated encryption of special category data (AES-256-GCM).

Each value is encrypted under the current key with a fresh nonce and bound (associated data) to
the document and field it belongs to, so a ciphertext copied to another record does not decrypt.
The key id is stored beside it: old keys stay configured for reading while new writes use the
current one, which is how keys are rotated.
"""

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class KeyConfigurationError(ValueError):
    """The configured keys cannot be used."""


class UndecryptableField(Exception):
    """A stored value does not decrypt with the configured keys (tampered, moved or key missing)."""


def parse_keys(spec: str) -> dict[str, bytes]:
    """Keys from configuration: `kid:base64key[,kid:base64key…]`, each key 32 bytes (AES-256)."""
    keys: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        kid, sep, encoded = item.partition(":")
        if not sep or not kid:
            raise KeyConfigurationError("each key is 'key-id:base64-key'")
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise KeyConfigurationError(f"key {kid!r} is not base64") from exc
        if len(key) != 32:
            raise KeyConfigurationError(f"key {kid!r} must be 32 bytes, not {len(key)}")
        keys[kid] = key
    if not keys:
        raise KeyConfigurationError("no encryption key configured")
    return keys


def new_key_spec(kid: str) -> str:
    """A fresh random key in the configuration format (for operators and local set-up)."""
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"


@dataclass(frozen=True)
class FieldCipher:
    """Encrypts and decrypts single field values with the configured keys."""

    keys: dict[str, bytes]
    current_kid: str

    def __post_init__(self) -> None:
        if self.current_kid not in self.keys:
            raise KeyConfigurationError(f"current key id {self.current_kid!r} is not among the configured keys")

    def encrypt(self, plaintext: str, *, context: str) -> dict[str, Any]:
        """Encrypt `plaintext`, bound to `context` (e.g. '<participant id>/ethnicity')."""
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(self.keys[self.current_kid]).encrypt(nonce, plaintext.encode(), context.encode())
        return {"kid": self.current_kid, "nonce": _b64(nonce), "ct": _b64(ciphertext)}

    def derived_key(self, purpose: str) -> bytes:
        """A key for another use (e.g. keyed hashes), derived from the current key; it changes when that rotates."""
        return hmac.new(self.keys[self.current_kid], f"aimms/{purpose}".encode(), hashlib.sha256).digest()

    def decrypt(self, sealed: dict[str, Any], *, context: str) -> str:
        """Decrypt a value sealed by `encrypt` for the same `context`."""
        key = self.keys.get(sealed.get("kid", ""))
        if key is None:
            raise UndecryptableField(f"key {sealed.get('kid')!r} is not configured")
        try:
            plain = AESGCM(key).decrypt(
                base64.b64decode(sealed["nonce"]), base64.b64decode(sealed["ct"]), context.encode()
            )
        except (InvalidTag, KeyError, binascii.Error) as exc:
            raise UndecryptableField("the value does not decrypt for this record") from exc
        return plain.decode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
