"""Tenant isolation in registration: every route wants a token with its scope, and a portal sees and
changes only its own institution's participants (published mentor profiles excepted)."""

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from aimms_registration.demo import SENIORITY
from aimms_shared.auth import ADMIN, PARTICIPANTS_READ, PARTICIPANTS_WRITE, PORTAL_SCOPES, PROFILES_READ

from .conftest import Platform, bearer, token

pytestmark = pytest.mark.integration

# Anyone may call these: getting a token, verifying one, operations, and the API's own documents.
PUBLIC_PATHS = {
    "/oauth/token",
    "/page-links",  # she asks by address; the answer is the same whether or not it is registered
    "/page-links/session",  # the emailed link's secret is the credential
    "/programmes/{programme_id}/public",  # a programme open to non-members, as the scheme's page shows it
    "/programmes/{programme_id}/interests",  # interest on the scheme's own page (only where open to non-members)
    "/.well-known/jwks.json",
    "/healthz",
    "/readyz",
    "/metrics",
    "/asyncapi.json",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
}
Operation = tuple[str, str]  # (method, path template)

# The scope each protected operation requires: the access policy, stated once. A new route fails
# the tests until it is protected and listed here.
REQUIRED_SCOPE: dict[Operation, str] = {
    ("POST", "/institutions"): ADMIN,
    ("GET", "/institutions"): PROFILES_READ,
    ("GET", "/institutions/{institution_id}"): PROFILES_READ,
    ("POST", "/institutions/{institution_id}/suspension"): ADMIN,
    ("DELETE", "/institutions/{institution_id}/suspension"): ADMIN,
    ("GET", "/credentials"): ADMIN,
    ("POST", "/credentials"): ADMIN,
    ("POST", "/credentials/{client_id}/rotation"): ADMIN,
    ("DELETE", "/credentials/{client_id}"): ADMIN,
    ("POST", "/programmes"): ADMIN,
    ("PUT", "/programmes/{programme_id}"): ADMIN,
    ("GET", "/programmes"): PROFILES_READ,
    ("GET", "/programmes/{programme_id}"): PROFILES_READ,
    ("POST", "/interests"): PARTICIPANTS_WRITE,
    ("POST", "/participants"): PARTICIPANTS_WRITE,
    ("GET", "/participants"): PARTICIPANTS_READ,
    ("GET", "/participants/{participant_id}"): PARTICIPANTS_READ,
    ("PATCH", "/participants/{participant_id}"): PARTICIPANTS_WRITE,
    ("POST", "/participants/{participant_id}/withdrawal"): PARTICIPANTS_WRITE,
    ("PUT", "/participants/{participant_id}/evaluation-consent"): PARTICIPANTS_WRITE,
    ("PUT", "/participants/{participant_id}/evaluation-exclusion"): ADMIN,
    ("DELETE", "/participants/{participant_id}"): PARTICIPANTS_WRITE,
    ("GET", "/participants/{participant_id}/export"): PARTICIPANTS_READ,
    ("GET", "/mentor-profiles"): PROFILES_READ,
    ("GET", "/reports/pipeline"): ADMIN,
}
PROBLEM_JSON = "application/problem+json"
UNAUTHENTICATED = (401, PROBLEM_JSON, "/problems/unauthenticated")
FORBIDDEN = (403, PROBLEM_JSON, "/problems/forbidden")
PROGRAMME = "aimms-mentoring"
DOMAINS = {"demo-university": "demo-university.ac.uk", "northgate": "northgate.ac.uk"}


def api_routes(app: FastAPI) -> list[tuple[str, APIRoute]]:
    """(path, route) of every API route of the app, routes of included routers too."""
    # Since FastAPI 0.137 app.routes holds one node per included router; this walks into them.
    contexts = fastapi.routing.iter_route_contexts(app.routes)
    return [(c.path, c.original_route) for c in contexts if isinstance(c.original_route, APIRoute)]


def protected_operations(app: FastAPI) -> list[Operation]:
    """Every (method, path) of the app's API routes, except the public ones."""
    return sorted(
        (method, path)
        for path, route in api_routes(app)
        if path not in PUBLIC_PATHS
        for method in route.methods - {"HEAD", "OPTIONS"}
    )


