"""Settings every service shares; each service subclasses with its own env prefix."""

from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from aimms_shared.crypto import FieldCipher, parse_keys


class ServiceSettings(BaseSettings):
    """Connections and tuning common to all services. Hosts have no default: fail fast."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    kafka_bootstrap_servers: str
    mongodb_uri: str
    mongodb_database: str

    # Prefix of every topic and consumer group, so several deployments (or test runs) can share
    # one Kafka cluster without seeing each other's events. Empty in a normal deployment.
    topic_namespace: str = Field(default="", pattern=r"^[A-Za-z0-9_-]*$")

    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"

    # How long a relay or worker owns a claimed document before another may take it over.
    lease_seconds: float = Field(default=30.0, gt=0)
    # Attempts of a failing event handler before the message is parked on the dead-letter topic.
    consumer_max_attempts: int = Field(default=5, ge=1)
    consumer_retry_base_seconds: float = Field(default=0.2, ge=0)
    # Processed-event ids are kept this long to recognise redeliveries (TTL indexes are not available).
    processed_event_retention_hours: float = Field(default=24 * 14, gt=0)

    # Access tokens are issued by registration; other services verify them with its public keys.
    auth_issuer: str = "aimms-registration"
    auth_jwks_url: str | None = Field(default=None, description="e.g. http://registration:8000/.well-known/jwks.json")


class LinkSigningSettings(BaseModel):
    """For services whose emails carry signed links: the key, and keys a rotation retired."""

    # Signs the links in its emails; at least 32 random bytes, kept secret.
    link_signing_key: SecretStr = Field(min_length=32)
    # Keys a rotation replaced, comma-separated: links they signed are honoured until those lapse.
    link_previous_signing_keys: SecretStr = SecretStr("")

    def link_keys(self) -> tuple[bytes, ...]:
        """The current key, then the retired ones (which only verify)."""
        retired = self.link_previous_signing_keys.get_secret_value().split(",")
        return (self.link_signing_key.get_secret_value().encode(), *(k.strip().encode() for k in retired if k.strip()))


class FieldEncryptionSettings(BaseModel):
    """For services that keep special category data: its keys, with no default (see aimms_shared.crypto)."""

    # `kid:base64key[,kid:base64key…]`, 32-byte keys; old keys stay listed to read what they sealed.
    encryption_keys: SecretStr
    encryption_key_id: str

    def field_cipher(self) -> FieldCipher:
        """The cipher these keys configure (raises KeyConfigurationError when they cannot be used)."""
        return FieldCipher(parse_keys(self.encryption_keys.get_secret_value()), self.encryption_key_id)
