"""Matching settings, read from MATCHING_* environment variables."""

from pydantic_settings import SettingsConfigDict

from aimms_shared.settings import ServiceSettings


class MatchingSettings(ServiceSettings):
    """Settings of the matching service."""

    model_config = SettingsConfigDict(env_prefix="MATCHING_", extra="ignore", frozen=True)

    mongodb_database: str = "matching"
