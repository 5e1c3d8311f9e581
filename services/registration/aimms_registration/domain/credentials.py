"""Machine credentials of portals and administrators: secrets shown once, stored as hashes."""

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import datetime

from aimms_shared.errors import RuleBroken
from aimms_shared.principal import ADMIN, PORTAL_SCOPES

# scrypt parameters (RFC 7914): ~16 MiB and ~50 ms per check, so a stolen hash is slow to attack.
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


@dataclass(frozen=True)
class Credential:
    """A client id with its hashed secret and what it may do."""

    client_id: str
    name: str
    institution_id: str | None
    scopes: tuple[str, ...]
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        """Revoked credentials get no more tokens."""
        return self.revoked_at is None


def check_scopes(institution_id: str | None, scopes: list[str]) -> tuple[str, ...]:
    """Portals get portal scopes for their institution; only administrators get `admin`."""
    wanted = tuple(dict.fromkeys(scopes))
    if institution_id is None:
        if wanted != (ADMIN,):
            raise RuleBroken("scopes", "admin-credential", "a credential without an institution is an admin credential")
        return wanted
    outside = [s for s in wanted if s not in PORTAL_SCOPES]
    if outside or not wanted:
        raise RuleBroken("scopes", "portal-scopes", f"portal credentials take scopes from {', '.join(PORTAL_SCOPES)}")
    return wanted


def new_client_id(institution_id: str | None) -> str:
    """A readable, unguessable client id."""
    return f"{institution_id or 'admin'}-{secrets.token_hex(6)}"


def new_secret() -> str:
    """A secret with 256 bits of entropy."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """`scrypt$<salt>$<hash>`, both base64."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, **SCRYPT)
    return f"scrypt${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def secret_matches(secret: str, stored: str) -> bool:
    """Constant-time comparison of a presented secret with its stored hash."""
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt), **SCRYPT)
    return hmac.compare_digest(candidate, base64.b64decode(digest))
