"""Mentoring circles, end to end through the public APIs: a circles programme is created as data, peers
and a facilitator register through their schools' portals, a round forms a circle mixing institutions,
a withdrawal leaves the circle going on, and the follow-up comes due. Registration, notifications and
matching run in-process on the real broker, store and SMTP sink.
"""

import json
from email.message import EmailMessage

import pytest
from pymongo import AsyncMongoClient

from aimms_shared.contracts.matching import CIRCLES
from aimms_shared.events import in_namespace

from .conftest import (
    Infrastructure,
    Scheme,
    bearer,
    create_programme,
    eventually,
    mails_to,
    programme_body,
    read_topic,
    register,
)
from .test_page_links import own_token, problem

pytestmark = pytest.mark.integration

PROGRAMME = programme_body(
    "peer-circles",
    "Peer Mentoring Circles",
    ["peer", "facilitator"],
    kind="circles",
    follow_up_after="PT4S",  # six months in the scheme; seconds here, so the test sees it come due
    audience="early-career researchers from ethnic minority backgrounds",
    description="Circles of peers who meet monthly with a facilitator.",
)


async def test_a_circles_programme_forms_circles_that_go_on_when_a_member_leaves_and_reach_their_follow_up(
    scheme: Scheme, infrastructure: Infrastructure
) -> None:
    registration, matching = scheme.platform.registration, scheme.matching
    admin, namespace = bearer(scheme.platform.admin_token), scheme.platform.namespace
    assert (await create_programme(scheme, PROGRAMME))["kind"] == "circles"
    mixed = PROGRAMME | {"programme_id": "mixed", "roles_offered": ["peer", "mentor"]}
    assert problem(await registration.post("/programmes", json=mixed, headers=admin), 422)["field"] == "roles_offered"

    async def join(who: str, role: str, at: str, seniority: str = "Lecturer") -> str:
        return await register(
            scheme, who, role=role, seniority=seniority, at=at, programme="peer-circles", confirmed=(),
            interests=("global health", "stroke"),
        )  # fmt: skip

    peers = [await join(who, "peer", at) for who, at in _people()[:6]]
    facilitator = await join("facil", "facilitator", "northgate", "Professor")
    refused = await registration.post(
        "/participants",
        json={"name": "X", "email": f"x.{namespace}@demo-university.ac.uk", "programme_id": "peer-circles"}
        | {"role": "mentor", "job_title": "Lecturer", "seniority": "Lecturer", "pathway": "clinical"}
        | {"research_interests": [], "offers": "advice", "consents": {"privacy_notice": "1"}},
    )
    assert refused.status_code == 422

    # Matching learns of all seven from registration's events; then one round forms one circle.
    store = AsyncMongoClient(infrastructure.mongodb_uri, tz_aware=True)
    try:
        members = store[f"{namespace}_matching"]["members"]
        await eventually(lambda: _count(members, "peer-circles", 7), timeout=30)
    finally:
        await store.close()
    report = await matching.post("/programmes/peer-circles/rounds", headers=admin)
    assert report.status_code == 201, report.text
    assert {k: report.json()[k] for k in ("kind", "circles", "proposed", "unmatched")} == {
        "kind": "circles",
        "circles": 1,
        "proposed": 6,
        "unmatched": 0,
    }
    [circle] = (await matching.get("/programmes/peer-circles/circles", headers=admin)).json()
    assert sorted(m["participant_id"] for m in circle["members"]) == sorted([*peers, facilitator])
    assert circle["members"][-1] == circle["members"][-1] | {"participant_id": facilitator, "role": "facilitator"}
    assert {m["institution_id"] for m in circle["members"]} == {"demo-university", "northgate"}
    assert "global-health" in circle["shared_interests"] and circle["stages"] == ["Lecturer", "Lecturer"]
    # Each member's portal reads it; the event names ids and institutions, never names or addresses.
    assert (await matching.get(f"/circles/{circle['circle_id']}")).status_code == 200
    [formed] = await read_topic(infrastructure, in_namespace(CIRCLES.name, namespace), expect=1)
    assert "peer0" not in formed.value.decode() and "@" not in formed.value.decode()
    # Her own page's token lists the circle she is in.
    addresses = {who: f"{who}.{namespace}@{at}.ac.uk" for who, at in _people()}
    hers = (await matching.get("/circles", headers=await own_token(scheme, infrastructure, addresses["peer1"]))).json()
    assert [c["circle_id"] for c in hers] == [circle["circle_id"]]
    # Each member is introduced to the others by email: their names, schools and addresses.
    peer1 = await eventually(lambda: _mail(infrastructure, addresses["peer1"], "Introducing your mentoring circle"))
    text = peer1.get_body(("plain",)).get_content()
    assert "Peer0" in text and addresses["peer2"] in text and "Facil" in text and "Northgate" in text
    assert addresses["peer1"] not in text  # she is not listed among the others
    await eventually(lambda: _mail(infrastructure, addresses["facil"], "The mentoring circle you facilitate"))

    # A peer withdraws: the circle goes on without her, and says so once.
    assert (await registration.post(f"/participants/{peers[0]}/withdrawal", json={})).status_code == 200
    left = await eventually(lambda: _circle_without(matching, admin, peers[0]), timeout=30)
    assert left["left"] == [peers[0]] and len(left["members"]) == 6
    news = await eventually(lambda: _mail(infrastructure, addresses["peer3"], "Peer0 has left"), timeout=30)
    assert "Peer0" in news["Subject"]
    assert _mail(infrastructure, addresses["peer0"], "has left") is None  # nothing to her who left

    # The follow-up point comes: its members still in it are asked how it went.
    records = await read_topic(infrastructure, in_namespace(CIRCLES.name, namespace), expect=3, timeout=30)
    events = [json.loads(r.value)["event_type"] for r in records]
    assert events == ["CircleFormed", "CircleMemberLeft", "CircleFollowUpDue"]
    follow_up = json.loads(records[2].value)["payload"]
    assert sorted(m["participant_id"] for m in follow_up["members"]) == sorted([*peers[1:], facilitator])


def _people() -> list[tuple[str, str]]:
    """Six peers from two schools, then the facilitator."""
    return [(f"peer{i}", ("demo-university", "northgate")[i % 2]) for i in range(6)] + [("facil", "northgate")]


def _mail(infrastructure: Infrastructure, address: str, subject: str) -> EmailMessage | None:
    return next((m for m in mails_to(infrastructure, address) if subject in m["Subject"]), None)


async def _count(members, programme_id: str, expected: int) -> bool:  # type: ignore[no-untyped-def]
    return await members.count_documents({"programme_id": programme_id}) == expected


async def _circle_without(matching, admin: dict[str, str], participant_id: str) -> dict | None:  # type: ignore[no-untyped-def]
    [circle] = (await matching.get("/programmes/peer-circles/circles", headers=admin)).json()
    return circle if participant_id in circle["left"] else None
