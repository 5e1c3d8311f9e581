"""Registration against the real store and broker: each event, encryption at rest, erasure, idempotency."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from aimms_shared.contracts.registration import CONTACTS, INSTITUTIONS, PARTICIPANTS, PROGRAMMES
from aimms_shared.events import in_namespace

from .conftest import Infrastructure, Platform, bearer, read_topic, token

pytestmark = pytest.mark.integration

SCALE = ["Student", "Lecturer", "Professor"]


def participant_body(namespace: str, who: str = "amina", **overrides: Any) -> dict[str, Any]:
    """A complete, valid registration at the demo university."""
    return {
        "name": f"Dr {who.title()} Okafor",
        "email": f"{who}.{namespace}@demo-university.ac.uk",
        "programme_id": "aimms-mentoring",
        "role": "both",
        "job_title": "Lecturer in Epidemiology",
        "seniority": "Lecturer",
        "pathway": "clinical",
        "research_interests": ["Global Health", "epidemiology"],
        "offers": "Help with first grant applications",
        "seeks": "Leadership and promotion advice",
        "mentor_capacity": 2,
        "publish_profile": True,
        "background_matching": True,
        "consents": {"privacy_notice": "2025-01", "code_of_conduct": "v2", "confidentiality": "v1"},
        "confirmed_eligibility": ["woman", "ethnic-minority", "academic-medicine"],
        "ethnicity": "British Nigerian",
        "age_band": "30-39",
    } | overrides


async def events(
    infra: Infrastructure, platform: Platform, topic: str, expect: int, key: str | None = None, timeout: float = 20
) -> list[tuple[str, Any]]:
    """(key, envelope or None for a tombstone) of each distinct record on one of this test's topics,
    or only those of one key: the topics have several partitions, so only one key's records keep their order.

    Delivery is at least once, so a record may be on the topic twice; consumers drop the copy by
    event id, and so does this.
    """
    name = in_namespace(topic, platform.namespace)
    wanted = expect
    while True:
        records = await read_topic(infra, name, expect=wanted, timeout=timeout)
        distinct = list(dict.fromkeys((r.key.decode(), r.value) for r in records))
        chosen = [(k, value) for k, value in distinct if key in (None, k)]
        if len(chosen) >= expect or len(records) < wanted:
            return [(k, json.loads(value) if value is not None else None) for k, value in chosen]
        wanted = len(records) + expect - len(chosen)


async def stored_participants(infra: Infrastructure, platform: Platform) -> int:
    """Participant documents in this test's registration database."""
    client: AsyncMongoClient = AsyncMongoClient(infra.mongodb_uri)
    try:
        return await client[platform.registration_settings.mongodb_database]["participants"].count_documents({})
    finally:
        await client.close()


async def test_an_institution_is_onboarded_by_data_and_its_portal_gets_working_credentials(
    platform: Platform, infrastructure: Infrastructure
) -> None:
    admin = bearer(platform.admin_token)
    body = {
        "institution_id": "southampton",
        "name": "University of Southampton Faculty of Medicine",
        "email_domains": ["soton.ac.uk"],
        "contact_email": "aimms@soton.ac.uk",
        "registration_url": "https://portal.soton.ac.uk/aimms",
    }

    onboarded = await platform.registration.post("/institutions", json=body, headers=admin)

    assert onboarded.status_code == 201, onboarded.text
    credential = onboarded.json()["credential"]
    assert credential["institution_id"] == "southampton" and credential["client_secret"]
    portal = await token(platform.registration, credential["client_id"], credential["client_secret"])
    own = await platform.registration.get("/institutions/southampton", headers=bearer(portal))
    assert own.json()["email_domains"] == ["soton.ac.uk"]
    [(_, published)] = await events(infrastructure, platform, INSTITUTIONS.name, expect=1, key="southampton")
    assert published["event_type"] == "InstitutionOnboarded"
    assert published["payload"]["institution_id"] == "southampton"

    listed = await platform.registration.get("/credentials", params={"institution_id": "southampton"}, headers=admin)
    assert [c["client_id"] for c in listed.json()] == [credential["client_id"]]
    assert "client_secret" not in listed.text and "secret_hash" not in listed.text

    again = await platform.registration.post("/institutions", json=body, headers=admin)
    assert again.status_code == 409 and again.json()["rule"] == "unique"


