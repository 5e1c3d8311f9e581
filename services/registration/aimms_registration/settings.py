"""Registration settings, read from REGISTRATION_* environment variables."""

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from aimms_shared.settings import FieldEncryptionSettings, ServiceSettings


class RegistrationSettings(ServiceSettings, FieldEncryptionSettings):
    """Settings of the registration service. Keys and secrets have no defaults."""

    model_config = SettingsConfigDict(env_prefix="REGISTRATION_", extra="ignore", frozen=True)

    mongodb_database: str = "registration"

    # Ed25519 private key (PEM) that signs access tokens; its public half is served as JWKS.
    token_signing_key: SecretStr
    # Signing keys a rotation replaced (PEM, one after another): still published in the JWKS, so the
    # tokens they signed are accepted until they expire. Drop them once a token's lifetime has passed.
    token_previous_signing_keys: SecretStr = SecretStr("")
    token_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    public_url: str = Field(
        description="Base URL of the participant pages her emailed links open (the portal), e.g. https://host/portal"
    )
    # The first administrator credential, from deployment configuration (created if absent).
    bootstrap_admin_client_id: str | None = None
    bootstrap_admin_secret: SecretStr | None = Field(default=None, min_length=24)
