"""A tenant-isolation matrix over every protected route of every service, generated from their OpenAPI documents.

An operation is protected when its OpenAPI operation carries `x-required-scopes` (put there by `require`).
Each one is called with school A's (demo-university's) real ids by callers it must refuse:

  no token; an expired token; a token signed by a key no service knows (under its own key id, and under
  registration's real key id)                                          -> 401 problem+json
  a token lacking the route's scope; a participant's own token where the route lets no participant in
                                                                       -> 403 problem+json
  school B's (northgate's) portal, and a participant of school B with her own token where participants are
  let in: an admin-only route -> 403; a route naming one of school A's records in its path -> 403, 404 or 409
  (a read model's "not yet known");
  any other route may answer, but never with school A's data (except the CROSS_INSTITUTION routes, which
  publish mentor profiles on purpose); a refusal is the same as for an absent record (else school B learns
  the record exists); and after every write the administrator re-reads school A's state, which must not
  have changed.

The 401/403 cases send an invalid request (an empty JSON body, no query parameters): the caller must be
refused before anything is validated, so a 422 there is a finding. School B's calls send a minimal valid body
built from the operation's schema, so that only tenant isolation stands between them and school A. A route
added to any service is in the matrix without editing this file; one added without `require` fails
test_public_operations_are_exactly_the_allow_listed_ones.

Registration, notifications, matching and surveys run in-process on the real broker and store. The portal is
left out: it serves pages (no OpenAPI document), holds no data and calls these APIs with its caller's token.
"""

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from aimms_matching.app import create_app as create_matching
from aimms_matching.settings import MatchingSettings
from aimms_notifications.app import create_app as create_notifications
from aimms_notifications.settings import NotificationsSettings
from aimms_registration.app import create_app as create_registration
from aimms_registration.settings import RegistrationSettings
from aimms_registration.tokens import TokenIssuer, new_signing_key_pem
from aimms_shared.auth import ADMIN, ALGORITHM, ALL_SCOPES, PORTAL_SCOPES
from aimms_surveys.app import create_app as create_surveys
from aimms_surveys.settings import SurveysSettings

from .conftest import (
    ADMIN_CLIENT_ID,
    SIGNING_KEY,
    Infrastructure,
    Scheme,
    bearer,
    eventually,
    has_status,
    register,
    running,
    service_settings,
    token,
    verifier_of,
)
from .test_circles import PROGRAMME as CIRCLES_PROGRAMME
from .test_page_links import own_token
from .test_tenant_isolation import (
    FORBIDDEN,
    PROBLEM_JSON,
    PUBLIC_PATHS,
    UNAUTHENTICATED,
    Operation,
    new_portal_credential,
    problem_of,
    sameness,
)

pytestmark = pytest.mark.integration

SCHOOL_A, SCHOOL_B = "demo-university", "northgate"
PROGRAMME, CIRCLES = "aimms-mentoring", CIRCLES_PROGRAMME["programme_id"]
UNKNOWN = "no-such-id"  # for a parameter naming nothing this test created

# Parameters whose value is one of school A's own records (programmes and waves are the scheme's, not a school's).
SCHOOL_RECORDS = {
    "participant_id",
    "mentee_id",
    "mentor_id",
    "pair_id",
    "concern_id",
    "circle_id",
    "institution_id",
    "client_id",
    "notification_id",
}

