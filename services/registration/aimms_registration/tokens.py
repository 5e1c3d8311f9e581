"""Access tokens: short-lived EdDSA JWTs for portals and administrators, and the JWKS to check them."""

import base64
import hashlib
import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aimms_shared.auth import ALGORITHM, AUDIENCE


class TokenIssuer:
    """Signs access tokens with the configured Ed25519 key."""

    def __init__(self, private_key_pem: str, *, issuer: str, ttl_seconds: int) -> None:
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the token signing key must be an Ed25519 private key (PEM)")
        self._key = key
        self._issuer = issuer
        self.ttl_seconds = ttl_seconds
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        x = base64.urlsafe_b64encode(public).rstrip(b"=").decode()
        # RFC 7638 thumbprint as key id: the same key always gets the same id.
        canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True)
        self.kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
        self._jwk = {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}

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
        """The public keys, as other services fetch them."""
        return {"keys": [self._jwk]}


def new_signing_key_pem() -> str:
    """A fresh Ed25519 private key in PEM (for operators and local set-up)."""
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
