"""Registration settings, read from REGISTRATION_* environment variables."""

from pydantic_settings import SettingsConfigDict

from aimms_shared.settings import ServiceSettings


class RegistrationSettings(ServiceSettings):
    """Settings of the registration service."""

    model_config = SettingsConfigDict(env_prefix="REGISTRATION_", extra="ignore", frozen=True)

    mongodb_database: str = "registration"