# Routes anyone may call, with why. Every other operation must carry `x-required-scopes`.
EVERY_SERVICES_OWN = {
    ("GET", "/healthz"): "liveness probe",
    ("GET", "/readyz"): "readiness probe",
    ("GET", "/asyncapi.json"): "the service's event documentation",
}
EMAILED_LINK = "the signed token of an emailed link is the credential"
PUBLIC_OPERATIONS: dict[str, dict[Operation, str]] = {
    "registration": EVERY_SERVICES_OWN
    | {
        ("POST", "/oauth/token"): "where a credential gets its token",
        ("GET", "/.well-known/jwks.json"): "the public keys every service verifies tokens with",
        ("POST", "/page-links"): "she asks by address; the answer never says whether it is registered",
        ("POST", "/page-links/session"): EMAILED_LINK,
        ("GET", "/programmes/{programme_id}/public"): "a programme open to non-members, as its page shows it",
        ("POST", "/programmes/{programme_id}/interests"): "interest from the programme's own page (open ones only)",
    },
    "matching": EVERY_SERVICES_OWN
    | {
        ("GET", "/answer-links/{token}"): EMAILED_LINK,
        ("POST", "/answer-links/{token}"): EMAILED_LINK,
        ("GET", "/answers/{token}"): EMAILED_LINK,
        ("POST", "/answers/{token}"): EMAILED_LINK,
    },
    "notifications": EVERY_SERVICES_OWN
    | {("GET", "/opt-out/{token}"): EMAILED_LINK, ("POST", "/opt-out/{token}"): EMAILED_LINK},
    "surveys": EVERY_SERVICES_OWN
    | {("GET", "/surveys/{token}"): EMAILED_LINK, ("POST", "/surveys/{token}"): EMAILED_LINK},
}

# Routes that show school A's data to school B on purpose, with why. They must still never show an address.
CROSS_INSTITUTION: dict[tuple[str, str, str], str] = {
    ("registration", "GET", "/mentor-profiles"): "published mentor profiles are offered to every school's mentees",
    ("matching", "GET", "/directory"): "the mentor directory lists published mentors of every school",
}

# Routes that refuse school B differently for one of school A's records than for an absent one, with why
# (none today: matching's preferences answer "not yet known" for both since the matrix found the difference).
UNLIKE_ABSENT: dict[tuple[str, str, str], str] = {}

# What the administrator re-reads after each write by a wrong caller: school A's records in every service.
SCHOOL_A_STATE = (
    ("registration", "/participants"),  # every participant: none added, removed or changed
    ("registration", "/institutions/{institution_id}"),
    ("registration", "/credentials?institution_id={institution_id}"),
    ("registration", "/programmes/{programme_id}"),
    ("registration", "/reports/pipeline?programme_id={programme_id}"),
    ("matching", "/pairs/{pair_id}"),
    ("matching", "/pairs/{pair_id}/meetings"),
    ("matching", "/mentees/{mentee_id}/preferences"),
    ("matching", "/programmes/{programme_id}/concerns?open_only=false"),
    ("matching", "/circles/{circle_id}"),
    ("notifications", "/participants/{participant_id}/preferences"),
    ("notifications", "/programmes/{programme_id}/digest"),
    ("surveys", "/questionnaires/{programme_id}"),
    ("surveys", "/programmes/{programme_id}/survey-policy"),
)
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True)
class Route:
    """One operation of a service's OpenAPI document."""

    service: str
    method: str
    path: str
    spec: dict[str, Any]

    @property
    def protected(self) -> bool:
        return "x-required-scopes" in self.spec

    @property
    def scopes(self) -> list[str]:
        return self.spec.get("x-required-scopes", [])

    @property
    def admin_only(self) -> bool:
        return ADMIN in self.scopes

    @property
    def lets_participants_in(self) -> bool:
        return bool(self.spec.get("x-participant-self"))

    @property
    def names_a_school_record(self) -> bool:
        return bool(set(re.findall(r"\{(\w+)\}", self.path)) & SCHOOL_RECORDS)

    @property
    def takes_json(self) -> bool:
        return "application/json" in self.spec.get("requestBody", {}).get("content", {})

    @property
    def key(self) -> tuple[str, str, str]:
        return self.service, self.method, self.path

    def __str__(self) -> str:
        return f"{self.service}: {self.method} {self.path}"


def routes_of(service: str, app: FastAPI) -> list[Route]:
    """Every operation the service's OpenAPI document states."""
    paths = app.openapi()["paths"]
    return [Route(service, method.upper(), path, spec) for path, item in paths.items() for method, spec in item.items()]


