"""Her programme's page: she asks by address, a single-use link reaches her inbox, and its token acts for her alone.

Registration, notifications and matching run in-process against the real broker, store and SMTP sink.
"""

import asyncio
import re
from typing import Any

import httpx
import pytest

from .conftest import Infrastructure, Scheme, bearer, eventually, has_status, mails_to, register

pytestmark = pytest.mark.integration

LINK = re.compile(r"http://portal\.test/me/links/(\S+)")


def page_links_in(infra: Infrastructure, address: str) -> list[str]:
    """The secrets of the page links mailed to an address."""
    texts = [mail.get_body(("plain",)).get_content() for mail in mails_to(infra, address)]
    return [match for text in texts for match in LINK.findall(text)]


async def own_token(scheme: Scheme, infra: Infrastructure, address: str) -> dict[str, str]:
    """Her own token, as her page link gives it."""
    registration = scheme.platform.registration
    await registration.post("/page-links", json={"email": address})
    [secret] = await eventually(lambda: page_links_in(infra, address), timeout=60)
    opened = await registration.post("/page-links/session", json={"link": secret})
    assert opened.status_code == 200, opened.text
    return bearer(opened.json()["access_token"])


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


async def test_her_link_opens_her_own_records_once_and_nobody_elses(
    scheme: Scheme, infrastructure: Infrastructure
) -> None:
    registration, matching = scheme.platform.registration, scheme.matching
    namespace = scheme.platform.namespace
    mentor = await register(scheme, "prof", role="mentor", seniority="Professor")
    amina = await register(scheme, "amina", role="mentee", seniority="Lecturer")
    bisi = await register(scheme, "bisi", role="mentee", seniority="Lecturer")
    address = f"amina.{namespace}@demo-university.ac.uk"

    # Anyone may ask, without a token; the answer never says whether the address is registered.
    for email in (address, f"nobody.{namespace}@example.org"):
        asked = await registration.post("/page-links", json={"email": email}, headers={"Authorization": ""})
        assert (asked.status_code, asked.json()) == (202, {"status": "sent-if-registered"})
    problem(await registration.post("/page-links", json={"email": "not an address"}), 422)

    [secret] = await eventually(lambda: page_links_in(infrastructure, address), timeout=60)
    # Asking again at once sends nothing more (one link per registration every couple of minutes).
    await registration.post("/page-links", json={"email": address})

    opened = await registration.post("/page-links/session", json={"link": secret}, headers={"Authorization": ""})
    assert opened.status_code == 200, opened.text
    session = opened.json()
    assert (session["participant_id"], session["programme_id"], session["scope"]) == (amina, "aimms-mentoring", "self")
    again = problem(await registration.post("/page-links/session", json={"link": secret}), 410)
    assert again["type"] == "/problems/page-link-unusable"
    problem(await registration.post("/page-links/session", json={"link": "x" * 43}), 410)
    herself = bearer(session["access_token"])

    # Her own records: read, exported, and her choices made, through the same APIs portals use.
    mine = await registration.get(f"/participants/{amina}", headers=herself)
    assert mine.status_code == 200 and mine.json()["email"] == address
    exported = await registration.get(f"/participants/{amina}/export", headers=herself)
    assert exported.status_code == 200 and exported.json()["participant"]["email"] == address

    async def listed() -> list[dict[str, Any]]:
        response = await matching.get("/directory", params={"programme_id": "aimms-mentoring"}, headers=herself)
        return response.json() if response.status_code == 200 else []

    assert [entry["participant_id"] for entry in await eventually(listed)] == [mentor]
    programme = await registration.get("/programmes/aimms-mentoring", headers=herself)
    assert programme.status_code == 200 and programme.json()["term"]
    profiles = await registration.get("/mentor-profiles", params={"programme_id": "aimms-mentoring"}, headers=herself)
    assert [p["participant_id"] for p in profiles.json()] == [mentor]
    await eventually(lambda: has_status(matching.get(f"/mentees/{amina}/preferences", headers=herself)))
    chosen = await matching.put(f"/mentees/{amina}/preferences", json={"choices": [mentor]}, headers=herself)
    assert chosen.status_code == 200, chosen.text
    assert (await matching.get("/pairs", headers=herself)).json() == []

    # Nobody else's, and nothing an institution's portal does.
    problem(await registration.get(f"/participants/{bisi}", headers=herself), 404)
    problem(await registration.get(f"/participants/{bisi}/export", headers=herself), 404)
    # Another's preferences: answered as for an id matching has not heard of (409), so nothing is learnt of her.
    problem(await matching.put(f"/mentees/{bisi}/preferences", json={"choices": [mentor]}, headers=herself), 409)
    problem(await matching.get("/directory", params={"programme_id": "other"}, headers=herself), 404)
    problem(await registration.get("/programmes/reverse-mentoring", headers=herself), 404)  # not hers
    problem(
        await registration.get("/mentor-profiles", params={"programme_id": "reverse-mentoring"}, headers=herself), 404
    )
    for forbidden in (
        registration.get("/participants", headers=herself),
        registration.patch(f"/participants/{amina}", json={"job_title": "Professor"}, headers=herself),
        registration.delete(f"/participants/{amina}", headers=herself),
        registration.post("/interests", json={"name": "X", "email": address, "programme_id": "p"}, headers=herself),
        registration.get("/programmes", headers=herself),
        matching.get("/reports/matching", params={"programme_id": "aimms-mentoring"}, headers=herself),
    ):
        problem(await forbidden, 403)

    # She withdraws herself; a withdrawn registration gets no more links.
    withdrawal = {"reason": "moving abroad"}
    left = await registration.post(f"/participants/{amina}/withdrawal", json=withdrawal, headers=herself)
    assert left.status_code == 200 and left.json()["status"] == "withdrawn"
    await registration.post("/page-links", json={"email": address})
    await asyncio.sleep(3)
    assert page_links_in(infrastructure, address) == [secret]


async def test_asking_for_links_again_and_again_is_refused_for_a_while(scheme: Scheme) -> None:
    registration = scheme.platform.registration
    answers = [
        await registration.post("/page-links", json={"email": f"n{n}@example.org"}, headers={"Authorization": ""})
        for n in range(11)
    ]
    assert [a.status_code for a in answers[:10]] == [202] * 10
    refused = problem(answers[10], 429)
    assert refused["type"] == "/problems/rate-limited" and int(answers[10].headers["Retry-After"]) >= 1
