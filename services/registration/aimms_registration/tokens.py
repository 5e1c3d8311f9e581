"""Access tokens: short-lived EdDSA JWTs for portals and administrators, and the JWKS to check them."""

import base64
import hashlib
import json
import re
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aimms_shared.auth import ALGORITHM, AUDIENCE


class TokenIssuer:
    """Signs access tokens with the configured Ed25519 key.

    Keys a rotation retired stay in the JWKS, so tokens they signed are accepted until they expire
    (minutes): the signing key changes without anyone being signed out.
    """

    def __init__(self, private_key_pem: str, *, issuer: str, ttl_seconds: int, retired_key_pems: str = "") -> None:
        self._key = _ed25519(private_key_pem)
        self._issuer = issuer
        self.ttl_seconds = ttl_seconds
        self._jwk = _jwk(self._key)
        self.kid = self._jwk["kid"]
        self._retired = [_jwk(_ed25519(pem)) for pem in _pem_blocks(retired_key_pems)]

    def issue(
        self, client_id: str, institution_id: str | None, scopes: tuple[str, ...], participant_id: str | None = None
    ) -> str:
        """A signed token naming the client, its institution and its scopes (and, for her own, the participant)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": AUDIENCE,
            "sub": client_id,
            "iat": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
            "scope": " ".join(scopes),
        }
        if institution_id is not None:
            claims["institution_id"] = institution_id
        if participant_id is not None:
            claims["participant_id"] = participant_id
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def jwks(self) -> dict[str, Any]:
        """The public keys, as other services fetch them: the current one, then any a rotation retired."""
        return {"keys": [self._jwk, *self._retired]}


def _ed25519(private_key_pem: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("a token signing key must be an Ed25519 private key (PEM)")
    return key


def _jwk(key: Ed25519PrivateKey) -> dict[str, str]:
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    x = base64.urlsafe_b64encode(public).rstrip(b"=").decode()
    # RFC 7638 thumbprint as key id: the same key always gets the same id.
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True)
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": ALGORITHM, "use": "sig"}


def _pem_blocks(text: str) -> list[str]:
    """Each PEM block of one or more written one after another."""
    return re.findall(r"-----BEGIN [A-Z ]+-----.+?-----END [A-Z ]+-----", text, flags=re.DOTALL)


def new_signing_key_pem() -> str:
    """A fresh Ed25519 private key in PEM (for operators and local set-up)."""
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