def example(schema: dict[str, Any], document: dict[str, Any], values: dict[str, Any]) -> Any:
    """A minimal value `schema` accepts: required fields only, plus every field `values` names (school A's)."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        return example(document["components"]["schemas"][name], document, values)
    for alternatives in ("anyOf", "oneOf", "allOf"):
        if alternatives in schema:
            return example(next(s for s in schema[alternatives] if s.get("type") != "null"), document, values)
    if "const" in schema or "enum" in schema:
        return schema.get("const", (schema.get("enum") or [None])[0])
    match schema.get("type"):
        case "object":
            fields = schema.get("properties", {})
            wanted = [f for f in fields if f in schema.get("required", ()) or f in values]
            return {f: values[f] if f in values else example(fields[f], document, values) for f in wanted}
        case "array":
            return [example(schema.get("items", {}), document, values)] * schema.get("minItems", 0)
        case "string":
            fmt = schema.get("format")
            if fmt in ("date", "date-time"):
                return date.today().isoformat() if fmt == "date" else datetime.now(UTC).isoformat()
            return values["email"] if fmt == "email" else "probe".ljust(schema.get("minLength", 0), "x")
        case "integer" | "number":
            return schema.get("minimum", 1)
        case "boolean":
            return False
    return {}


@dataclass
class TwoSchools:
    """The four services running, school A's records in each, and the callers that must not reach them."""

    apps: dict[str, FastAPI]
    clients: dict[str, httpx.AsyncClient]  # they send no token unless a call gives one
    ids: dict[str, str]  # school A's record for each parameter name a route takes
    body_values: dict[str, Any]  # school A's values for a body's fields
    school_a_data: set[str]  # school A's ids and addresses: school B must never read one
    addresses: set[str]
    admin: dict[str, str]
    invalid_tokens: dict[str, dict[str, str]]  # case -> headers: each must get 401
    lacking_scope: dict[str, dict[str, str]]  # scope -> a school A portal token with every portal scope but it
    school_a_portal: dict[str, str]  # every portal scope, not admin
    school_b_portal: dict[str, str]
    school_b_participant: dict[str, str]  # her own token (scope `self`)

    async def call(
        self, route: Route, headers: dict[str, str], body: Any = None, *, query: bool = True
    ) -> httpx.Response:
        """Call a route with school A's ids in its path (and in its query parameters, unless told not to)."""
        path = re.sub(r"\{(\w+)\}", lambda m: self.ids.get(m.group(1), UNKNOWN), route.path)
        parameters = [p for p in route.spec.get("parameters", []) if query and p["in"] == "query"]
        params = {
            p["name"]: self.ids.get(p["name"], UNKNOWN)
            for p in parameters
            if p["name"] in self.ids or p.get("required")
        }
        kwargs: dict[str, Any] = {"json": body} if route.takes_json and body is not None else {}
        return await self.clients[route.service].request(route.method, path, params=params, headers=headers, **kwargs)

    def valid_body(self, route: Route) -> Any:
        if not route.takes_json:
            return None
        schema = route.spec["requestBody"]["content"]["application/json"]["schema"]
        return example(schema, self.apps[route.service].openapi(), self.body_values)

    async def school_a_state(self) -> dict[str, Any]:
        """School A's records in every service, as the administrator reads them."""

        async def read(service: str, path: str) -> Any:
            response = await self.clients[service].get(path.format(**self.ids), headers=self.admin)
            return response.status_code, response.json()

        reads = await asyncio.gather(*(read(service, path) for service, path in SCHOOL_A_STATE))
        return dict(zip(SCHOOL_A_STATE, reads, strict=True))


def invalid_tokens(issuer: str) -> dict[str, dict[str, str]]:
    """Administrator's claims in tokens no service may accept (so a missed check shows, rather than a 403)."""
    expired = TokenIssuer(SIGNING_KEY, issuer=issuer, ttl_seconds=-60).issue(ADMIN_CLIENT_ID, None, ALL_SCOPES)
    stranger_key = new_signing_key_pem()
    stranger = TokenIssuer(stranger_key, issuer=issuer, ttl_seconds=300).issue(ADMIN_CLIENT_ID, None, ALL_SCOPES)
    # The same claims and a stranger's signature, but registration's own key id: the signature must be checked.
    real_kid = TokenIssuer(SIGNING_KEY, issuer=issuer, ttl_seconds=300).kid
    claims = jwt.decode(stranger, options={"verify_signature": False})
    forged = jwt.encode(claims, stranger_key, algorithm=ALGORITHM, headers={"kid": real_kid})
    return {
        "no token": {},
        "expired token": bearer(expired),
        "token signed by an unknown key": bearer(stranger),
        "token signed by another key under the real key id": bearer(forged),
    }