def concrete(path: str) -> str:
    """The path with an id that names nothing in each placeholder."""
    return re.sub(r"\{[^}]+\}", "no-such-id", path)


def problem_of(response: httpx.Response) -> tuple[int, str | None, str | None]:
    """Status, content type and problem type of a response."""
    is_problem = response.headers.get("content-type") == PROBLEM_JSON
    return response.status_code, response.headers.get("content-type"), response.json()["type"] if is_problem else None


def sameness(response: httpx.Response) -> dict[str, Any]:
    """What a problem says apart from its wording and path, which name the id asked for."""
    return {"status": response.status_code} | {
        k: v for k, v in response.json().items() if k not in ("detail", "instance")
    }


def mentor_body(namespace: str, who: str, institution_id: str, **overrides: Any) -> dict[str, Any]:
    """A complete, valid registration of a mentor who publishes her profile, at an institution's domain."""
    return {
        "name": f"Prof {who.title()} Tenant",
        "email": f"{who}.{namespace}@{DOMAINS[institution_id]}",
        "programme_id": PROGRAMME,
        "role": "mentor",
        "job_title": "Professor of Cardiology",
        "seniority": SENIORITY[-1],
        "pathway": "clinical",
        "research_interests": ["cardiology", "clinical trials"],
        "offers": "Fellowship applications and returning from leave",
        "mentor_capacity": 1,
        "publish_profile": True,
        "consents": {"privacy_notice": "2025-01", "code_of_conduct": "v2", "confidentiality": "v1"},
        "confirmed_eligibility": ["woman", "ethnic-minority", "academic-medicine"],
    } | overrides


def interest_body(namespace: str, who: str, institution_id: str) -> dict[str, Any]:
    """An expression of interest naming an institution explicitly."""
    return {
        "name": f"Dr {who.title()} Tenant",
        "email": f"{who}.{namespace}@{DOMAINS[institution_id]}",
        "programme_id": PROGRAMME,
        "institution_id": institution_id,
    }


