"""OAuth2 client credentials, participants' page links, and the public keys that verify the tokens."""

from typing import Annotated, Any

from fastapi import Form
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from aimms_registration import use_cases
from aimms_registration.routes.deps import Issuer, PagesUrl, Store
from aimms_shared.http import api_router, problem_responses
from aimms_shared.ratelimit import rate_limit

router = api_router("authentication")


class TokenOut(BaseModel):
    """An access token (OAuth2)."""

    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    scope: str


@router.post("/oauth/token", response_model=TokenOut, responses=problem_responses(401, 429))
async def token(
    store: Store,
    issuer: Issuer,
    grant_type: Annotated[str, Form(pattern="^client_credentials$")],
    client_id: Annotated[str, Form(min_length=1, max_length=100)],
    client_secret: Annotated[str, Form(min_length=1, max_length=200)],
    scope: Annotated[str | None, Form(description="Space-separated; default: all the client's scopes.")] = None,
    _: None = rate_limit("oauth-token", per_minute=60, burst=20),  # against guessing secrets
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


# -- her programme's page, from a link emailed to her


class PageLinkRequest(BaseModel):
    """She asks for a link to her programme's page."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: EmailStr


class PageLinkRequested(BaseModel):
    status: str = Field(
        "sent-if-registered", description="The same answer whether or not the address is registered anywhere."
    )


class PageLinkOpen(BaseModel):
    """The secret of the link she followed."""

    model_config = ConfigDict(extra="forbid")

    link: str = Field(min_length=20, max_length=200)


class PageSessionOut(TokenOut):
    """An access token for herself alone (scope `self`), and whose page it opens."""

    participant_id: str
    programme_id: str


@router.post("/page-links", status_code=202, response_model=PageLinkRequested, responses=problem_responses(429))
async def request_page_link(
    body: PageLinkRequest, store: Store, pages_url: PagesUrl, _: None = rate_limit("page-links", 20, burst=10)
) -> PageLinkRequested:
    """Email a single-use link to her programme's page, for each active registration under the address."""
    await use_cases.send_page_links(store, str(body.email), pages_url)
    return PageLinkRequested()


@router.post("/page-links/session", response_model=PageSessionOut, responses=problem_responses(410, 429))
async def open_page(
    body: PageLinkOpen, store: Store, issuer: Issuer, _: None = rate_limit("page-sessions", 20, burst=10)
) -> PageSessionOut:
    """Use up her link for an access token acting for her alone; a used or expired link is gone (410)."""
    access_token, participant = await use_cases.open_page(store, issuer, body.link)
    return PageSessionOut(
        access_token=access_token,
        expires_in=issuer.ttl_seconds,
        scope="self",
        participant_id=participant.participant_id,
        programme_id=participant.programme_id,
    )