async def known_to_matching(matching: httpx.AsyncClient, admin: dict[str, str], participant_ids: Iterable[str]) -> None:
    """Wait until matching has heard of each participant from registration's events."""
    for pid in participant_ids:
        await eventually(lambda pid=pid: has_status(matching.get(f"/mentees/{pid}/preferences", headers=admin)))


@pytest.fixture
async def two_schools(scheme: Scheme, infrastructure: Infrastructure) -> AsyncIterator[TwoSchools]:
    """School A with a pair (a meeting, a concern), a circle, a credential and a delivery; school B's callers."""
    platform = scheme.platform
    registration, matching, namespace = platform.registration, scheme.matching, platform.namespace
    admin = bearer(platform.admin_token)
    surveys_settings = service_settings(SurveysSettings, infrastructure, namespace, public_url="http://surveys.test")
    surveys_app = create_surveys(surveys_settings)
    async with running(surveys_app), AsyncExitStack() as stack:
        surveys_app.state.token_verifier = verifier_of(registration)
        apps = {
            "registration": platform.registration_app,
            "matching": scheme.matching_app,
            "notifications": platform.notifications_app,
            "surveys": surveys_app,
        }
        clients = {
            name: await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service")
            )
            for name, app in apps.items()
        }

        # School A: a mentee and a mentor of the pairs programme, four peers of a circles programme.
        circles = CIRCLES_PROGRAMME | {"follow_up_after": "P6M"}  # no follow-up changes the circle meanwhile
        assert (await registration.post("/programmes", json=circles, headers=admin)).status_code == 201
        mentee, mentor, *peers = await asyncio.gather(
            register(scheme, "amina", role="mentee", seniority="Lecturer"),
            register(scheme, "prof", role="mentor", seniority="Professor", capacity=1),
            *(
                register(scheme, f"peer{n}", role="peer", seniority="Lecturer", programme=CIRCLES, confirmed=())
                for n in range(4)
            ),
        )
        client_id, secret = await new_portal_credential(platform, SCHOOL_A)
        await known_to_matching(matching, admin, [mentee, mentor, *peers])
        assert (await matching.post(f"/programmes/{PROGRAMME}/rounds", headers=admin)).status_code == 201
        assert (await matching.post(f"/programmes/{CIRCLES}/rounds", headers=admin)).json()["circles"] == 1
        [pair] = (await matching.get("/pairs", params={"programme_id": PROGRAMME}, headers=admin)).json()
        assert {pair["mentee_id"], pair["mentor_id"]} == {mentee, mentor}
        [circle] = (await matching.get(f"/programmes/{CIRCLES}/circles", headers=admin)).json()
        pair_path = f"/pairs/{pair['pair_id']}"
        for side in ("mentee", "mentor"):  # school A's portal (the client's default token) answers for both
            assert (await matching.post(f"{pair_path}/answers", json={"side": side, "accept": True})).is_success
        meeting = {"side": "mentee", "held_on": date.today().isoformat(), "notes": "first meeting"}
        assert (await matching.post(f"{pair_path}/meetings", json=meeting)).status_code == 201
        # The programme's coordinators, whom a concern alerts (else notifications dead-letters the alert).
        digest = {"recipients": [f"office.{namespace}@{SCHOOL_A}.ac.uk"], "enabled": False}
        assert (
            await clients["notifications"].put(f"/programmes/{PROGRAMME}/digest", json=digest, headers=admin)
        ).is_success
        concern = {"side": "mentee", "text": "A concern of school A's", "asks": "advice"}
        raised = await matching.post(f"{pair_path}/concerns", json=concern)
        assert raised.status_code == 201, raised.text

        # School B: a mentee registered after the round (so in no pair of school A's), with her own token.
        await register(scheme, "grace", role="mentee", seniority="Lecturer", at=SCHOOL_B)
        school_b_participant, delivered = await asyncio.gather(
            own_token(scheme, infrastructure, f"grace.{namespace}@{SCHOOL_B}.ac.uk"),
            eventually(lambda: _listed(clients["notifications"], mentee, admin)),
        )

        lacking_scope = {
            scope: bearer(await token(registration, client_id, secret, " ".join(sorted(set(PORTAL_SCOPES) - {scope}))))
            for scope in PORTAL_SCOPES
        }
        addresses = {
            f"{who}.{namespace}@{SCHOOL_A}.ac.uk" for who in ("amina", "prof", *(f"peer{n}" for n in range(4)))
        }
        ids = {
            "participant_id": mentee,
            "mentee_id": mentee,
            "mentor_id": mentor,
            "pair_id": pair["pair_id"],
            "concern_id": raised.json()["concern_id"],
            "circle_id": circle["circle_id"],
            "institution_id": SCHOOL_A,
            "client_id": client_id,
            "notification_id": delivered[0]["notification_id"],
            "programme_id": PROGRAMME,
            "wave": "baseline",
        }
        yield TwoSchools(
            apps=apps,
            clients=clients,
            ids=ids,
            # A body acts for school A's mentee (as her side of the pair), names school A's mentor, an address of A's.
            body_values=ids | {"side": "mentee", "choices": [mentor], "email": f"mallory.{namespace}@{SCHOOL_A}.ac.uk"},
            school_a_data={*peers, *addresses} | {ids[name] for name in SCHOOL_RECORDS - {"institution_id"}},
            addresses=addresses,
            admin=admin,
            invalid_tokens=invalid_tokens(platform.registration_settings.auth_issuer),
            lacking_scope=lacking_scope,
            school_a_portal=bearer(platform.portal_token),
            school_b_portal=bearer(scheme.northgate_token),
            school_b_participant=school_b_participant,
        )


