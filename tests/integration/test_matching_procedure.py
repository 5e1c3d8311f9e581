"""The AIMMS procedure through matching's API on the real broker and store, with a term of seconds.

Preferences → cohort round → proposals → a decline → rolling re-match → both accept (portal and
email link) → SixMonthsElapsed → the term's end → extended or concluded. Two matching replicas run,
so every scheduled event is also shown to happen once with two schedulers.
"""

import asyncio
import json
from collections import Counter
from typing import Any

import httpx
import pytest

from aimms_matching.app import create_app as create_matching
from aimms_matching.domain.pairs import Explanation, Pair, Timing
from aimms_matching.settings import MatchingSettings
from aimms_matching.store import MatchingStore
from aimms_shared.contracts.matching import PAIRS
from aimms_shared.events import in_namespace
from aimms_shared.mongo import utcnow

from .conftest import (
    Infrastructure,
    Scheme,
    bearer,
    eventually,
    has_status,
    read_topic,
    register,
    running,
    service_settings,
)

pytestmark = pytest.mark.integration

SHORT = {
    "term": "PT8S",
    "follow_up_after": "PT4S",
    "matching": {"reply_within": "PT60S", "reminder_after": "PT30S", "trial_period": "PT2S"},
}


async def shorten_programme(scheme: Scheme) -> None:
    """Give the AIMMS programme a term of seconds, and wait until matching knows it."""
    registration, admin = scheme.platform.registration, bearer(scheme.platform.admin_token)
    current = (await registration.get("/programmes/aimms-mentoring")).json()
    settings = {k: v for k, v in current.items() if k != "programme_id"} | SHORT
    updated = await registration.put("/programmes/aimms-mentoring", json=settings, headers=admin)
    assert updated.status_code == 200, updated.text
    store: MatchingStore = scheme.matching_app.state.store

    async def known() -> bool:
        programme = await store.programme("aimms-mentoring")
        return programme is not None and programme.term == "PT8S"

    await eventually(known)


async def pair_events(infra: Infrastructure, scheme: Scheme, expect: int) -> list[dict[str, Any]]:
    """Every distinct pair event so far (delivery is at least once: copies share an event id)."""
    topic = in_namespace(PAIRS.name, scheme.platform.namespace)
    records = [json.loads(r.value) for r in await read_topic(infra, topic, expect=expect, timeout=5)]
    return list({r["event_id"]: r for r in records}.values())


async def wait_for(infra: Infrastructure, scheme: Scheme, event_type: str, count: int) -> list[dict[str, Any]]:
    """Wait until `count` events of a type are on the pairs topic; return their payloads."""

    async def found() -> list[dict[str, Any]] | None:
        events = [e["payload"] for e in await pair_events(infra, scheme, 100) if e["event_type"] == event_type]
        return events if len(events) >= count else None

    return await eventually(found, timeout=45)


async def test_the_aimms_procedure_runs_end_to_end(scheme: Scheme, infrastructure: Infrastructure) -> None:
    await shorten_programme(scheme)
    # A second replica of matching: its consumer and scheduler share the work with the first.
    twin_app = create_matching(service_settings(MatchingSettings, infrastructure, scheme.platform.namespace))
    async with running(twin_app):
        await _procedure(scheme, infrastructure)


