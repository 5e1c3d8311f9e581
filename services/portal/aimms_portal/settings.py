"""Portal settings, read from PORTAL_* environment variables."""

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PortalSettings(BaseSettings):
    """Where the public APIs are; the portal keeps no data of its own (a coordinator's session is her
    access token, in a cookie only her browser holds)."""

    model_config = SettingsConfigDict(env_prefix="PORTAL_", extra="ignore", frozen=True)

    # No default: a portal that cannot reach surveys should fail at start, not at the first link.
    registration_url: str = Field(description="Base URL of the registration API, e.g. http://registration:8000")
    matching_url: str = Field(description="Base URL of the matching API, e.g. http://matching:8000")
    surveys_url: str = Field(description="Base URL of the surveys API, e.g. http://surveys:8000")
    notifications_url: str = Field(description="Base URL of the notifications API, e.g. http://notifications:8000")
    api_timeout_seconds: float = Field(default=10.0, gt=0)
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"
