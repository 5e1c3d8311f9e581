"""Composition root of the surveys service: `uvicorn --factory aimms_surveys.app:create_app`."""

from fastapi import FastAPI

from aimms_shared.consumer import Subscriptions
from aimms_shared.service import Runtime, create_service_app
from aimms_surveys import handlers
from aimms_surveys.settings import SurveysSettings


def create_app(settings: SurveysSettings | None = None) -> FastAPI:
    """Build the surveys app from settings (environment when not given)."""
    settings = settings or SurveysSettings()

    async def setup(app: FastAPI, runtime: Runtime) -> Subscriptions:
        return handlers.subscriptions()

    return create_service_app(
        "surveys",
        settings,
        routers=[],
        setup=setup,
        description="The scheme's baseline and six-month questionnaires, anonymous, and their reports.",
    )