async def _procedure(scheme: Scheme, infra: Infrastructure) -> None:
    matching, admin = scheme.matching, bearer(scheme.platform.admin_token)
    northgate = bearer(scheme.northgate_token)
    prof = await register(scheme, "prof", role="mentor", seniority="Professor", capacity=1)
    reader = await register(
        scheme, "reader", role="mentor", seniority="Associate professor", at="northgate", capacity=1
    )
    senior = await register(scheme, "senior", role="mentor", seniority="Senior lecturer", capacity=1)
    amina = await register(scheme, "amina", role="mentee", seniority="Lecturer")
    bisi = await register(scheme, "bisi", role="mentee", seniority="Postdoctoral researcher", at="northgate")

    async def directory() -> set[str]:
        listed = await matching.get("/directory", params={"programme_id": "aimms-mentoring"})
        return {e["participant_id"] for e in listed.json()}

    await eventually(lambda: _equal(directory(), {prof, reader, senior}))
    for mentee, choices, portal in ((amina, [prof, reader], {}), (bisi, [prof], northgate)):
        await eventually(
            lambda mentee=mentee, portal=portal: has_status(
                matching.get(f"/mentees/{mentee}/preferences", headers=portal), 200
            )
        )
        chosen = await matching.put(f"/mentees/{mentee}/preferences", json={"choices": choices}, headers=portal)
        assert chosen.status_code == 200, chosen.text

    # The cohort round: both named the professor first; Bisi, from another school, ranks higher with her.
    ran = await matching.post("/programmes/aimms-mentoring/rounds", headers=admin)
    assert ran.status_code == 201, ran.text
    report = ran.json()
    assert (report["mentees"], report["proposed"], report["unmatched"]) == (2, 2, 0)
    assert report["stable"]["blocking_pairs"] == 0
    assert report["stable"]["rank_profile"]["choice_1"] == 1 and report["stable"]["rank_profile"]["choice_2"] == 1
    proposed = {e["mentee_id"]: e for e in await wait_for(infra, scheme, "MatchProposed", 2)}
    assert proposed[bisi]["mentor_id"] == prof and proposed[bisi]["choice_rank"] == 1
    assert proposed[amina]["mentor_id"] == reader and proposed[amina]["choice_rank"] == 2
    assert (await matching.put(f"/mentees/{amina}/preferences", json={"choices": [senior]})).status_code == 409

    # The reader declines through her own portal; another school's portal cannot answer for her.
    first = proposed[amina]["pair_id"]
    refused = await matching.post(f"/pairs/{first}/answers", json={"side": "mentor", "accept": False})
    assert refused.status_code == 404
    declined = await matching.post(
        f"/pairs/{first}/answers", json={"side": "mentor", "accept": False, "reason": "on leave"}, headers=northgate
    )
    assert declined.status_code == 200 and declined.json()["state"] == "declined"
    again = await matching.post(f"/pairs/{first}/answers", json={"side": "mentee", "accept": True})
    assert again.status_code == 409

    # Rolling re-match: Amina gets the only place left, every other pair untouched.
    proposals = await wait_for(infra, scheme, "MatchProposed", 3)
    rematch = next(p for p in proposals if p["pair_id"] not in {first, proposed[bisi]["pair_id"]})
    assert (rematch["mentee_id"], rematch["mentor_id"]) == (amina, senior)
    assert rematch["round"] == "rolling" and rematch["fallback_reason"] == "choices-declined"

    # Bisi and the professor accept by portal; Amina and her new mentor by the links in their emails.
    bisi_pair = proposed[bisi]["pair_id"]
    for side, headers in (("mentee", northgate), ("mentor", {})):
        accepted = await matching.post(
            f"/pairs/{bisi_pair}/answers", json={"side": side, "accept": True}, headers=headers
        )
        assert accepted.status_code == 200, accepted.text
    for link in (rematch["mentee_links"]["accept"], rematch["mentor_links"]["accept"]):
        path = httpx.URL(link).path
        page = await matching.get(path)
        assert page.status_code == 200 and "<form" in page.text
        assert (await matching.post(path)).status_code == 200
        assert (await matching.post(path)).status_code == 409  # a link works once
    started = await wait_for(infra, scheme, "MentoringStarted", 2)
    assert {e["mentee_id"] for e in started} == {amina, bisi}

    # The directory shows the mentors full, not hidden; the coordinator lists partnerships by state.
    entries = (await matching.get("/directory", params={"programme_id": "aimms-mentoring"})).json()
    assert {e["participant_id"]: e["full"] for e in entries} == {prof: True, reader: False, senior: True}
    active = (await matching.get("/pairs", params={"state": "mentoring"}, headers=admin)).json()
    assert {p["mentee_id"] for p in active} == {amina, bisi}

    # Time passes (seconds here): the follow-up point, once per partnership despite two schedulers.
    elapsed = await wait_for(infra, scheme, "SixMonthsElapsed", 2)
    await wait_for(infra, scheme, "MentoringTermEnded", 2)
    for side in ("mentee", "mentor"):
        headers = northgate if side == "mentee" else {}
        await matching.post(f"/pairs/{bisi_pair}/term", json={"side": side, "extend": True}, headers=headers)
    concluded = await matching.post(f"/pairs/{rematch['pair_id']}/term", json={"side": "mentee", "extend": False})
    assert concluded.status_code == 200 and concluded.json()["end_reason"] == "completed"
    extended = await wait_for(infra, scheme, "MatchExtended", 1)
    assert extended[0]["pair_id"] == bisi_pair
    await wait_for(infra, scheme, "MatchEnded", 1)

    events = await pair_events(infra, scheme, 100)
    # Each step happened once, with two replicas (an extended term ends again, at its new end).
    steps = Counter(
        (e["event_type"], e["payload"]["pair_id"], e["payload"].get("side"), e["payload"].get("term_ended_at"))
        for e in events
    )
    assert all(n == 1 for n in steps.values()), steps
    assert len(elapsed) == 2
    report = (await matching.get("/reports/matching", params={"programme_id": "aimms-mentoring"}, headers=admin)).json()
    assert report["partnerships_started"] == 2 and report["pairs_by_state"]["declined"] == 1
    assert report["days_to_match_median"] is not None


