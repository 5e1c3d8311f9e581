"""Matching builds its own read model from registration's events: directory and mentees' choices."""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from aimms_matching.app import create_app as create_matching
from aimms_matching.settings import MatchingSettings
from aimms_shared.contracts.matching import PREFERENCES
from aimms_shared.events import in_namespace

from .conftest import (
    Infrastructure,
    Platform,
    bearer,
    eventually,
    read_topic,
    running,
    service_settings,
    token,
    verifier_of,
)

pytestmark = pytest.mark.integration


@dataclass
class Scheme:
    """Registration (with notifications) and matching running together."""

    platform: Platform
    matching: httpx.AsyncClient
    northgate_token: str


@pytest.fixture
async def scheme(platform: Platform, infrastructure: Infrastructure) -> AsyncIterator[Scheme]:
    app = create_matching(service_settings(MatchingSettings, infrastructure, platform.namespace))
    async with running(app) as matching:
        app.state.token_verifier = verifier_of(platform.registration)
        matching.headers.update(bearer(platform.portal_token))
        credential = (
            await platform.registration.post(
                "/credentials",
                json={
                    "name": "northgate portal",
                    "institution_id": "northgate",
                    "scopes": ["participants:write", "participants:read", "profiles:read"],
                },
                headers=bearer(platform.admin_token),
            )
        ).json()
        northgate = await token(platform.registration, credential["client_id"], credential["client_secret"])
        yield Scheme(platform, matching, northgate)


async def register(scheme: Scheme, who: str, *, role: str, seniority: str, at: str = "demo-university") -> str:
    """Register someone through her institution's portal; return her participant id."""
    body: dict[str, Any] = {
        "name": who.title(),
        "email": f"{who}.{scheme.platform.namespace}@{at}.ac.uk",
        "programme_id": "aimms-mentoring",
        "role": role,
        "job_title": seniority,
        "seniority": seniority,
        "pathway": "clinical",
        "research_interests": ["global health"],
        "consents": {"privacy_notice": "1", "code_of_conduct": "1", "confidentiality": "1"},
        "confirmed_eligibility": ["woman", "ethnic-minority", "academic-medicine"],
    }
    if role in ("mentor", "both"):
        body |= {"offers": "grant writing", "mentor_capacity": 2, "publish_profile": True}
    if role in ("mentee", "both"):
        body |= {"seeks": "career advice"}
    headers = bearer(scheme.northgate_token) if at == "northgate" else {}
    response = await scheme.platform.registration.post("/participants", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["participant_id"]


async def directory_ids(scheme: Scheme) -> set[str]:
    """Participant ids the mentor directory lists for the AIMMS programme."""
    listed = await scheme.matching.get("/directory", params={"programme_id": "aimms-mentoring"})
    return {entry["participant_id"] for entry in listed.json()}


async def test_published_mentors_of_every_institution_appear_in_the_directory(scheme: Scheme) -> None:
    professor = await register(scheme, "prof", role="mentor", seniority="Professor")
    reader = await register(scheme, "reader", role="mentor", seniority="Associate professor", at="northgate")
    await register(scheme, "student", role="mentee", seniority="PhD student")

    await eventually(lambda: _when(directory_ids(scheme), {professor, reader}))  # the mentee is not listed

    entries = (
        await scheme.matching.get(
            "/directory", params={"programme_id": "aimms-mentoring", "institution_id": "northgate"}
        )
    ).json()
    assert [(e["participant_id"], e["capacity"], e["full"]) for e in entries] == [(reader, 2, False)]
    assert "email" not in json.dumps(entries) and "name" not in entries[0]


async def test_a_mentee_names_up_to_three_eligible_mentors(scheme: Scheme, infrastructure: Infrastructure) -> None:
    professor = await register(scheme, "prof", role="mentor", seniority="Professor")
    reader = await register(scheme, "reader", role="mentor", seniority="Associate professor", at="northgate")
    junior = await register(scheme, "postdoc", role="mentor", seniority="Postdoctoral researcher")
    mentee = await register(scheme, "lecturer", role="mentee", seniority="Lecturer")
    await eventually(lambda: _when(directory_ids(scheme), {professor, reader, junior}))
    await eventually(lambda: _ok(scheme.matching.get(f"/mentees/{mentee}/preferences")))
    path = f"/mentees/{mentee}/preferences"

    chosen = await scheme.matching.put(path, json={"choices": [reader, professor]})

    assert chosen.status_code == 200, chosen.text
    assert (await scheme.matching.get(path)).json()["choices"] == [reader, professor]
    [record] = await read_topic(infrastructure, in_namespace(PREFERENCES.name, scheme.platform.namespace), expect=1)
    assert json.loads(record.value)["payload"]["choices"] == [reader, professor]

    for choices, field, rule in [
        ([junior], "choices.0", "eligible-seniority"),  # a postdoc cannot mentor a lecturer
        ([professor, professor], "choices", "distinct-choices"),
        ([mentee], "choices.0", "not-self"),
        (["nobody"], "choices.0", "published-mentor"),
    ]:
        refused = await scheme.matching.put(path, json={"choices": choices})
        assert (refused.status_code, refused.json()["field"], refused.json()["rule"]) == (422, field, rule)
    too_many = await scheme.matching.put(path, json={"choices": [professor, reader, junior, "x"]})
    assert too_many.status_code == 422
    other_portal = await scheme.matching.put(path, json={"choices": []}, headers=bearer(scheme.northgate_token))
    assert other_portal.status_code == 404


async def test_withdrawal_and_erasure_reach_the_read_model(scheme: Scheme) -> None:
    professor = await register(scheme, "prof", role="mentor", seniority="Professor")
    mentee = await register(scheme, "lecturer", role="mentee", seniority="Lecturer")
    await eventually(lambda: _when(directory_ids(scheme), {professor}))
    await eventually(lambda: _ok(scheme.matching.get(f"/mentees/{mentee}/preferences")))
    await scheme.matching.put(f"/mentees/{mentee}/preferences", json={"choices": [professor]})

    await scheme.platform.registration.post(f"/participants/{professor}/withdrawal", json={})
    await scheme.platform.registration.delete(f"/participants/{mentee}")

    await eventually(lambda: _when(directory_ids(scheme), set()))
    await eventually(lambda: _status(scheme.matching.get(f"/mentees/{mentee}/preferences"), 404))


async def _when(pending: Any, expected: set[str]) -> bool:
    return await pending == expected


async def _ok(pending: Any) -> bool:
    return (await pending).status_code == 200


async def _status(pending: Any, status: int) -> bool:
    return (await pending).status_code == status
