"""Meetings, end to end through the public APIs: the pair records them with their own tokens, the
first ends the trial, each day counts once, the notes stay with the pair (never on Kafka, never to
coordinators), and coordinators see how often partnerships met.
"""

import json
from datetime import date

import pytest
from pymongo import AsyncMongoClient

from aimms_shared.contracts.matching import PAIRS
from aimms_shared.events import in_namespace

from .conftest import Infrastructure, Scheme, bearer, eventually, has_status, read_topic, register
from .test_page_links import own_token, problem

pytestmark = pytest.mark.integration

NOTES = "Agreed to meet monthly; next time: the fellowship draft"


async def test_the_pair_records_meetings_their_notes_stay_theirs_and_coordinators_see_counts(
    scheme: Scheme, infrastructure: Infrastructure
) -> None:
    matching, admin, namespace = scheme.matching, bearer(scheme.platform.admin_token), scheme.platform.namespace
    await register(scheme, "prof", role="mentor", seniority="Professor", capacity=1)
    mentee = await register(scheme, "amina", role="mentee", seniority="Lecturer")
    await eventually(lambda: has_status(matching.get(f"/mentees/{mentee}/preferences")))
    assert (await matching.post("/programmes/aimms-mentoring/rounds", headers=admin)).status_code == 201
    [pair] = (await matching.get("/pairs", params={"programme_id": "aimms-mentoring"}, headers=admin)).json()
    meetings = f"/pairs/{pair['pair_id']}/meetings"
    herself = await own_token(scheme, infrastructure, f"amina.{namespace}@demo-university.ac.uk")
    problem(await matching.post(meetings, json={"held_on": date.today().isoformat()}, headers=herself), 409)
    for side in ("mentee", "mentor"):
        answered = await matching.post(f"/pairs/{pair['pair_id']}/answers", json={"side": side, "accept": True})
        assert answered.status_code == 200, answered.text

    today = date.today().isoformat()
    first = await matching.post(meetings, json={"held_on": today, "notes": NOTES}, headers=herself)
    assert first.status_code == 201, first.text
    assert [(m["held_on"], m["recorded_by"], m["notes"]) for m in first.json()] == [(today, "mentee", NOTES)]
    problem(await matching.post(meetings, json={"held_on": today}, headers=herself), 409)  # once per day
    problem(await matching.post(meetings, json={"held_on": "2099-01-01"}, headers=herself), 422)
    ended = await matching.post(
        f"/pairs/{pair['pair_id']}/end", json={"side": "mentee", "reason": "trial"}, headers=herself
    )
    assert problem(ended, 422)["field"] == "reason"  # the first meeting ended the trial

    # The mentor reads the notes; the coordinators and the school's portal see the meeting, not its notes.
    him = await own_token(scheme, infrastructure, f"prof.{namespace}@demo-university.ac.uk")
    assert (await matching.get(meetings, headers=him)).json()[0]["notes"] == NOTES
    for other in (admin, {}):
        [seen] = (await matching.get(meetings, headers=other)).json()
        assert seen["notes"] is None
    assert (await matching.get(f"/pairs/{pair['pair_id']}", headers=admin)).json()["meetings_recorded"] == 1
    report = (await matching.get("/reports/matching", params={"programme_id": "aimms-mentoring"}, headers=admin)).json()
    assert report["meetings"] == {"partnerships": 1, "mean": 1.0, "min": 1, "max": 1, "by_count": {"1": 1}}
    assert NOTES not in json.dumps(report)

    # On Kafka: the meeting and that it ended the trial, never the notes.
    topic = in_namespace(PAIRS.name, namespace)
    records = await read_topic(infrastructure, topic, expect=5)
    recorded = [json.loads(r.value) for r in records if b"MeetingRecorded" in r.value]
    assert [(e["payload"]["meetings"], e["payload"]["trial_ended"]) for e in recorded] == [(1, True)]
    assert not any(NOTES.encode() in r.value for r in records)


async def test_ideas_for_change_are_kept_without_names_and_withheld_until_three_pairs_gave_some(
    scheme: Scheme, infrastructure: Infrastructure
) -> None:
    registration, matching = scheme.platform.registration, scheme.matching
    admin, namespace = bearer(scheme.platform.admin_token), scheme.platform.namespace
    settings = (await registration.get("/programmes/aimms-mentoring", headers=admin)).json()
    asking = {k: v for k, v in settings.items() if k != "programme_id"} | {"ideas_for_change": True}
    assert (await registration.put("/programmes/aimms-mentoring", json=asking, headers=admin)).status_code == 200
    await register(scheme, "prof", role="mentor", seniority="Professor", capacity=1)
    mentee = await register(scheme, "amina", role="mentee", seniority="Lecturer")
    await eventually(lambda: has_status(matching.get(f"/mentees/{mentee}/preferences")))
    assert (await matching.post("/programmes/aimms-mentoring/rounds", headers=admin)).status_code == 201
    [pair] = (await matching.get("/pairs", params={"programme_id": "aimms-mentoring"}, headers=admin)).json()
    for side in ("mentee", "mentor"):
        await matching.post(f"/pairs/{pair['pair_id']}/answers", json={"side": side, "accept": True})
    herself = await own_token(scheme, infrastructure, f"amina.{namespace}@demo-university.ac.uk")

    idea = "Publish the criteria for promotion to senior lecturer"
    ideas = f"/pairs/{pair['pair_id']}/ideas"

    async def recorded() -> bool:  # once matching has read the programme's update
        return (await matching.post(ideas, json={"text": idea}, headers=herself)).status_code == 204

    await eventually(recorded)
    problem(await matching.post(ideas, json={"text": "short"}, headers=herself), 422)
    report = (await matching.get("/programmes/aimms-mentoring/ideas", headers=admin)).json()
    assert report == {"pairs": 1, "withheld": True, "ideas": []}
    problem(await matching.get("/programmes/aimms-mentoring/ideas", headers=herself), 403)

    # At rest: the text and the month, and no id of the pair or of anyone in it.
    client: AsyncMongoClient = AsyncMongoClient(infrastructure.mongodb_uri)
    try:
        [stored] = await client[f"{namespace}_matching"]["ideas"].find({}, {"_id": 0}).to_list()
    finally:
        await client.close()
    assert stored["text"] == idea and len(stored["month"]) == 7
    assert not {pair["pair_id"], pair["mentee_id"], pair["mentor_id"]} & {str(v) for v in stored.values()}