async def test_a_suspended_institution_gets_no_tokens_and_registers_no_one(
    platform: Platform, infrastructure: Infrastructure
) -> None:
    admin = bearer(platform.admin_token)
    created = await platform.registration.post(
        "/credentials",
        json={"name": "second portal", "institution_id": "demo-university", "scopes": ["participants:write"]},
        headers=admin,
    )
    client_id, secret = created.json()["client_id"], created.json()["client_secret"]

    suspended = await platform.registration.post("/institutions/demo-university/suspension", headers=admin)
    assert suspended.json()["active"] is False
    refused = await platform.registration.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    )
    assert refused.status_code == 401
    blocked = await platform.registration.post("/participants", json=participant_body(platform.namespace))
    assert blocked.status_code == 409 and blocked.json()["rule"] == "active-institution"

    await platform.registration.delete("/institutions/demo-university/suspension", headers=admin)
    assert await token(platform.registration, client_id, secret)
    published = await events(infrastructure, platform, INSTITUTIONS.name, expect=3, key="demo-university")
    assert [e["event_type"] for _, e in published] == [
        "InstitutionOnboarded",
        "InstitutionSuspended",
        "InstitutionReactivated",
    ]


async def test_credentials_rotate_and_revoke(platform: Platform) -> None:
    admin = bearer(platform.admin_token)
    created = (
        await platform.registration.post(
            "/credentials", json={"name": "ops", "institution_id": None, "scopes": ["admin"]}, headers=admin
        )
    ).json()
    rotated = (await platform.registration.post(f"/credentials/{created['client_id']}/rotation", headers=admin)).json()

    form = {"grant_type": "client_credentials", "client_id": created["client_id"]}
    old = await platform.registration.post("/oauth/token", data=form | {"client_secret": created["client_secret"]})
    assert old.status_code == 401
    assert await token(platform.registration, created["client_id"], rotated["client_secret"])

    await platform.registration.delete(f"/credentials/{created['client_id']}", headers=admin)
    revoked = await platform.registration.post("/oauth/token", data=form | {"client_secret": rotated["client_secret"]})
    assert revoked.status_code == 401 and revoked.headers["content-type"] == "application/problem+json"


async def test_programmes_of_every_kind_are_created_and_changed_as_data(
    platform: Platform, infrastructure: Infrastructure
) -> None:
    admin = bearer(platform.admin_token)
    base = {"roles_offered": ["mentor", "mentee"], "seniority_scale": SCALE}
    postgraduate = base | {"programme_id": "postgraduate", "name": "AIMMS Postgraduate", "term": "P1Y"}
    reverse = base | {
        "programme_id": "reverse-2027",
        "name": "Reverse Mentoring 2027",
        "mentor_more_senior": False,
        "audience": "students and the senior staff they mentor",
        "eligibility": [
            {"statement_id": "student", "text": "I am a student.", "roles": ["mentor"]},
            {"statement_id": "senior", "text": "I hold a senior role.", "roles": ["mentee"]},
        ],
    }

    for programme in (postgraduate, reverse):
        created = await platform.registration.post("/programmes", json=programme, headers=admin)
        assert created.status_code == 201, created.text
    closed = await platform.registration.put(
        "/programmes/postgraduate",
        json={k: v for k, v in postgraduate.items() if k != "programme_id"} | {"open_for_registration": False},
        headers=admin,
    )
    assert closed.json()["open_for_registration"] is False

    published = await events(infrastructure, platform, PROGRAMMES.name, expect=5)  # two demo programmes first
    by_programme = {key: [e["event_type"] for k, e in published if k == key] for key, _ in published}
    assert by_programme["postgraduate"] == ["ProgrammeOpened", "ProgrammeUpdated"], published  # one key: in order
    assert by_programme["reverse-2027"] == ["ProgrammeOpened"]
    [reverse_opened] = [e for k, e in published if k == "reverse-2027"]
    assert reverse_opened["payload"]["mentor_more_senior"] is False
    assert reverse_opened["payload"]["audience"] == "students and the senior staff they mentor"
    shown = (await platform.registration.get("/programmes/reverse-2027")).json()
    assert [(e["statement_id"], e["roles"]) for e in shown["eligibility"]] == [
        ("student", ["mentor"]),
        ("senior", ["mentee"]),
    ]
    bad = await platform.registration.post(
        "/programmes", json=reverse | {"programme_id": "x1", "term": "six months"}, headers=admin
    )
    assert (bad.status_code, bad.json()["field"], bad.json()["rule"]) == (422, "term", "iso-8601-duration")


