"""Matching settings, read from MATCHING_* environment variables."""

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from aimms_shared.settings import ServiceSettings


class MatchingSettings(ServiceSettings):
    """Settings of the matching service."""

    model_config = SettingsConfigDict(env_prefix="MATCHING_", extra="ignore", frozen=True)

    mongodb_database: str = "matching"
    # Signs the accept/decline links in proposal emails; at least 32 random bytes, kept secret.
    link_signing_key: SecretStr = Field(min_length=32)
    public_url: str = Field(
        description="Base URL people reach matching at, for answer links, e.g. https://api/matching"
    )
    scheduler_poll_seconds: float = Field(default=1.0, gt=0)
