"""Notifications settings, read from NOTIFICATIONS_* environment variables."""

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from aimms_shared.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    """Settings of the notifications service."""

    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_", extra="ignore", frozen=True)

    mongodb_database: str = "notifications"

    smtp_host: str
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_tls: bool = False
    smtp_timeout_seconds: float = 15.0
    sender: str = Field(description="From address, e.g. 'AIMMS Mentoring <mentoring@example.ac.uk>'.")
    # The domain part of stable Message-IDs, so a resend is recognisably the same message.
    message_id_domain: str = "aimms.local"
    # Temporary SMTP failures are retried this many times, with back-off, before giving up.
    delivery_max_attempts: int = Field(default=12, ge=1)
    delivery_retry_base_seconds: float = Field(default=2.0, gt=0)
    delivery_retry_cap_seconds: float = Field(default=600.0, gt=0)
    # A message to a participant whose contact details have not arrived waits this long, then is failed.
    details_wait_seconds: float = Field(default=86400.0, gt=0)
    # While waiting, it is looked at again after at most this long (arrival of the details wakes it sooner).
    details_recheck_cap_seconds: float = Field(default=60.0, gt=0)
    # A directory of template overrides, searched before the packaged templates (see docs/notifications.md).
    template_dir: str | None = None