async def test_registration_raises_its_event_and_a_contact_record_without_special_category_data(
    platform: Platform, infrastructure: Infrastructure
) -> None:
    registered = await platform.registration.post("/participants", json=participant_body(platform.namespace))

    assert registered.status_code == 201, registered.text
    participant = registered.json()
    assert "ethnicity" not in participant and "age_band" not in participant
    [(key, event)] = await events(infrastructure, platform, PARTICIPANTS.name, expect=1)
    assert key == participant["participant_id"]
    assert event["event_type"] == "ParticipantRegistered"
    assert event["payload"]["roles"] == ["mentor", "mentee"]
    assert event["payload"]["research_interests"] == ["global-health", "epidemiology"]
    wire = json.dumps(event)
    assert "Nigerian" not in wire and "30-39" not in wire and "@" not in wire and "Okafor" not in wire
    assert participant["job_title"] not in wire and participant["offers"] not in wire  # her words go apart:
    compacted = dict(await events(infrastructure, platform, CONTACTS.name, expect=2))
    assert compacted[key]["payload"]["email"] == participant["email"]
    assert compacted[f"profile:{key}"]["payload"]["offers"] == participant["offers"]


async def test_special_category_data_is_encrypted_at_rest_and_returned_only_to_subject_access(
    platform: Platform, infrastructure: Infrastructure
) -> None:
    participant = (await platform.registration.post("/participants", json=participant_body(platform.namespace))).json()

    client: AsyncMongoClient = AsyncMongoClient(infrastructure.mongodb_uri)
    try:
        raw = await client[platform.registration_settings.mongodb_database]["participants"].find_one(
            {"_id": participant["participant_id"]}
        )
    finally:
        await client.close()
    stored = json.dumps(raw, default=str)
    assert "Nigerian" not in stored and "30-39" not in stored
    assert set(raw["sensitive"]) == {"ethnicity", "age_band"}
    assert raw["sensitive"]["ethnicity"]["kid"] == "test-1"

    export = (await platform.registration.get(f"/participants/{participant['participant_id']}/export")).json()
    assert export["participant"]["sensitive"] == {"ethnicity": "British Nigerian", "age_band": "30-39"}
    assert all("Nigerian" not in json.dumps(p) for p in (await platform.registration.get("/participants")).json())


async def test_a_retried_post_with_the_same_idempotency_key_creates_nothing_twice(
    platform: Platform, infrastructure: Infrastructure
) -> None:
    body = participant_body(platform.namespace)
    key = {"Idempotency-Key": f"retry-{platform.namespace}"}

    first = await platform.registration.post("/participants", json=body, headers=key)
    retry = await platform.registration.post("/participants", json=body, headers=key)
    other = await platform.registration.post("/participants", json=body | {"job_title": "Professor"}, headers=key)

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json()["participant_id"] == first.json()["participant_id"]
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 422 and other.json()["type"] == "/problems/idempotency-key-reused"
    assert await stored_participants(infrastructure, platform) == 1
    assert len(await events(infrastructure, platform, PARTICIPANTS.name, expect=2, timeout=3)) == 1


