"""Every service starts against the real infrastructure and reports health, readiness and metrics."""

import pytest

from aimms_matching.app import create_app as create_matching
from aimms_matching.settings import MatchingSettings
from aimms_notifications.app import create_app as create_notifications
from aimms_notifications.settings import NotificationsSettings
from aimms_registration.app import create_app as create_registration
from aimms_registration.settings import RegistrationSettings
from aimms_surveys.app import create_app as create_surveys
from aimms_surveys.settings import SurveysSettings

from .conftest import Infrastructure, eventually, running, service_settings

pytestmark = pytest.mark.integration

SERVICES = {
    "registration": (create_registration, RegistrationSettings),
    "matching": (create_matching, MatchingSettings),
    "surveys": (create_surveys, SurveysSettings),
    "notifications": (create_notifications, NotificationsSettings),
}


@pytest.mark.parametrize("service", SERVICES)
async def test_each_service_is_alive_ready_and_measured(
    service: str, infrastructure: Infrastructure, namespace: str
) -> None:
    create_app, settings_cls = SERVICES[service]
    async with running(create_app(service_settings(settings_cls, infrastructure, namespace))) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok", "service": service}

        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"mongodb": "ok", "kafka": "ok"}

        # Registration's first start onboards the scheme's own tenancy: its event is relayed at once.
        async def relayed() -> str | None:
            text = (await client.get("/metrics")).text
            return text if "aimms_outbox_backlog 0.0" in text else None

        metrics_text = await eventually(relayed, timeout=20)
        assert "aimms_http_request_duration_seconds" in metrics_text

        assert (await client.get("/openapi.json")).json()["info"]["title"] == f"AIMMS {service}"
        assert (await client.get("/asyncapi.json")).json()["asyncapi"].startswith("3.")
        assert ready.headers["X-Request-ID"]


async def test_the_event_catalogue_documents_what_each_service_produces_and_consumes(
    infrastructure: Infrastructure, namespace: str
) -> None:
    registration = create_registration(service_settings(RegistrationSettings, infrastructure, namespace))
    notifications = create_notifications(service_settings(NotificationsSettings, infrastructure, namespace))
    async with running(registration) as reg, running(notifications) as notif:
        produced = (await reg.get("/asyncapi.json")).json()
        consumed = (await notif.get("/asyncapi.json")).json()

    assert any("InterestExpressed" in name for name in produced["components"]["schemas"])
    assert any("registration.interests" in channel["address"] for channel in consumed["channels"].values())
