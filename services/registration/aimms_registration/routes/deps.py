"""What the routes get from the composition root."""

from typing import Annotated

from fastapi import Header

from aimms_registration.store import RegistrationStore
from aimms_registration.tokens import TokenIssuer
from aimms_shared.http import from_state
from aimms_shared.idempotency import HEADER

Store = Annotated[RegistrationStore, from_state("store")]
Issuer = Annotated[TokenIssuer, from_state("token_issuer")]
PagesUrl = Annotated[str, from_state("pages_url")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=HEADER,
        max_length=200,
        description="Any unique string; a retry with the same key and body returns the first response.",
    ),
]
