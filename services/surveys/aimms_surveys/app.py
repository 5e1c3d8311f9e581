"""Composition root of the surveys service: `uvicorn --factory aimms_surveys.app:create_app`."""

from datetime import timedelta

from fastapi import FastAPI

from aimms_shared.consumer import Subscriptions
from aimms_shared.contracts import surveys as s
from aimms_shared.retry import poll_due
from aimms_shared.service import Runtime, create_service_app
from aimms_surveys import handlers, routes
from aimms_surveys.settings import SurveysSettings
from aimms_surveys.store import OUTBOX_COLLECTIONS, SurveysStore
from aimms_surveys.use_cases import Surveys, seed_questionnaires, shipped_questionnaires, shipped_templates


def create_app(settings: SurveysSettings | None = None) -> FastAPI:
    """Build the surveys app from settings (environment when not given)."""
    settings = settings or SurveysSettings()
    cipher = settings.field_cipher()  # fails at start, not at the first sensitive answer

    async def setup(app: FastAPI, runtime: Runtime) -> Subscriptions:
        store = SurveysStore(runtime.db, cipher, runtime.outbox)
        await store.ensure_indexes()
        await seed_questionnaires(store, shipped_questionnaires())
        surveys = Surveys(
            store,
            public_url=settings.public_url,
            lease=timedelta(seconds=settings.lease_seconds),
            templates=shipped_templates(),
        )
        app.state.store, app.state.surveys = store, surveys
        runtime.run_in_background(lambda: poll_due("surveys", surveys.run_due, settings.scheduler_poll_seconds))
        return handlers.subscriptions(surveys)

    return create_service_app(
        "surveys",
        settings,
        routers=[routes.router],
        setup=setup,
        outbox_collections=OUTBOX_COLLECTIONS,
        produces=[s.SurveyInvitationIssued, s.SurveyReminderIssued, s.SurveyCompleted],
        description="The scheme's baseline and six-month questionnaires, anonymous, and their reports.",
    )
