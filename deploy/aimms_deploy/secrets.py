"""Fresh secrets as deploy/secrets.spec describes them (the list generate-env.sh reads too)."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

from . import paths

SPEC = paths.DEPLOY_DIR / "secrets.spec"


@dataclass(frozen=True)
class Secret:
    """One line of the spec: a variable, how a fresh value is made, and where it is used."""

    name: str
    kind: str
    where: str


def spec() -> list[Secret]:
    """Every secret the spec lists."""
    lines = (line.split() for line in SPEC.read_text().splitlines() if line.strip() and not line.startswith("#"))
    return [Secret(*fields) for fields in lines]


def fresh(prefix: str, key_id: str) -> dict[str, str]:
    """New values for the secrets of one service (by variable prefix, e.g. `MATCHING_`) the local stack uses."""
    # Imported here: only the commands that run the platform need the services' packages.
    from aimms_registration.tokens import new_signing_key_pem
    from aimms_shared.crypto import new_key_spec

    make = {
        "random": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "ed25519-pem": new_signing_key_pem,
        "aes-keys": lambda: new_key_spec(key_id),
        "key-id": lambda: key_id,
    }
    return {s.name: make[s.kind]() for s in spec() if s.name.startswith(prefix) and s.where == "both"}
