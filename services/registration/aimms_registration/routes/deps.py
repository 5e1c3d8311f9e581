"""What the routes get from the composition root."""

from typing import Annotated

from fastapi import Depends, Header, Request

from aimms_registration.store import RegistrationStore
from aimms_registration.tokens import TokenIssuer
from aimms_shared.idempotency import HEADER


def get_store(request: Request) -> RegistrationStore:
    """The store built in the composition root."""
    return request.app.state.store


def get_issuer(request: Request) -> TokenIssuer:
    """The token issuer built in the composition root."""
    return request.app.state.token_issuer


Store = Annotated[RegistrationStore, Depends(get_store)]
Issuer = Annotated[TokenIssuer, Depends(get_issuer)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=HEADER,
        max_length=200,
        description="Any unique string; a retry with the same key and body returns the first response.",
    ),
]
