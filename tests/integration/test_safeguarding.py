"""Safeguarding, end to end through the public APIs: a mentee raises a concern with her own token, the
programme's coordinators are emailed at once (where to read it, never what it says), the mentor is
never told, and the coordinators pause, resume and end the pair.

Registration, matching and notifications run in-process against the real broker, store and SMTP sink.
"""

import pytest

from .conftest import Infrastructure, Scheme, bearer, eventually, has_status, mails_to, register
from .test_notifications_flow import subjects
from .test_page_links import own_token, problem

pytestmark = pytest.mark.integration

WORDS = "He made remarks about my accent in front of colleagues"


async def test_a_concern_reaches_the_coordinators_alone_who_pause_resume_and_end_the_pair(
    scheme: Scheme, infrastructure: Infrastructure
) -> None:
    matching, notifications = scheme.matching, scheme.platform.notifications
    admin = bearer(scheme.platform.admin_token)
    namespace = scheme.platform.namespace
    coordinator = f"office.{namespace}@demo-university.ac.uk"
    digest = {"recipients": [coordinator], "enabled": False}
    configured = await notifications.put("/programmes/aimms-mentoring/digest", json=digest, headers=admin)
    assert configured.status_code == 200, configured.text

    mentor = await register(scheme, "prof", role="mentor", seniority="Professor", capacity=1)
    mentee = await register(scheme, "amina", role="mentee", seniority="Lecturer")
    mentee_address = f"amina.{namespace}@demo-university.ac.uk"
    mentor_address = f"prof.{namespace}@demo-university.ac.uk"
    await eventually(lambda: has_status(matching.get(f"/mentees/{mentee}/preferences")))
    assert (await matching.post("/programmes/aimms-mentoring/rounds", headers=admin)).status_code == 201
    [pair] = (await matching.get("/pairs", params={"programme_id": "aimms-mentoring"}, headers=admin)).json()
    assert (pair["mentee_id"], pair["mentor_id"]) == (mentee, mentor)
    for side in ("mentee", "mentor"):
        answered = await matching.post(f"/pairs/{pair['pair_id']}/answers", json={"side": side, "accept": True})
        assert answered.status_code == 200, answered.text

    # She raises it with her own token; the receipt says it was received, and nothing else.
    herself = await own_token(scheme, infrastructure, mentee_address)
    concerns = f"/pairs/{pair['pair_id']}/concerns"
    problem(await matching.post(concerns, json={"text": "x", "asks": "pause"}, headers=herself), 422)
    raised = await matching.post(concerns, json={"text": WORDS, "asks": "pause"}, headers=herself)
    assert raised.status_code == 201, raised.text
    assert set(raised.json()) == {"concern_id", "raised_at", "status"}

    # The coordinators are emailed at once: where to read it, not what it says.
    [alert] = await eventually(lambda: mails_to(infrastructure, coordinator), timeout=60)
    body = alert.get_body(("plain",)).get_content()
    assert "/coordinators/programmes/aimms-mentoring/concerns" in body and "asks that it be paused" in body
    assert WORDS not in body and "Amina" not in body

    # The mentor can neither read it nor learn of it; a portal cannot list concerns either.
    him = await own_token(scheme, infrastructure, mentor_address)
    problem(await matching.get("/programmes/aimms-mentoring/concerns", headers=him), 403)
    problem(await matching.get("/programmes/aimms-mentoring/concerns"), 403)  # the demo university's portal
    assert WORDS not in (await matching.get(f"/pairs/{pair['pair_id']}", headers=him)).text
    [listed] = (await matching.get("/programmes/aimms-mentoring/concerns", headers=admin)).json()
    assert (listed["text"], listed["raised_by"], listed["participant_id"]) == (WORDS, "mentee", mentee)

    # Paused: both told it is paused, nothing of why; no term decision meanwhile; then resumed.
    outcome = f"/concerns/{listed['concern_id']}/outcome"
    paused = await matching.post(outcome, json={"outcome": "paused", "note": "Spoke to both"}, headers=admin)
    assert paused.status_code == 200 and paused.json()["outcome"] == "paused"
    problem(await matching.post(outcome, json={"outcome": "ended"}, headers=admin), 409)
    assert (await matching.get(f"/pairs/{pair['pair_id']}", headers=admin)).json()["paused_at"]
    for address in (mentee_address, mentor_address):
        await eventually(lambda address=address: _has(infrastructure, address, "is paused"), timeout=60)
        assert not any(WORDS in m.get_body(("plain",)).get_content() for m in mails_to(infrastructure, address))
    resumed = await matching.post(f"/pairs/{pair['pair_id']}/resume", headers=admin)
    assert resumed.status_code == 200 and resumed.json()["paused_at"] is None
    await eventually(lambda: _has(infrastructure, mentor_address, "continues"), timeout=60)

    # A second concern, asking to end it: the coordinators close the pair, and the place is free again.
    again = await matching.post(concerns, json={"text": "It happened again", "asks": "end"}, headers=herself)
    [second] = (await matching.get("/programmes/aimms-mentoring/concerns", headers=admin)).json()
    assert second["concern_id"] == again.json()["concern_id"]
    ended = await matching.post(f"/concerns/{second['concern_id']}/outcome", json={"outcome": "ended"}, headers=admin)
    assert ended.status_code == 200, ended.text
    closed = (await matching.get(f"/pairs/{pair['pair_id']}", headers=admin)).json()
    assert (closed["state"], closed["end_reason"]) == ("ended", "coordinators")
    await eventually(lambda: _has(infrastructure, mentor_address, "has been closed"), timeout=60)
    entries = (await matching.get("/directory", params={"programme_id": "aimms-mentoring"}, headers=admin)).json()
    assert [e["remaining_capacity"] for e in entries if e["participant_id"] == mentor] == [1]
    assert (await matching.get("/programmes/aimms-mentoring/concerns", headers=admin)).json() == []
    # She is matched anew, and with no other mentor the coordinators hear that she waits, with the list's link.
    await eventually(lambda: _has(infrastructure, coordinator, "is waiting"), timeout=60)
    [waiting] = [m for m in mails_to(infrastructure, coordinator) if "is waiting" in m["Subject"]]
    assert "/coordinators/programmes/aimms-mentoring/waiting" in waiting.get_body(("plain",)).get_content()


def _has(infra: Infrastructure, address: str, words: str) -> bool:
    return any(words in subject for subject in subjects(infra, address))
