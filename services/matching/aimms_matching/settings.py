"""Matching settings, read from MATCHING_* environment variables."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from aimms_shared.settings import LinkSigningSettings, ServiceSettings


class MatchingSettings(ServiceSettings, LinkSigningSettings):
    """Settings of the matching service."""

    model_config = SettingsConfigDict(env_prefix="MATCHING_", extra="ignore", frozen=True)

    mongodb_database: str = "matching"
    public_url: str = Field(
        description="Base URL people reach matching at, for answer links, e.g. https://api/matching"
    )
    scheduler_poll_seconds: float = Field(default=1.0, gt=0)
