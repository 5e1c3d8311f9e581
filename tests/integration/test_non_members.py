"""A programme open to non-members, end to end through the public APIs: interest on the scheme's own page
goes to the scheme's tenancy (or to her member institution), she is welcomed, and coordinators register
her under the scheme's tenancy. Registration and notifications run in-process on the real broker and store.
"""

from typing import Any

import pytest

from .conftest import Infrastructure, Platform, bearer, eventually, mails_to
from .test_page_links import problem

pytestmark = pytest.mark.integration


async def test_someone_from_a_university_not_onboarded_joins_under_the_schemes_tenancy(
    platform: Platform, infrastructure: Infrastructure
) -> None:
    registration, admin, namespace = platform.registration, bearer(platform.admin_token), platform.namespace
    anyone = {"Authorization": ""}
    interest = {"name": "Dr Ama Mensah", "email": f"ama.{namespace}@kingston.ac.uk", "workplace": "Kingston University"}
    joining = "/programmes/aimms-mentoring/interests"

    # Closed to non-members (the default): refused, and the programme has no public page.
    assert (
        problem(await registration.post(joining, json=interest, headers=anyone), 409)["rule"] == "open-to-non-members"
    )
    problem(await registration.get("/programmes/aimms-mentoring/public", headers=anyone), 404)

    settings = (await registration.get("/programmes/aimms-mentoring", headers=admin)).json()
    opened = {k: v for k, v in settings.items() if k not in ("programme_id", "version")} | {"open_to_non_members": True}
    assert (await registration.put("/programmes/aimms-mentoring", json=opened, headers=admin)).status_code == 200
    public = (await registration.get("/programmes/aimms-mentoring/public", headers=anyone)).json()
    assert public["name"] == settings["name"] and "seniority_scale" not in public

    # Her interest: recorded under the scheme's tenancy; a repeat changes nothing; bad input is named.
    first = await registration.post(joining, json=interest, headers=anyone)
    assert first.status_code == 201, first.text
    assert (await registration.post(joining, json=interest, headers=anyone)).status_code == 200
    bad = problem(await registration.post(joining, json=interest | {"email": "not an address"}, headers=anyone), 422)
    assert bad["errors"][0]["field"] == "body.email"
    # An address at a member institution goes to that institution, whose portal then sees her.
    member = interest | {"name": "Dr Bisi Ade", "email": f"bisi.{namespace}@demo-university.ac.uk"}
    assert (await registration.post(joining, json=member, headers=anyone)).status_code == 201

    rows = (
        await registration.get("/reports/pipeline", params={"programme_id": "aimms-mentoring"}, headers=admin)
    ).json()
    interested = {r["institution_id"]: r["interested"] for r in rows}
    assert interested["scheme"] == 1 and interested["demo-university"] >= 1

    [welcome] = await eventually(lambda: mails_to(infrastructure, interest["email"]), timeout=60)
    text = welcome.get_body(("plain",)).get_content()
    assert "expressed through the scheme's own page" in text and "coordinators will write to you" in text

    # The coordinators register her under the scheme's tenancy: any address is accepted there.
    person: dict[str, Any] = {
        "name": interest["name"],
        "email": interest["email"],
        "institution_id": "scheme",
        "programme_id": "aimms-mentoring",
        "role": "mentee",
        "job_title": "Lecturer",
        "seniority": "Lecturer",
        "pathway": "clinical",
        "research_interests": ["global health"],
        "seeks": "career advice",
        "consents": {"privacy_notice": "1", "code_of_conduct": "1", "confidentiality": "1"},
        "confirmed_eligibility": ["woman", "ethnic-minority", "academic-medicine"],
    }
    registered = await registration.post("/participants", json=person, headers=admin)
    assert registered.status_code == 201, registered.text
    assert registered.json()["institution_id"] == "scheme"
    # A member institution's portal cannot register anyone there.
    problem(await registration.post("/participants", json=person | {"email": "x@kingston.ac.uk"}), 422)
