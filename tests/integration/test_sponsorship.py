"""Sponsorship and allyship, end to end through the public APIs: a programme whose support is given by sponsors
(or allies) is created as data, with a profile question of its own for them and a least seniority gap; sponsors
answer it and mentees read the answers; a sponsor too close in seniority is neither chosen nor proposed; the
emails call her a sponsor (an ally); the matching report says which support it counts.
"""

import re
from email.message import EmailMessage

import pytest

from .conftest import (
    Infrastructure,
    Scheme,
    bearer,
    create_programme,
    eventually,
    has_status,
    mails_to,
    programme_body,
    register,
)
from .test_page_links import problem

pytestmark = pytest.mark.integration

QUESTION = {
    "question_id": "opens_doors_to",
    "text": "Which committees, nominations or networks can you open to a mentee?",
    "roles": ["sponsor"],
    "required": True,
}
SPONSORSHIP = programme_body(
    "aimms-sponsorship",
    "AIMMS Sponsorship",
    ["sponsor", "mentee"],
    matching={"min_seniority_gap": 2},
    profile_questions=[QUESTION],
    audience="women from ethnic minority backgrounds in academic medicine",
)
OPENS = "The faculty promotions panel and the college's fellowship nominations"


async def test_sponsors_answer_their_own_question_need_standing_and_are_called_sponsors(
    scheme: Scheme, infrastructure: Infrastructure
) -> None:
    registration, matching = scheme.platform.registration, scheme.matching
    admin, namespace = bearer(scheme.platform.admin_token), scheme.platform.namespace
    assert (await create_programme(scheme, SPONSORSHIP))["profile_questions"] == [QUESTION]
    both = SPONSORSHIP | {"programme_id": "both-kinds", "roles_offered": ["sponsor", "mentor"]}
    assert problem(await registration.post("/programmes", json=both, headers=admin), 422)["rule"] == "one-giving-role"

    async def join(who: str, role: str, seniority: str, **extra: object) -> str:
        return await register(
            scheme, who, role=role, seniority=seniority, programme="aimms-sponsorship", confirmed=(), **extra
        )

    with pytest.raises(AssertionError, match="answers.opens_doors_to"):  # her question is required of sponsors
        await join("unanswered", "sponsor", "Professor")
    with pytest.raises(AssertionError, match="role-offered"):  # this programme has no mentors
        await join("mentor", "mentor", "Professor")
    dean = await join("dean", "sponsor", "Professor", answers={"opens_doors_to": OPENS})
    close = await join("reader", "sponsor", "Senior lecturer", answers={"opens_doors_to": "My department's seminar"})
    amina = await join("amina", "mentee", "Lecturer")

    # Mentees read the sponsors' answers in the directory; one only a level above her cannot be named.
    await eventually(lambda: has_status(matching.get(f"/mentees/{amina}/preferences")))
    answered = {dean: {"opens_doors_to": OPENS}, close: {"opens_doors_to": "My department's seminar"}}

    async def answers_listed() -> bool:  # her free text comes on its own record, maybe after her profile
        listed = (await matching.get("/directory", params={"programme_id": "aimms-sponsorship"})).json()
        return {e["participant_id"]: e["answers"] for e in listed} == answered

    await eventually(answers_listed)
    too_close = await matching.put(f"/mentees/{amina}/preferences", json={"choices": [close]})
    assert problem(too_close, 422)["rule"] == "seniority-gap"

    # A round proposes the sponsor with standing, never the one too close, and the emails say "sponsor".
    assert (await matching.post("/programmes/aimms-sponsorship/rounds", headers=admin)).status_code == 201
    [pair] = (await matching.get("/pairs", params={"programme_id": "aimms-sponsorship"}, headers=admin)).json()
    assert (pair["mentee_id"], pair["mentor_id"]) == (amina, dean)
    to_her = await _mail(infrastructure, f"amina.{namespace}@demo-university.ac.uk", "as your sponsor")
    to_him = await _mail(infrastructure, f"dean.{namespace}@demo-university.ac.uk", "We propose you as sponsor")
    assert "as your sponsor in" in " ".join(to_her.get_body(("plain",)).get_content().split())
    assert "mentor" not in to_him["Subject"]
    # Her link's page (the portal renders matching's view of it) calls him her proposed sponsor.
    token = re.search(r"/answers/(\S+)", to_her.get_body(("plain",)).get_content()).group(1)
    assert (await matching.get(f"/answer-links/{token}")).json()["giver"] == "sponsor"
    report = await matching.get("/reports/matching", params={"programme_id": "aimms-sponsorship"}, headers=admin)
    assert report.json()["support"] == "sponsor"
    assert report.json()["pairs_by_state"] == {"proposed": 1}


async def test_an_ally_registers_as_an_ally(scheme: Scheme, infrastructure: Infrastructure) -> None:
    question = {"question_id": "allyship", "text": "How do you act as an ally?", "roles": ["ally"]}
    allyship = programme_body("aimms-allyship", "AIMMS Allyship", ["ally", "mentee"], profile_questions=[question])
    await create_programme(scheme, allyship)
    await register(
        scheme, "sam", role="ally", seniority="Senior lecturer", programme="aimms-allyship", confirmed=(),
        answers={"allyship": "I chair our race equality group"},
    )  # fmt: skip
    registered = await _mail(infrastructure, f"sam.{scheme.platform.namespace}@demo-university.ac.uk", "registration")
    assert "as an ally" in " ".join(registered.get_body(("plain",)).get_content().split())


async def _mail(infrastructure: Infrastructure, address: str, subject: str) -> EmailMessage:
    """The first email to `address` whose subject holds `subject`, once it arrives."""

    def arrived() -> EmailMessage | None:
        return next((m for m in mails_to(infrastructure, address) if subject in m["Subject"]), None)

    return await eventually(arrived, timeout=30)
