"""OAuth2 client credentials and the public keys that verify the tokens."""

from typing import Annotated, Any

from fastapi import APIRouter, Form
from pydantic import BaseModel

from aimms_registration import use_cases
from aimms_registration.routes.deps import Issuer, Store
from aimms_shared.http import problem_responses

router = APIRouter(tags=["authentication"])


class TokenOut(BaseModel):
    """An access token (OAuth2)."""

    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    scope: str


@router.post("/oauth/token", response_model=TokenOut, responses=problem_responses(401, 422))
async def token(
    store: Store,
    issuer: Issuer,
    grant_type: Annotated[str, Form(pattern="^client_credentials$")],
    client_id: Annotated[str, Form(min_length=1, max_length=100)],
    client_secret: Annotated[str, Form(min_length=1, max_length=200)],
    scope: Annotated[str | None, Form(description="Space-separated; default: all the client's scopes.")] = None,
) -> TokenOut:
    """Exchange a portal's or an administrator's credentials for a short-lived access token."""
    access_token, scopes = await use_cases.issue_token(
        store, issuer, client_id, client_secret, scope.split() if scope else None
    )
    return TokenOut(access_token=access_token, expires_in=issuer.ttl_seconds, scope=" ".join(scopes))


@router.get("/.well-known/jwks.json")
async def jwks(issuer: Issuer) -> dict[str, Any]:
    """The public keys that verify access tokens (every service fetches and caches these)."""
    return issuer.jwks()
