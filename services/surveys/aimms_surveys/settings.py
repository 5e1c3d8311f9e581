"""Surveys settings, read from SURVEYS_* environment variables."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from aimms_shared.settings import FieldEncryptionSettings, ServiceSettings


class SurveysSettings(ServiceSettings, FieldEncryptionSettings):
    """Settings of the surveys service. Answers to sensitive items are encrypted with its keys."""

    model_config = SettingsConfigDict(env_prefix="SURVEYS_", extra="ignore", frozen=True)

    mongodb_database: str = "surveys"
    # Not a secret, so it has a default (the local stack's address); every deployment sets its own.
    public_url: str = Field(
        default="http://127.0.0.1:8003",
        description="Base URL participants reach surveys at, for questionnaire links, e.g. https://api/surveys",
    )
    scheduler_poll_seconds: float = Field(default=1.0, gt=0)