@pytest.mark.parametrize("left_as", ["pending", "released"])
async def test_a_retry_after_a_crash_between_her_registration_and_its_answer_gets_that_answer(
    platform: Platform, infrastructure: Infrastructure, left_as: str
) -> None:
    """The process died after the write and before it stored the response (the key left pending, and
    abandoned), or lost its connection as the write was acknowledged (the key released)."""
    body = participant_body(platform.namespace)
    key = {"Idempotency-Key": f"crash-{platform.namespace}"}
    first = await platform.registration.post("/participants", json=body, headers=key)
    assert first.status_code == 201, first.text
    client: AsyncMongoClient = AsyncMongoClient(infrastructure.mongodb_uri)
    try:
        keys = client[platform.registration_settings.mongodb_database]["idempotency_keys"]
        crashed = {"state": left_as, "created_at": datetime(2026, 1, 1, tzinfo=UTC)}
        assert (await keys.update_one({}, {"$set": crashed, "$unset": {"status": "", "body": ""}})).modified_count
    finally:
        await client.close()

    retry = await platform.registration.post("/participants", json=body, headers=key)

    assert retry.status_code == 201, retry.text
    assert retry.json()["participant_id"] == first.json()["participant_id"]
    assert await stored_participants(infrastructure, platform) == 1
    assert len(await events(infrastructure, platform, PARTICIPANTS.name, expect=2, timeout=3)) == 1


@pytest.mark.parametrize(
    ("change", "status", "field", "rule"),
    [
        ({"email": "amina@gmail.com"}, 422, "email", "institution-email-domain"),
        ({"consents": {"privacy_notice": "2025-01"}}, 422, "consents", "required-consent"),
        ({"confirmed_eligibility": ["woman"]}, 422, "confirmed_eligibility", "eligibility"),
        ({"mentor_capacity": 9}, 422, "mentor_capacity", "capacity-range"),
        ({"seniority": "Dean"}, 422, "seniority", "programme-scale"),
        ({"programme_id": "no-such-programme"}, 404, "programme_id", "existing-programme"),
    ],
)
async def test_a_refused_registration_names_the_field_and_rule_and_leaves_nothing_behind(
    platform: Platform, infrastructure: Infrastructure, change: dict[str, Any], status: int, field: str, rule: str
) -> None:
    refused = await platform.registration.post("/participants", json=participant_body(platform.namespace) | change)

    assert refused.status_code == status, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert (refused.json()["field"], refused.json()["rule"]) == (field, rule)
    assert (await platform.registration.get("/participants")).json() == []
    # Events live in the stored document's outbox: no document, no event.
    assert await stored_participants(infrastructure, platform) == 0


async def test_registering_twice_in_a_programme_is_refused(platform: Platform) -> None:
    body = participant_body(platform.namespace)
    await platform.registration.post("/participants", json=body)
    twice = await platform.registration.post("/participants", json=body | {"email": body["email"].upper()})
    assert twice.status_code == 409 and twice.json()["rule"] == "one-registration-per-programme"


async def test_profile_changes_capacity_and_withdrawal_raise_their_events(
    platform: Platform, infrastructure: Infrastructure
) -> None:
    participant = (await platform.registration.post("/participants", json=participant_body(platform.namespace))).json()
    path = f"/participants/{participant['participant_id']}"

    changed = await platform.registration.patch(path, json={"mentor_capacity": 3, "job_title": "Senior Lecturer"})
    assert changed.status_code == 200, changed.text
    withdrawn = await platform.registration.post(f"{path}/withdrawal", json={"reason": "new job abroad"})
    assert withdrawn.json()["status"] == "withdrawn"
    again = await platform.registration.post(f"{path}/withdrawal", json={})
    assert again.status_code == 409

    kinds = [e["event_type"] for _, e in await events(infrastructure, platform, PARTICIPANTS.name, expect=4)]
    assert kinds == [
        "ParticipantRegistered",
        "ParticipantProfileUpdated",
        "MentorCapacityChanged",
        "ParticipantWithdrawn",
    ]


