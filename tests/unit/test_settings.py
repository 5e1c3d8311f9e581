"""Settings that refuse to start without their hosts and keys, each read from its own prefix."""

import pytest
from pydantic import ValidationError

from aimms_notifications.settings import NotificationsSettings
from aimms_registration.settings import RegistrationSettings


def test_a_service_refuses_to_start_without_its_hosts_and_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    required = (
        "kafka_bootstrap_servers",
        "mongodb_uri",
        "token_signing_key",
        "encryption_keys",
        "encryption_key_id",
        "public_url",
    )
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
