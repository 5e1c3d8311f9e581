"""The fault suite uses the integration tests' infrastructure (environment first, then testcontainers)."""

from tests.integration.conftest import infrastructure  # noqa: F401 - a fixture, registered by being here
