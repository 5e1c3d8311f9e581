"""Composition root of the matching service: `uvicorn --factory aimms_matching.app:create_app`."""

from datetime import timedelta

from fastapi import FastAPI

from aimms_matching import handlers, routes
from aimms_matching.links import AnswerLinks
from aimms_matching.settings import MatchingSettings
from aimms_matching.store import OUTBOX_COLLECTIONS, MatchingStore
from aimms_matching.use_cases import Matchmaker
from aimms_shared.consumer import Subscriptions
from aimms_shared.contracts import matching as m
from aimms_shared.retry import poll_due
from aimms_shared.service import Runtime, create_service_app


def create_app(settings: MatchingSettings | None = None) -> FastAPI:
    """Build the matching app from settings (environment when not given)."""
    settings = settings or MatchingSettings()

    async def setup(app: FastAPI, runtime: Runtime) -> Subscriptions:
        store = MatchingStore(runtime.db, runtime.outbox)
        await store.ensure_indexes()
        current, *retired = settings.link_keys()
        links = AnswerLinks(current, settings.public_url, tuple(retired))
        matchmaker = Matchmaker(store, links, lease=timedelta(seconds=settings.lease_seconds))
        app.state.store, app.state.matchmaker = store, matchmaker
        runtime.run_in_background(lambda: poll_due("matching", matchmaker.run_due, settings.scheduler_poll_seconds))
        return handlers.subscriptions(store, matchmaker)

    return create_service_app(
        "matching",
        settings,
        routers=routes.ROUTERS,
        setup=setup,
        outbox_collections=OUTBOX_COLLECTIONS,
        produces=[
            m.MentorPreferencesSubmitted,
            m.MatchProposed,
            m.MatchProposalReminder,
            m.MatchAccepted,
            m.MatchDeclined,
            m.MentoringStarted,
            m.SixMonthsElapsed,
            m.MentoringTermEnded,
            m.MatchExtended,
            m.MatchEnded,
            m.MatchPaused,
            m.MatchResumed,
            m.MeetingRecorded,
            m.ConcernRaised,
            m.MenteeUnplaced,
        ],
        description="Mentor directory, preferences, the matching engine, proposals and the mentoring term.",
    )
