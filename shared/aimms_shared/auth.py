"""Who is calling: access tokens issued by registration, verified by every service.

Registration issues short-lived EdDSA-signed JWTs (OAuth2 client credentials) and publishes its
public keys as a JWKS. Every service verifies tokens locally with those keys, fetching the JWKS
again only when it meets a key id it does not know, so no call goes back per request.
"""

import math
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import httpx
import jwt
import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from aimms_shared.errors import DomainError
from aimms_shared.http import PROBLEM_JSON, PROBLEM_TEXT, Problem

# Who may do what is pure data, shared with domain code; re-exported here for routes.
from aimms_shared.principal import (  # noqa: F401
    ADMIN,
    ALL_SCOPES,
    PARTICIPANTS_READ,
    PARTICIPANTS_WRITE,
    PORTAL_SCOPES,
    PROFILES_READ,
    SELF,
    Principal,
)

AUDIENCE = "aimms"
ALGORITHM = "EdDSA"

log = structlog.get_logger(__name__)


class Unauthenticated(DomainError):
    """No valid access token."""

    status = 401
    code = "unauthenticated"
    title = "Authentication required"

    def headers(self) -> dict[str, str]:
        return super().headers() | {"WWW-Authenticate": 'Bearer error="invalid_token"'}  # RFC 6750


class Forbidden(DomainError):
    """The token lacks the scope the route requires."""

    status = 403
    code = "forbidden"
    title = "Not allowed"


KeyLoader = Callable[[], Awaitable[dict[str, Any]]]
VERIFIED_TOKENS = 1024
UNKNOWN_KEY_REFETCH_SECONDS = 5.0


class TokenVerifier:
    """Verifies access tokens against the issuer's JWKS, cached by key id.

    A portal sends the same token with every request until it expires, and checking its signature
    was a tenth of a short request's cost; so a verified token is remembered (at most
    VERIFIED_TOKENS of them) until its expiry, and still refused once its key leaves the JWKS.
    """

    def __init__(self, load_jwks: KeyLoader, *, issuer: str, refresh_after_seconds: float = 300) -> None:
        self._load_jwks = load_jwks
        self._issuer = issuer
        self._keys: dict[str, jwt.PyJWK] = {}
        self._loaded_at = self._tried_at = -math.inf
        self._refresh_after = refresh_after_seconds
        self._verified: dict[str, tuple[float, str, Principal]] = {}  # token -> (expiry, key id, principal)

    async def verify(self, token: str) -> Principal:
        """The principal a valid token stands for; Unauthenticated otherwise."""
        known = self._verified.get(token)
        if known is not None:
            expiry, kid, principal = known
            if time.time() < expiry:
                await self._key(kid)  # refused if the key was withdrawn
                return principal
            del self._verified[token]
        try:
            kid = jwt.get_unverified_header(token).get("kid", "")
        except jwt.PyJWTError as exc:
            raise Unauthenticated("the access token is malformed") from exc
        key = await self._key(kid)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=self._issuer,
                options={"require": ["exp", "iat", "sub", "scope"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("the access token has expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"the access token is invalid: {exc}") from exc
        scopes = frozenset(claims["scope"].split())
        principal = Principal(claims["sub"], claims.get("institution_id"), scopes, claims.get("participant_id"))
        if len(self._verified) >= VERIFIED_TOKENS:
            del self._verified[next(iter(self._verified))]  # the oldest
        self._verified[token] = (claims["exp"], kid, principal)
        return principal

    async def _key(self, kid: str) -> jwt.PyJWK:
        now = time.monotonic()
        # An unknown key id refetches (a rotation), but not more than every few seconds: made-up key ids
        # must not turn every request into a call to registration.
        unknown = kid not in self._keys and now - self._tried_at > UNKNOWN_KEY_REFETCH_SECONDS
        if unknown or now - self._loaded_at > self._refresh_after:
            self._tried_at = now
            try:
                jwks = await self._load_jwks()
                self._keys = {k["kid"]: jwt.PyJWK(k) for k in jwks.get("keys", [])}
                self._loaded_at = time.monotonic()
            except (httpx.HTTPError, jwt.PyJWTError, KeyError) as exc:
                log.warning("auth.jwks_unavailable", error=repr(exc))
        if kid not in self._keys:
            raise Unauthenticated("the access token was signed by an unknown key")
        return self._keys[kid]


def remote_jwks(url: str) -> KeyLoader:
    """Load the JWKS from registration's well-known URL."""

    async def load() -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(url)
            response.raise_for_status()
            return response.json()

    return load


_bearer = HTTPBearer(auto_error=False, description="An access token from registration's /oauth/token.")


def require(*scopes: str, participant: bool = False) -> Any:
    """FastAPI dependency: a principal holding every one of `scopes` (admin holds them all).

    With `participant=True` a participant's own token is let in too; the use case then lets her act
    only for herself (`Principal.may_act_for`).
    """

    async def principal(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Principal:
        if credentials is None:
            raise Unauthenticated("send an access token: Authorization: Bearer <token>")
        caller = await request.app.state.token_verifier.verify(credentials.credentials)
        missing = [s for s in scopes if s not in caller.scopes and not caller.is_admin]
        if caller.is_participant:
            missing = [] if participant and SELF in caller.scopes else [*scopes] or [ADMIN]
        if missing:
            raise Forbidden(f"the token lacks the scope {' '.join(missing)}", required_scopes=list(scopes))
        structlog.contextvars.bind_contextvars(client_id=caller.client_id)
        return caller

    principal.required_scopes = list(scopes)  # type: ignore[attr-defined] - read by document_scopes
    principal.participant_allowed = participant  # type: ignore[attr-defined]
    return Depends(principal)


def document_scopes(app: FastAPI) -> None:
    """State each route's scope in the OpenAPI document, from the `require(...)` it depends on."""
    scopes_by_operation: dict[str, Any] = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and (guard := _guard(route.dependant)) is not None:
            scopes_by_operation[route.operation_id or route.unique_id] = guard
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schema.setdefault("components", {}).setdefault("schemas", {}).setdefault("Problem", Problem.model_json_schema())
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                guard = scopes_by_operation.get(operation.get("operationId", ""))
                if guard is None:
                    continue
                scopes = operation["x-required-scopes"] = guard.required_scopes
                note = f"**Requires scope:** `{' '.join(scopes)}` (an `admin` token may call every route)."
                if guard.participant_allowed:
                    operation["x-participant-self"] = True
                    note += " A participant's own token (scope `self`) may call it for herself."
                operation["description"] = f"{operation.get('description', '')}\n\n{note}".strip()
                for status in (401, 403):
                    operation["responses"].setdefault(str(status), _problem_response(status))
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _problem_response(status: int) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Problem"}
    return {"description": PROBLEM_TEXT[status], "content": {PROBLEM_JSON: {"schema": schema}}}


def _guard(dependant: Any) -> Any:
    """The `require(...)` dependency of a route, if it has one."""
    if hasattr(dependant.call, "required_scopes"):
        return dependant.call
    for sub in dependant.dependencies:
        found = _guard(sub)
        if found is not None:
            return found
    return None