@pytest.fixture
async def anonymous(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the running registration app that sends no token at all."""
    transport = httpx.ASGITransport(app=platform.registration_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        yield client


async def new_portal_credential(platform: Platform, institution_id: str) -> tuple[str, str]:
    """(client id, secret) of a portal credential with every portal scope, created by the administrator."""
    body = {"name": f"{institution_id} portal", "institution_id": institution_id, "scopes": list(PORTAL_SCOPES)}
    response = await platform.registration.post("/credentials", json=body, headers=bearer(platform.admin_token))
    assert response.status_code == 201, response.text
    return response.json()["client_id"], response.json()["client_secret"]


@pytest.fixture
async def demo_portal_token(platform: Platform) -> Callable[[set[str]], Awaitable[str]]:
    """Tokens of a demo-university portal credential holding just the scopes asked for."""
    client_id, secret = await new_portal_credential(platform, "demo-university")
    issued: dict[frozenset[str], str] = {}

    async def with_scopes(scopes: set[str]) -> str:
        key = frozenset(scopes)
        if key not in issued:
            issued[key] = await token(platform.registration, client_id, secret, scope=" ".join(sorted(key)))
        return issued[key]

    return with_scopes


async def test_every_protected_route_is_in_the_access_policy(platform: Platform) -> None:
    """A route added without a line in REQUIRED_SCOPE (or a public path that vanished) shows up here."""
    operations = protected_operations(platform.registration_app)
    public = {path for path, _ in api_routes(platform.registration_app)} & PUBLIC_PATHS

    assert sorted(operations) == sorted(REQUIRED_SCOPE)
    assert public >= {"/oauth/token", "/.well-known/jwks.json", "/healthz", "/readyz", "/metrics", "/asyncapi.json"}
    assert public >= {"/page-links", "/page-links/session"}


async def test_every_route_but_the_public_ones_refuses_a_request_without_a_token(
    platform: Platform, anonymous: httpx.AsyncClient
) -> None:
    operations = protected_operations(platform.registration_app)
    assert ("POST", "/participants") in operations  # the table really holds the app's routes

    answers = {op: problem_of(await anonymous.request(op[0], concrete(op[1]))) for op in operations}

    assert {op: answer for op, answer in answers.items() if answer != UNAUTHENTICATED} == {}


async def test_the_openapi_document_states_the_scope_of_every_protected_route(
    platform: Platform, anonymous: httpx.AsyncClient
) -> None:
    paths = (await anonymous.get("/openapi.json")).json()["paths"]

    stated = {(method, path): paths[path][method.lower()].get("x-required-scopes") for method, path in REQUIRED_SCOPE}

    assert stated == {op: [scope] for op, scope in REQUIRED_SCOPE.items()}


async def test_a_token_lacking_a_routes_scope_is_forbidden(
    platform: Platform, demo_portal_token: Callable[[set[str]], Awaitable[str]]
) -> None:
    answers = {}
    for (method, path), scope in REQUIRED_SCOPE.items():
        # Admin-only routes: a portal's token with every portal scope; portal routes: every portal scope but theirs.
        lacking = platform.portal_token if scope == ADMIN else await demo_portal_token(set(PORTAL_SCOPES) - {scope})
        response = await platform.registration.request(method, concrete(path), headers=bearer(lacking))
        answers[method, path] = problem_of(response)

    assert {op: answer for op, answer in answers.items() if answer != FORBIDDEN} == {}


async def test_a_token_with_just_the_routes_scope_gets_past_the_scope_check(
    platform: Platform, demo_portal_token: Callable[[set[str]], Awaitable[str]]
) -> None:
    answers = {}
    for (method, path), scope in REQUIRED_SCOPE.items():
        enough = platform.admin_token if scope == ADMIN else await demo_portal_token({scope})
        # No body and ids that name nothing: the route answers 200, 404 or 422, and changes nothing.
        response = await platform.registration.request(method, concrete(path), headers=bearer(enough))
        answers[method, path] = response.status_code

    assert {op: status for op, status in answers.items() if status in (401, 403)} == {}


@dataclass(frozen=True)
class TwoInstitutions:
    """Portals of demo-university and northgate, the administrator, and one mentor registered at each."""

    demo: dict[str, str]
    northgate: dict[str, str]
    admin: dict[str, str]
    demo_mentor: dict[str, Any]
    northgate_mentor: dict[str, Any]


async def register(platform: Platform, portal: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """Register a participant through a portal; the participant as registered."""
    response = await platform.registration.post("/participants", json=body, headers=portal)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
async def two_institutions(platform: Platform) -> TwoInstitutions:
    """Northgate's portal onboarded by the administrator, and a published mentor at each institution."""
    northgate = bearer(await token(platform.registration, *await new_portal_credential(platform, "northgate")))
    demo = bearer(platform.portal_token)
    return TwoInstitutions(
        demo=demo,
        northgate=northgate,
        admin=bearer(platform.admin_token),
        demo_mentor=await register(platform, demo, mentor_body(platform.namespace, "ada", "demo-university")),
        northgate_mentor=await register(platform, northgate, mentor_body(platform.namespace, "grace", "northgate")),
    )


async def participant_ids(platform: Platform, headers: dict[str, str]) -> set[str]:
    """Ids of the participants GET /participants lists for a caller."""
    response = await platform.registration.get("/participants", headers=headers)
    assert response.status_code == 200, response.text
    return {p["participant_id"] for p in response.json()}


async def test_each_portal_lists_only_its_own_institutions_participants(
    platform: Platform, two_institutions: TwoInstitutions
) -> None:
    t = two_institutions

    assert await participant_ids(platform, t.demo) == {t.demo_mentor["participant_id"]}
    assert await participant_ids(platform, t.northgate) == {t.northgate_mentor["participant_id"]}


async def test_the_administrator_lists_the_participants_of_every_institution(
    platform: Platform, two_institutions: TwoInstitutions
) -> None:
    t = two_institutions

    everyone = await participant_ids(platform, t.admin)

    assert everyone == {t.demo_mentor["participant_id"], t.northgate_mentor["participant_id"]}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/participants/{id}", None),
        ("PATCH", "/participants/{id}", {"job_title": "Taken over"}),
        ("POST", "/participants/{id}/withdrawal", {"reason": "not hers to withdraw"}),
        ("DELETE", "/participants/{id}", None),
        ("GET", "/participants/{id}/export", None),
    ],
    ids=["read", "update", "withdraw", "erase", "export"],
)
async def test_another_institutions_participant_is_not_found_just_like_an_absent_one(
    platform: Platform, two_institutions: TwoInstitutions, method: str, path: str, body: dict[str, Any] | None
) -> None:
    t = two_institutions
    for portal, owner, hers in ((t.demo, t.northgate, t.northgate_mentor), (t.northgate, t.demo, t.demo_mentor)):
        theirs = await platform.registration.request(
            method, path.format(id=hers["participant_id"]), json=body, headers=portal
        )
        absent = await platform.registration.request(method, path.format(id=uuid.uuid4()), json=body, headers=portal)

        assert theirs.status_code == 404, theirs.text
        assert theirs.headers["content-type"] == PROBLEM_JSON
        assert sameness(theirs) == sameness(absent)
        assert hers["email"] not in theirs.text
        untouched = await platform.registration.get(f"/participants/{hers['participant_id']}", headers=owner)
        assert untouched.status_code == 200, untouched.text
        assert (untouched.json()["status"], untouched.json()["job_title"]) == ("active", hers["job_title"])


