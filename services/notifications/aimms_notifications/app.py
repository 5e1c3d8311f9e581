"""Composition root of the notifications service: `uvicorn --factory aimms_notifications.app:create_app`."""

from fastapi import FastAPI

from aimms_notifications import handlers, routes
from aimms_notifications.links import OptOutLinks
from aimms_notifications.mailer import Mailer
from aimms_notifications.settings import NotificationsSettings
from aimms_notifications.store import NOTIFICATIONS, NotificationStore
from aimms_notifications.templates import Templates
from aimms_notifications.workers import DELIVERY_CONCURRENCY, DeliveryWorker, Scheduler
from aimms_shared.consumer import Subscriptions
from aimms_shared.contracts.notifications import NotificationFailed, NotificationSent
from aimms_shared.retry import poll_due
from aimms_shared.service import Runtime, create_service_app


def create_app(settings: NotificationsSettings | None = None) -> FastAPI:
    """Build the notifications app from settings (environment when not given)."""
    settings = settings or NotificationsSettings()

    async def setup(app: FastAPI, runtime: Runtime) -> Subscriptions:
        store = NotificationStore(runtime.db, runtime.outbox)
        await store.ensure_indexes()
        app.state.store = store
        app.state.settings = settings
        current, *retired = settings.link_keys()
        links = OptOutLinks(current, settings.public_url, tuple(retired))
        app.state.links = links
        templates = Templates(settings.template_dir)
        deliveries = DeliveryWorker(store, Mailer(settings, max_idle=DELIVERY_CONCURRENCY), templates, settings, links)
        runtime.run_in_background(deliveries.run)
        scheduler = Scheduler(store, settings, on_queued=deliveries.hand)
        runtime.run_in_background(lambda: poll_due("notifications", scheduler.run_due, settings.scheduler_poll_seconds))
        return handlers.subscriptions(store, deliveries, settings)

    return create_service_app(
        "notifications",
        settings,
        routers=[routes.router],
        setup=setup,
        outbox_collections=[NOTIFICATIONS],
        produces=[NotificationSent, NotificationFailed],
        description="Every message the scheme sends, once, over SMTP.",
    )