async def _listed(notifications: httpx.AsyncClient, participant_id: str, admin: dict[str, str]) -> list[Any]:
    response = await notifications.get("/deliveries", params={"participant_id": participant_id}, headers=admin)
    return response.json() if response.status_code == 200 else []


def protected_routes(world: TwoSchools) -> list[Route]:
    """Every protected operation of every service, as its OpenAPI document states it."""
    found = {
        service: [route for route in routes_of(service, app) if route.protected] for service, app in world.apps.items()
    }
    assert all(found.values()), found  # each document was read and has protected operations
    return [route for routes in found.values() for route in routes]


def _answer(response: httpx.Response) -> str:
    detail = response.json().get("detail", "") if response.headers.get("content-type") == PROBLEM_JSON else ""
    return f"{response.status_code} {response.headers.get('content-type')} {str(detail)[:100]}".strip()


async def _settled(world: TwoSchools) -> dict[str, Any] | None:
    before = await world.school_a_state()
    await asyncio.sleep(0.5)
    return before if await world.school_a_state() == before else None


async def test_every_protected_route_refuses_callers_without_a_valid_token_or_its_scope(
    two_schools: TwoSchools,
) -> None:
    world = two_schools
    findings: list[str] = []
    for route in protected_routes(world):
        callers = [(case, headers, UNAUTHENTICATED) for case, headers in world.invalid_tokens.items()]
        if route.admin_only:
            callers.append(("a portal's token, which lacks admin", world.school_a_portal, FORBIDDEN))
        elif route.scopes:
            callers.append((f"a token lacking {route.scopes[0]}", world.lacking_scope[route.scopes[0]], FORBIDDEN))
        if not route.lets_participants_in:
            callers.append(("a participant's own token", world.school_b_participant, FORBIDDEN))
        for case, headers, expected in callers:
            # An invalid request on purpose (an empty JSON body, no query parameters): the caller must be
            # refused before anything is validated.
            response = await world.call(route, headers, {} if route.takes_json else None, query=False)
            if problem_of(response) != expected:
                findings.append(f"{route} [{case}] wanted {expected[0]} {expected[2]}, got {_answer(response)}")
            elif expected == UNAUTHENTICATED and not response.headers.get("www-authenticate", "").startswith("Bearer"):
                findings.append(f"{route} [{case}] answered 401 without WWW-Authenticate: Bearer (RFC 6750)")

    assert not findings, "\n".join(["wrong answers:", *findings])