async def test_evaluation_consent_is_recorded_apart_and_coordinators_can_leave_someone_out(
    platform: Platform, infrastructure: Infrastructure
) -> None:
    consents = {"privacy_notice": "2025-01", "code_of_conduct": "v2", "confidentiality": "v1", "evaluation": "PIS-3"}
    body = participant_body(platform.namespace, consents=consents)
    participant = (await platform.registration.post("/participants", json=body)).json()
    path = f"/participants/{participant['participant_id']}"
    admin = bearer(platform.admin_token)

    assert participant["in_evaluation"] is True
    assert ("evaluation", "PIS-3") in [(c["kind"], c["version"]) for c in participant["consents"]]
    by_portal = await platform.registration.put(f"{path}/evaluation-exclusion", json={"excluded": True, "reason": "x"})
    no_reason = await platform.registration.put(f"{path}/evaluation-exclusion", json={"excluded": True}, headers=admin)
    excluded = await platform.registration.put(
        f"{path}/evaluation-exclusion", json={"excluded": True, "reason": "committee member"}, headers=admin
    )
    withdrawn = await platform.registration.put(f"{path}/evaluation-consent", json={"version": None})
    included = await platform.registration.put(f"{path}/evaluation-exclusion", json={"excluded": False}, headers=admin)
    consented = await platform.registration.put(f"{path}/evaluation-consent", json={"version": "PIS-4"})

    assert by_portal.status_code == 403 and no_reason.status_code == 422
    assert (
        excluded.json()["in_evaluation"] is False and excluded.json()["excluded_from_evaluation"] == "committee member"
    )
    assert withdrawn.json()["in_evaluation"] is False  # excluded and no consent
    assert included.json()["in_evaluation"] is False  # included again, but her consent is withdrawn
    assert consented.json()["in_evaluation"] is True
    changes = [
        (e["event_type"], e["payload"].get("in_evaluation"))
        for _, e in await events(infrastructure, platform, PARTICIPANTS.name, expect=3)
    ]
    # Only changes of whether she is in the evaluation are announced; no reason travels.
    assert changes == [
        ("ParticipantRegistered", True),
        ("EvaluationParticipationChanged", False),
        ("EvaluationParticipationChanged", True),
    ]


async def test_erasure_leaves_nothing_of_her_here_and_tombstones_her_contact_record(
    platform: Platform, infrastructure: Infrastructure
) -> None:
    interest = {
        "name": "Dr Amina Okafor",
        "email": f"amina.{platform.namespace}@demo-university.ac.uk",
        "programme_id": "aimms-mentoring",
    }
    interest_id = (await platform.registration.post("/interests", json=interest)).json()["interest_id"]
    participant = (await platform.registration.post("/participants", json=participant_body(platform.namespace))).json()
    participant_id = participant["participant_id"]

    erased = await platform.registration.delete(f"/participants/{participant_id}")

    assert erased.status_code == 204
    assert (await platform.registration.get(f"/participants/{participant_id}")).status_code == 404
    client: AsyncMongoClient = AsyncMongoClient(infrastructure.mongodb_uri)
    try:
        db = client[platform.registration_settings.mongodb_database]
        remains = json.dumps(await db["participants"].find_one({"_id": participant_id}, {"outbox": 0}), default=str)
        interests = await db["interests"].count_documents({})
    finally:
        await client.close()
    for personal in ("Okafor", "amina", "demo-university.ac.uk", "Epidemiology", "sensitive", "Lecturer", "grant"):
        assert personal.lower() not in remains.lower(), personal
    assert interests == 0

    # Her contact records (as participant, and as she expressed interest) end in tombstones: compaction forgets them.
    latest = dict(await events(infrastructure, platform, CONTACTS.name, expect=6))
    assert latest[participant_id] is None and latest[f"interest:{interest_id}"] is None
    assert latest[f"profile:{participant_id}"] is None  # her profile's free text too
    kinds = [e["event_type"] for _, e in await events(infrastructure, platform, PARTICIPANTS.name, expect=2)]
    assert kinds == ["ParticipantRegistered", "ParticipantErased"]


async def test_coordinators_see_the_pipeline_per_programme_and_institution(platform: Platform) -> None:
    ns = platform.namespace
    for who in ("ada", "bea", "cat"):
        await platform.registration.post(
            "/interests", json={"name": who, "email": f"{who}.{ns}@example.org", "programme_id": "aimms-mentoring"}
        )
    for who in ("ada", "bea"):
        await platform.registration.post("/participants", json=participant_body(ns, who))
    [first, *_] = (await platform.registration.get("/participants")).json()
    await platform.registration.post(f"/participants/{first['participant_id']}/withdrawal", json={})

    report = await platform.registration.get(
        "/reports/pipeline", params={"programme_id": "aimms-mentoring"}, headers=bearer(platform.admin_token)
    )

    assert report.json() == [
        {
            "programme_id": "aimms-mentoring",
            "institution_id": "demo-university",
            "interested": 3,
            "registered": 1,
            "withdrawn": 1,
            "erased": 0,
        }
    ]
