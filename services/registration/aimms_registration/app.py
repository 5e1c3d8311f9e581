"""Composition root of the registration service: `uvicorn --factory aimms_registration.app:create_app`."""

from fastapi import FastAPI

from aimms_registration import handlers, routes
from aimms_registration.settings import RegistrationSettings
from aimms_registration.store import INTERESTS, RegistrationStore
from aimms_shared.consumer import Subscriptions
from aimms_shared.contracts.registration import InterestExpressed
from aimms_shared.service import Runtime, create_service_app


def create_app(settings: RegistrationSettings | None = None) -> FastAPI:
    """Build the registration app from settings (environment when not given)."""
    settings = settings or RegistrationSettings()

    async def setup(app: FastAPI, runtime: Runtime) -> Subscriptions:
        store = RegistrationStore(runtime.db)
        await store.ensure_indexes()
        app.state.store = store
        return handlers.subscriptions()

    return create_service_app(
        "registration",
        settings,
        routers=[routes.router],
        setup=setup,
        outbox_collections=[INTERESTS],
        produces=[InterestExpressed],
        description="Institutions, programmes, expressions of interest and participants.",
    )