@pytest.mark.parametrize(
    ("path", "body_of"),
    [("/participants", mentor_body), ("/interests", interest_body)],
    ids=["register", "express-interest"],
)
async def test_a_portal_asking_to_act_for_another_institution_is_refused(
    platform: Platform, two_institutions: TwoInstitutions, path: str, body_of: Callable[..., dict[str, Any]]
) -> None:
    t = two_institutions
    for portal, other in ((t.demo, "northgate"), (t.northgate, "demo-university")):
        body = body_of(platform.namespace, "mallory", other) | {"institution_id": other}

        response = await platform.registration.post(path, json=body, headers=portal)

        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM_JSON
        problem = response.json()
        assert (problem["type"], problem["field"], problem["rule"]) == (
            "/problems/rule-broken",
            "institution_id",
            "own-institution",
        )
    everyone = await participant_ids(platform, t.admin)
    assert everyone == {t.demo_mentor["participant_id"], t.northgate_mentor["participant_id"]}
    pipeline = (await platform.registration.get("/reports/pipeline", headers=t.admin)).json()
    assert sum(row["interested"] for row in pipeline) == 0  # no expression of interest was recorded either


async def test_a_portal_sees_its_own_institution_in_full_and_no_other(
    platform: Platform, two_institutions: TwoInstitutions
) -> None:
    t = two_institutions
    get = platform.registration.get

    other = await get("/institutions/northgate", headers=t.demo)
    absent = await get("/institutions/no-such-school", headers=t.demo)

    assert other.status_code == 404, other.text
    assert other.headers["content-type"] == PROBLEM_JSON
    assert sameness(other) == sameness(absent)
    assert "northgate.ac.uk" not in other.text
    for caller, institution_id in ((t.admin, "northgate"), (t.northgate, "northgate"), (t.demo, "demo-university")):
        response = await get(f"/institutions/{institution_id}", headers=caller)
        assert response.status_code == 200, response.text
        assert response.json()["email_domains"] == [DOMAINS[institution_id]]


async def test_published_mentor_profiles_are_visible_to_every_institutions_portal_without_email(
    platform: Platform, two_institutions: TwoInstitutions
) -> None:
    t = two_institutions
    both = {
        (t.demo_mentor["participant_id"], "demo-university"),
        (t.northgate_mentor["participant_id"], "northgate"),
    }
    for portal in (t.demo, t.northgate):
        response = await platform.registration.get(
            "/mentor-profiles", params={"programme_id": PROGRAMME}, headers=portal
        )

        assert response.status_code == 200, response.text
        profiles = response.json()
        assert {(p["participant_id"], p["institution_id"]) for p in profiles} == both
        assert all("email" not in p and "@" not in str(p) for p in profiles)