async def test_school_b_never_reaches_school_a_through_any_protected_route(two_schools: TwoSchools) -> None:
    world = two_schools
    absent = dataclasses.replace(world, ids={k: UNKNOWN if k in SCHOOL_RECORDS else v for k, v in world.ids.items()})
    # School A's state settles (events of the set-up still arriving) before it is the baseline.
    baseline = await eventually(lambda: _settled(world))
    findings: list[str] = []
    for route in protected_routes(world):
        callers = {"school B's portal": world.school_b_portal}
        if route.lets_participants_in:
            callers["school B's participant"] = world.school_b_participant
        cross_institution = route.key in CROSS_INSTITUTION
        for case, headers in callers.items():
            response = await world.call(route, headers, world.valid_body(route))
            what = f"{route} [{case}]"
            if route.admin_only:
                if problem_of(response) != FORBIDDEN:
                    findings.append(f"{what} wanted 403, got {_answer(response)}")
            elif route.names_a_school_record and not cross_institution:
                # 409 not-yet-known is what a read model answers for an id it has not heard of.
                if response.status_code not in (403, 404, 409):
                    findings.append(f"{what} wanted 403, 404 or 409, got {_answer(response)}")
                elif response.headers.get("content-type") == PROBLEM_JSON and route.key not in UNLIKE_ABSENT:
                    # Refused just as for a record that does not exist, so school B does not learn it exists.
                    refused_absent = await absent.call(route, headers, world.valid_body(route))
                    if sameness(response) != sameness(refused_absent):
                        findings.append(
                            f"{what} answered {_answer(response)}, but {_answer(refused_absent)} for an absent id"
                        )
            if response.status_code >= 400 and response.headers.get("content-type") != PROBLEM_JSON:
                findings.append(f"{what} refused without problem+json: {_answer(response)}")
            if response.is_success:
                # A cross-institution route shows school A's published profiles, never an address.
                shown = world.addresses if cross_institution else world.school_a_data
                if leaked := sorted(value for value in shown if value in response.text):
                    findings.append(f"{what} answered {response.status_code} with school A's {leaked}")
            if route.method in WRITES and (now := await world.school_a_state()) != baseline:
                changed = sorted(
                    f"{service} {path}" for service, path in now if now[service, path] != baseline[service, path]
                )
                findings.append(f"{what} answered {response.status_code} and changed school A's {changed}")
                baseline.update(now)  # so the next change is reported on its own

    assert not findings, "\n".join(["wrong answers:", *findings])


@pytest.mark.parametrize("service", sorted(PUBLIC_OPERATIONS))
async def test_public_operations_are_exactly_the_allow_listed_ones(
    service: str, infrastructure: Infrastructure, namespace: str
) -> None:
    """A route added without `require` shows up here (the app is built, not started)."""
    create, settings_class = {
        "registration": (create_registration, RegistrationSettings),
        "matching": (create_matching, MatchingSettings),
        "notifications": (create_notifications, NotificationsSettings),
        "surveys": (create_surveys, SurveysSettings),
    }[service]
    extra = {"public_url": "http://surveys.test"} if settings_class is SurveysSettings else {}
    app = create(service_settings(settings_class, infrastructure, namespace, **extra))

    public = {(route.method, route.path) for route in routes_of(service, app) if not route.protected}

    assert sorted(public) == sorted(PUBLIC_OPERATIONS[service])
    if service == "registration":  # the same policy as test_tenant_isolation's, by path
        assert {path for _, path in public} <= PUBLIC_PATHS
