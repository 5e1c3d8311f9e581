"""Composition root of the portal: `uvicorn --factory aimms_portal.app:create_app`."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from importlib.resources import files

import httpx
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aimms_portal import routes, sessions
from aimms_portal.apis import (
    SERVICES,
    Absent,
    Apis,
    LinkGone,
    MatchingApi,
    SessionEnded,
    SurveysApi,
    Unavailable,
)
from aimms_portal.settings import PortalSettings
from aimms_portal.use_cases import Coordinators, Joining, MyProgramme, Proposals, Questionnaires
from aimms_shared.http import RequestContextMiddleware, on_behalf_of_the_caller
from aimms_shared.logging import configure_logging
from aimms_shared.metrics import Metrics

log = structlog.get_logger(__name__)

# Everything the pages need is served from here: no CDN, no inline script or style.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    # A questionnaire's address holds its link's credential: never pass it on, never keep a copy.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response (plain ASGI, like RequestContextMiddleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(SECURITY_HEADERS)
            await send(message)

        await self._app(scope, receive, send_with_headers if scope["type"] == "http" else send)


def create_app(settings: PortalSettings | None = None) -> FastAPI:
    """Build the portal from settings (environment when not given)."""
    settings = settings or PortalSettings()  # type: ignore[call-arg] - read from the environment
    configure_logging(settings.log_format, settings.log_level)
    root = files("aimms_portal")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        urls = {name: getattr(settings, f"{name}_url") for name in SERVICES}
        async with AsyncExitStack() as stack:
            clients = {
                name: await stack.enter_async_context(
                    httpx.AsyncClient(
                        base_url=url,
                        timeout=settings.api_timeout_seconds,
                        event_hooks={"request": [on_behalf_of_the_caller]},
                    )
                )
                for name, url in urls.items()
            }
            app.state.questionnaires = Questionnaires(SurveysApi(clients["surveys"]))
            app.state.proposals = Proposals(MatchingApi(clients["matching"]))
            app.state.coordinators = Coordinators(Apis(clients))
            app.state.my_programme = MyProgramme(Apis(clients))
            app.state.joining = Joining(Apis(clients))
            yield

    app = FastAPI(title="AIMMS portal", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.templates = templates = Jinja2Templates(directory=str(root / "templates"))
    app.mount("/static", StaticFiles(directory=str(root / "static")), name="static")
    app.include_router(routes.router)
    app.add_middleware(RequestContextMiddleware, metrics=Metrics("portal"))

    app.add_middleware(SecurityHeaders)

    def error_page(request: Request, template: str, status: int, **context: object) -> HTMLResponse:
        return templates.TemplateResponse(request, template, context, status_code=status)

    @app.exception_handler(LinkGone)
    async def link_gone(request: Request, exc: LinkGone) -> HTMLResponse:
        return error_page(request, "unusable.html", 410, detail=exc.detail)

    @app.exception_handler(Unavailable)
    async def unavailable(request: Request, exc: Unavailable) -> HTMLResponse:
        log.warning("portal.api_unavailable", reason=str(exc))
        return error_page(request, "unavailable.html", 503)

    @app.exception_handler(Absent)
    async def absent(request: Request, exc: Absent) -> HTMLResponse:
        return error_page(request, "not_found.html", 404)

    @app.exception_handler(sessions.NoSession)
    async def no_session(request: Request, exc: sessions.NoSession) -> RedirectResponse:
        return RedirectResponse(request.url_for(sessions.area_of(request).entry), status_code=303)

    @app.exception_handler(SessionEnded)
    async def session_ended(request: Request, exc: SessionEnded) -> RedirectResponse:
        log.info("portal.session_ended", reason=str(exc))
        area = sessions.area_of(request)
        response = RedirectResponse(request.url_for(area.entry).include_query_params(ended=True), status_code=303)
        area.close(request, response)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        return error_page(request, "not_found.html", exc.status_code)

    return app
