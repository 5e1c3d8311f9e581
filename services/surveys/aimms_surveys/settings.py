"""Surveys settings, read from SURVEYS_* environment variables."""

from pydantic_settings import SettingsConfigDict

from aimms_shared.settings import ServiceSettings


class SurveysSettings(ServiceSettings):
    """Settings of the surveys service."""

    model_config = SettingsConfigDict(env_prefix="SURVEYS_", extra="ignore", frozen=True)

    mongodb_database: str = "surveys"
