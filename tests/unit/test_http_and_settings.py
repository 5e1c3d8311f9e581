"""problem+json for every bad request, and settings that refuse to start without their hosts."""

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, EmailStr, ValidationError

from aimms_notifications.settings import NotificationsSettings
from aimms_registration.settings import RegistrationSettings
from aimms_shared.errors import Conflict
from aimms_shared.http import install_problem_handlers


def app() -> FastAPI:
    api = FastAPI()
    install_problem_handlers(api)

    class Body(BaseModel):
        email: EmailStr

    @api.post("/things")
    async def create(body: Body) -> dict[str, str]:
        raise Conflict("that thing already exists", thing="x")

    @api.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    return api


def test_invalid_input_is_described_field_by_field_without_echoing_values() -> None:
    response = TestClient(app()).post("/things", json={"email": "amina-at-example"})

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "/problems/validation"
    assert problem["errors"][0]["field"] == "body.email"
    assert "amina-at-example" not in response.text


def test_a_domain_rule_becomes_a_problem_with_its_status() -> None:
    response = TestClient(app()).post("/things", json={"email": "amina@example.org"})
    assert response.status_code == 409
    assert response.json() == {
        "type": "/problems/conflict",
        "title": "Conflict with the current state",
        "status": 409,
        "detail": "that thing already exists",
        "instance": "/things",
        "thing": "x",
    }


def test_unknown_routes_and_crashes_are_problems_too() -> None:
    client = TestClient(app(), raise_server_exceptions=False)
    assert client.get("/nowhere").json()["status"] == 404
    crash = client.get("/boom")
    assert crash.status_code == 500
    assert crash.headers["content-type"] == "application/problem+json"
    assert "secret internals" not in crash.text


def test_a_service_refuses_to_start_without_its_hosts_and_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    required = ("kafka_bootstrap_servers", "mongodb_uri", "token_signing_key", "encryption_keys", "encryption_key_id")
    for name in required:
        monkeypatch.delenv(f"REGISTRATION_{name.upper()}", raising=False)
    with pytest.raises(ValidationError) as refused:
        RegistrationSettings()
    missing = {e["loc"][0] for e in refused.value.errors()}
    assert missing == set(required)


def test_each_service_reads_its_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFICATIONS_KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("NOTIFICATIONS_MONGODB_URI", "mongodb://notifications@mongo/")
    monkeypatch.setenv("NOTIFICATIONS_SMTP_HOST", "mailpit")
    monkeypatch.setenv("NOTIFICATIONS_SENDER", "AIMMS <mentoring@example.ac.uk>")
    monkeypatch.setenv("NOTIFICATIONS_LINK_SIGNING_KEY", "k" * 32)
    monkeypatch.setenv("NOTIFICATIONS_PUBLIC_URL", "https://aimms.example/notifications")
    monkeypatch.setenv("REGISTRATION_MONGODB_URI", "mongodb://registration@mongo/")

    settings = NotificationsSettings()

    assert settings.mongodb_uri == "mongodb://notifications@mongo/"
    assert settings.mongodb_database == "notifications"
    assert settings.smtp_host == "mailpit"