async def test_a_withdrawn_mentor_frees_her_mentee_who_is_matched_again(
    scheme: Scheme, infrastructure: Infrastructure
) -> None:
    await shorten_programme(scheme)
    prof = await register(scheme, "prof", role="mentor", seniority="Professor", capacity=1)
    reader = await register(scheme, "reader", role="mentor", seniority="Associate professor", capacity=1)
    amina = await register(scheme, "amina", role="mentee", seniority="Lecturer")
    store: MatchingStore = scheme.matching_app.state.store
    await eventually(lambda: _all_known(store, [prof, reader, amina]))
    await scheme.matching.put(f"/mentees/{amina}/preferences", json={"choices": [prof]})
    await scheme.matching.post("/programmes/aimms-mentoring/rounds", headers=bearer(scheme.platform.admin_token))
    [first] = await wait_for(infrastructure, scheme, "MatchProposed", 1)
    assert first["mentor_id"] == prof

    withdrawn = await scheme.platform.registration.post(f"/participants/{prof}/withdrawal", json={})
    assert withdrawn.status_code == 200, withdrawn.text

    [ended] = await wait_for(infrastructure, scheme, "MatchEnded", 1)
    assert (ended["pair_id"], ended["reason"], ended["stage"]) == (first["pair_id"], "withdrawn", "proposal")
    proposals = await wait_for(infrastructure, scheme, "MatchProposed", 2)
    assert {p["mentor_id"] for p in proposals} == {prof, reader}
    assert (await store.member(prof)).load == 0


async def test_the_last_place_goes_to_exactly_one_of_many_racing_holders(scheme: Scheme) -> None:
    mentor = await register(scheme, "prof", role="mentor", seniority="Professor", capacity=2)
    mentees = [await register(scheme, f"m{i}", role="mentee", seniority="Lecturer") for i in range(10)]
    store: MatchingStore = scheme.matching_app.state.store
    await eventually(lambda: _all_known(store, [mentor, *mentees]))
    racing = [_pair(f"race-{i}", mentee, mentor) for i, mentee in enumerate(mentees)]

    held = await asyncio.gather(*(store.hold_places(pair) for pair in racing))

    assert sum(held) == 2
    assert (await store.member(mentor)).load == 2
    winner = racing[held.index(True)]
    assert await store.hold_places(winner)  # holding again for the same pair is harmless
    assert (await store.member(mentor)).load == 2
    await store.release_places(winner)
    await store.release_places(winner)
    assert (await store.member(mentor)).load == 1
    assert (await store.member(winner.mentee_id)).open_pair is None


async def test_simultaneous_answers_are_each_recorded_once(scheme: Scheme, infrastructure: Infrastructure) -> None:
    await shorten_programme(scheme)
    prof = await register(scheme, "prof", role="mentor", seniority="Professor", capacity=1)
    amina = await register(scheme, "amina", role="mentee", seniority="Lecturer")
    store: MatchingStore = scheme.matching_app.state.store
    await eventually(lambda: _all_known(store, [prof, amina]))
    ran = await scheme.matching.post("/programmes/aimms-mentoring/rounds", headers=bearer(scheme.platform.admin_token))
    [proposal] = await wait_for(infrastructure, scheme, "MatchProposed", 1)
    assert ran.json()["proposed"] == 1

    path = f"/pairs/{proposal['pair_id']}/answers"
    answers = await asyncio.gather(
        *(scheme.matching.post(path, json={"side": side, "accept": True}) for side in ("mentee", "mentor", "mentee"))
    )

    assert sorted(a.status_code for a in answers) == [200, 200, 409]
    assert (await scheme.matching.get(f"/pairs/{proposal['pair_id']}")).json()["state"] == "mentoring"
    await wait_for(infrastructure, scheme, "MentoringStarted", 1)
    types = Counter(e["event_type"] for e in await pair_events(infrastructure, scheme, 10))
    assert (types["MatchAccepted"], types["MentoringStarted"]) == (2, 1)


def _pair(pair_id: str, mentee: str, mentor: str) -> Pair:
    return Pair(
        pair_id,
        "aimms-mentoring",
        mentee,
        mentor,
        "demo-university",
        "demo-university",
        Explanation("rolling", None, "no-choices", 1.0, {}, (), 1),
        Timing("P14D", "P7D", "P1M", "P6M", "P6M"),
        utcnow(),
    )


async def _all_known(store: MatchingStore, ids: list[str]) -> bool:
    return all([await store.member(i) for i in ids])


async def _equal(pending: Any, expected: set[str]) -> bool:
    return await pending == expected
