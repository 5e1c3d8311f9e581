"""Notifications settings, read from NOTIFICATIONS_* environment variables."""

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from aimms_shared.durations import is_duration
from aimms_shared.settings import LinkSigningSettings, ServiceSettings


class NotificationsSettings(ServiceSettings, LinkSigningSettings):
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
    public_url: str = Field(
        description="Base URL people reach notifications at, for opt-out links, e.g. https://api/notifications"
    )
    # How often the scheduler looks for due digests (and, less often, for delivery records to purge).
    scheduler_poll_seconds: float = Field(default=5.0, gt=0)
    # Per-message details (rendering context, addresses, error texts) are purged this long after a
    # message was created and finished; status, template and times stay (ISO 8601 duration).
    delivery_log_retention: str = "P90D"

    @field_validator("delivery_log_retention")
    @classmethod
    def _iso_duration(cls, value: str) -> str:
        if not is_duration(value):
            raise ValueError(f"'{value}' is not an ISO 8601 duration such as P90D")
        return value
