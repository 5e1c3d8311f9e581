"""HTTP conventions of every service: problem+json errors and per-request context."""

import html
import time
import uuid
from typing import Annotated, Any

import httpx
import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from pymongo.errors import ConnectionFailure
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aimms_shared import context
from aimms_shared.errors import DomainError
from aimms_shared.metrics import Metrics

PROBLEM_JSON = "application/problem+json"
# Ids people choose for institutions and programmes: lower case, digits and hyphens (safe in a path,
# a file name and a header).
Slug = Annotated[str, Field(min_length=2, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]
REQUEST_ID_HEADER = "X-Request-ID"
CORRELATION_ID_HEADER = "X-Correlation-ID"

log = structlog.get_logger(__name__)
UNMATCHED = "unmatched"  # the route of a request no route matched (its path is not logged either)


class Problem(BaseModel):
    """RFC 9457 problem details: what was wrong (`field` and `rule` where one value broke a rule)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    field: str | None = None
    rule: str | None = None
    errors: list[dict[str, str]] | None = None


STORE_RETRY_AFTER_SECONDS = 2

PROBLEM_TEXT = {
    400: "Bad request",
    401: "No valid access token",
    403: "The token lacks the scope, or acts for another institution",
    404: "Not found (or not yours to see)",
    409: "Conflicts with the current state, or names something not known here yet (then with Retry-After)",
    410: "The link is unknown, used or expired (indistinguishable on purpose)",
    429: "Too many requests from this caller: try again after Retry-After seconds",
    422: "Invalid input: each field and the rule it breaks",
    503: "The service cannot reach its store just now: try again after Retry-After seconds",
}


def from_state(name: str) -> Any:
    """FastAPI dependency: what the composition root put in `app.state.<name>`.

    A coroutine on purpose: FastAPI runs a plain function in its thread pool, and that hop cost a
    registration request more than its own work.
    """

    async def built(request: Request) -> Any:
        return getattr(request.app.state, name)

    return Depends(built)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for problem+json errors."""
    return {
        status: {"model": Problem, "description": PROBLEM_TEXT[status], "content": {PROBLEM_JSON: {}}}
        for status in statuses
    }


def api_router(*tags: str, **kwargs: Any) -> APIRouter:
    """The router of one area of a service's API. Every route of it documents 422 and 503 as problem+json
    once, here: any body, path or query value can break a rule, any route can find its store out of reach,
    and the app answers each such case alike."""
    return APIRouter(tags=list(tags), responses=problem_responses(422, 503), **kwargs)


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    code: str,
    instance: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """An RFC 9457 problem details response."""
    body = {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


_PAGE = """<!doctype html><html lang="en"><meta charset="utf-8"><title>AIMMS mentoring</title>
<body style="font-family:sans-serif;max-width:36em;margin:3em auto"><h1>{title}</h1>{body}</body></html>"""


def page(title: str, body: str, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    """A plain page behind an email's link, for a person in her browser (`body` is HTML, already escaped)."""
    return HTMLResponse(_PAGE.format(title=html.escape(title), body=body), status_code=status, headers=headers)


def _refusal(
    request: Request,
    status: int,
    title: str,
    detail: str,
    *,
    code: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """problem+json; on a route that answers a person with a page, a page saying the same in words."""
    route = request.scope.get("route")
    if getattr(route, "response_class", None) is HTMLResponse:
        return page(title, f"<p>{html.escape(detail)}</p>", status, headers)
    return problem(status, title, detail, code=code, instance=request.url.path, headers=headers, **extra)


def install_problem_handlers(app: FastAPI) -> None:
    """Every error leaves the service as problem+json saying what was wrong (as a page where the route
    answers a person's browser)."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # Field locations and messages only: the rejected values may be personal data.
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]} for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return _refusal(request, 422, "The request is invalid", detail, code="validation", errors=errors)

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        return _refusal(request, exc.status, exc.title, exc.detail, code=exc.code, headers=exc.headers(), **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
        return _refusal(request, exc.status_code, title, str(exc.detail), code=f"http-{exc.status_code}")

    @app.exception_handler(ConnectionFailure)
    async def store_unreachable(request: Request, exc: ConnectionFailure) -> Response:
        # The store restarting or out of reach is an outage to wait out, not a fault in the request.
        log.warning("http.store_unreachable", error=type(exc).__name__)
        detail = "The service cannot reach its store just now; retry shortly (with the same Idempotency-Key, if any)."
        headers = {"Retry-After": str(STORE_RETRY_AFTER_SECONDS)}
        return _refusal(request, 503, "Service unavailable", detail, code="unavailable", headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("http.unhandled_error")
        detail = "The service failed; the error is logged with the request id."
        return _refusal(request, 500, "Internal error", detail, code="internal")


async def on_behalf_of_the_caller(request: httpx.Request) -> None:
    """httpx request hook of a service calling another for someone (the portal): the call carries her
    correlation id and her address, so rate limits and logs see her, not the portal."""
    if (address := context.client_address.get()) is not None:
        request.headers["X-Forwarded-For"] = address
    if (correlation_id := context.correlation_id.get()) is not None:
        request.headers[CORRELATION_ID_HEADER] = correlation_id


class RequestContextMiddleware:
    """Binds request and correlation ids to logs and raised events; records latency; logs each request.

    The access line (`http.access`) names the matched route's template (`/surveys/{token}`), never
    the path or query, which may carry a link's credential; uvicorn's own access log is off
    (`aimms_shared.logging`). Plain ASGI: Starlette's BaseHTTPMiddleware would run every request
    through an extra task and body stream, which cost more than the rest of a short request's handling.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
        correlation_id = headers.get(CORRELATION_ID_HEADER) or request_id
        status = 500

        async def send_with_ids(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = MutableHeaders(scope=message)
                response_headers[REQUEST_ID_HEADER] = request_id
                response_headers[CORRELATION_ID_HEADER] = correlation_id
            await send(message)

        token = context.correlation_id.set(correlation_id)
        client = context.client_address.set(scope["client"][0] if scope.get("client") else None)
        started = time.perf_counter()
        try:
            with structlog.contextvars.bound_contextvars(request_id=request_id, correlation_id=correlation_id):
                try:
                    await self._app(scope, receive, send_with_ids)
                finally:  # within the binding: the access line carries the request's ids
                    self._record(scope, status, time.perf_counter() - started)
        finally:
            context.correlation_id.reset(token)
            context.client_address.reset(client)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        """The access line and the latency metric, both by route template: never the path or query."""
        route = getattr(scope.get("route"), "path", UNMATCHED)
        self._metrics.http_latency.labels(scope["method"], route, str(status)).observe(seconds)
        log.info(
            "http.access", method=scope["method"], route=route, status=status, duration_ms=round(seconds * 1000, 1)
        )
