"""Composition root of the matching service: `uvicorn --factory aimms_matching.app:create_app`."""

from fastapi import FastAPI

from aimms_matching import handlers, routes
from aimms_matching.settings import MatchingSettings
from aimms_matching.store import OUTBOX_COLLECTIONS, MatchingStore
from aimms_shared.consumer import Subscriptions
from aimms_shared.contracts.matching import MentorPreferencesSubmitted
from aimms_shared.service import Runtime, create_service_app


def create_app(settings: MatchingSettings | None = None) -> FastAPI:
    """Build the matching app from settings (environment when not given)."""
    settings = settings or MatchingSettings()

    async def setup(app: FastAPI, runtime: Runtime) -> Subscriptions:
        store = MatchingStore(runtime.db)
        await store.ensure_indexes()
        app.state.store = store
        return handlers.subscriptions(store)

    return create_service_app(
        "matching",
        settings,
        routers=[routes.router],
        setup=setup,
        outbox_collections=OUTBOX_COLLECTIONS,
        produces=[MentorPreferencesSubmitted],
        description="Mentor directory, preferences, the matching engine, proposals and the mentoring term.",
    )
