"""API fuzzing: schemathesis sends every service requests generated from its own OpenAPI document,
with an administrator's valid token. No answer may be a server error, and every refusal (4xx) is
problem+json saying what was wrong (a page behind an email's link refuses with a page).

The services run as real HTTP servers (uvicorn, in threads of this process) on the real broker and
store. `AIMMS_FUZZ_EXAMPLES` sets the examples per operation (a few here; more for a deeper run).
"""

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from pymongo import MongoClient

from aimms_matching.app import create_app as create_matching
from aimms_matching.settings import MatchingSettings
from aimms_notifications.app import create_app as create_notifications
from aimms_notifications.settings import NotificationsSettings
from aimms_registration.app import create_app as create_registration
from aimms_registration.demo import seed as seed_demo
from aimms_registration.settings import RegistrationSettings
from aimms_surveys.app import create_app as create_surveys
from aimms_surveys.settings import SurveysSettings

from .conftest import ADMIN_CLIENT_ID, ADMIN_SECRET, Infrastructure, _free_port, service_settings

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("AIMMS_FUZZ_EXAMPLES", "6"))
PROBLEM_JSON = "application/problem+json"
SERVICES = {
    "registration": (RegistrationSettings, create_registration),
    "matching": (MatchingSettings, create_matching),
    "surveys": (SurveysSettings, create_surveys),
    "notifications": (NotificationsSettings, create_notifications),
}


class Served:
    """A service app served by uvicorn on a free local port, in a thread of its own."""

    def __init__(self, app: Any) -> None:
        self.url = f"http://127.0.0.1:{_free_port()}"
        port = int(self.url.rsplit(":", 1)[1])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> "Served":
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the service at {self.url} did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)


@pytest.fixture(scope="module")
def platform_over_http(infrastructure: Infrastructure) -> Iterator[dict[str, str]]:
    """Every service served over HTTP in a namespace of its own; the administrator's token."""
    namespace = f"fuzz{uuid.uuid4().hex[:8]}"
    registration_settings = service_settings(RegistrationSettings, infrastructure, namespace)
    asyncio.run(seed_demo(registration_settings))
    urls: dict[str, str] = {}
    with Served(create_registration(registration_settings)) as registration:
        urls["registration"] = registration.url
        jwks = f"{registration.url}/.well-known/jwks.json"
        others = [
            Served(create(service_settings(settings_cls, infrastructure, namespace, auth_jwks_url=jwks)))
            for name, (settings_cls, create) in SERVICES.items()
            if name != "registration"
        ]
        for name, served in zip([n for n in SERVICES if n != "registration"], others, strict=True):
            served.__enter__()
            urls[name] = served.url
        try:
            form = {"grant_type": "client_credentials", "client_id": ADMIN_CLIENT_ID, "client_secret": ADMIN_SECRET}
            answer = httpx.post(f"{registration.url}/oauth/token", data=form, timeout=10)
            assert answer.status_code == 200, answer.text
            yield urls | {"token": answer.json()["access_token"]}
        finally:
            for served in others:
                served.__exit__()
            with MongoClient(infrastructure.mongodb_uri) as client:
                for database in client.list_database_names():
                    if database.startswith(namespace):
                        client.drop_database(database)


@pytest.mark.parametrize("service", list(SERVICES))
def test_no_request_makes_a_server_error_and_every_refusal_is_problem_json(
    service: str, platform_over_http: dict[str, str]
) -> None:
    base = platform_over_http[service]
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    schema.config.update(base_url=base, headers={"Authorization": f"Bearer {platform_over_http['token']}"})
    operations = [result.ok() for result in schema.get_all_operations()]
    failures: list[str] = []

    for operation in operations:
        _fuzz(operation, failures)

    assert len(operations) >= 4, "the OpenAPI document lists the service's operations"
    assert failures == [], "\n".join(sorted(set(failures)))


def _content_type(response: schemathesis.Response) -> str:
    return next(iter(response.headers.get("content-type", [])), "")  # schemathesis lists each header's values


def _is_page(operation: schemathesis.APIOperation) -> bool:
    answers = operation.definition.raw.get("responses", {}).get("200", {}).get("content", {})
    return "text/html" in answers


def _fuzz(operation: schemathesis.APIOperation, failures: list[str]) -> None:
    """Send the operation its generated examples; note each server error and each refusal in the wrong form."""
    # A page behind an email's link answers a person: its refusals are pages too, in words.
    refusal_type = "text/html" if _is_page(operation) else PROBLEM_JSON

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,  # the same examples every run: a red CI is reproducible
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def fuzz(case: schemathesis.Case) -> None:
        response = case.call(timeout=30)
        where = f"{case.method} {case.formatted_path} -> {response.status_code}"
        if response.status_code >= 500:
            failures.append(f"{where}: {response.text[:300]}")
        elif 400 <= response.status_code < 500 and not _content_type(response).startswith(refusal_type):
            failures.append(f"{where} is not {refusal_type}: {response.text[:200]}")

    fuzz()
