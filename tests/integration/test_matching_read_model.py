"""Matching builds its own read model from registration's events: directory and mentees' choices."""

import json
from typing import Any

import pytest

from aimms_matching.domain.rules import Member
from aimms_matching.store import MatchingStore
from aimms_shared.contracts.matching import PREFERENCES
from aimms_shared.events import in_namespace

from .conftest import Infrastructure, Scheme, bearer, eventually, has_status, read_topic, register

pytestmark = pytest.mark.integration


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
    other_mentee = await register(scheme, "student", role="mentee", seniority="PhD student")
    await eventually(lambda: _when(directory_ids(scheme), {professor, reader, junior}))
    for known in (mentee, other_mentee):
        await eventually(lambda known=known: _ok(scheme.matching.get(f"/mentees/{known}/preferences")))
    path = f"/mentees/{mentee}/preferences"

    chosen = await scheme.matching.put(path, json={"choices": [reader, professor]})

    assert chosen.status_code == 200, chosen.text
    assert (await scheme.matching.get(path)).json()["choices"] == [reader, professor]
    [record] = await read_topic(infrastructure, in_namespace(PREFERENCES.name, scheme.platform.namespace), expect=1)
    assert json.loads(record.value)["payload"]["choices"] == [reader, professor]

    # The scheme's way: she may name any published mentor; seniority only guides fallback proposals.
    junior_chosen = await scheme.matching.put(path, json={"choices": [junior]})
    assert junior_chosen.status_code == 200, junior_chosen.text

    for choices, field, rule in [
        ([professor, professor], "choices", "distinct-choices"),
        ([mentee], "choices.0", "not-self"),
        ([other_mentee], "choices.0", "published-mentor"),
    ]:
        refused = await scheme.matching.put(path, json={"choices": choices})
        assert (refused.status_code, refused.json()["field"], refused.json()["rule"]) == (422, field, rule)
    # An id matching has not heard of may be a registration still on its way: retry, not 404 or 422.
    unheard = await scheme.matching.put(path, json={"choices": ["not-yet-here"]})
    assert (unheard.status_code, unheard.json()["rule"], unheard.headers["Retry-After"]) == (409, "known-here", "2")
    too_many = await scheme.matching.put(path, json={"choices": [professor, reader, junior, "x"]})
    assert too_many.status_code == 422
    other_portal = await scheme.matching.put(path, json={"choices": []}, headers=bearer(scheme.northgate_token))
    # Another school's mentee is answered as one matching has not heard of: nothing is learnt of her.
    assert other_portal.status_code == 409 and other_portal.json()["rule"] == "known-here"


async def test_a_mentee_whose_registration_has_not_reached_matching_is_asked_to_retry_not_refused(
    scheme: Scheme,
) -> None:
    """A portal registers her and submits her choices at once: a 409 with Retry-After, then success."""
    professor = await register(scheme, "prof", role="mentor", seniority="Professor")
    await eventually(lambda: _when(directory_ids(scheme), {professor}))
    mentee = await register(scheme, "lecturer", role="mentee", seniority="Lecturer")

    first = await scheme.matching.put(f"/mentees/{mentee}/preferences", json={"choices": [professor]})
    unknown = await scheme.matching.get("/mentees/never-registered/preferences")

    if first.status_code != 200:  # usually: registration's event is still on its way
        assert first.status_code == 409 and first.headers["content-type"] == "application/problem+json"
        assert first.headers["Retry-After"] == "2" and first.json()["rule"] == "known-here"
        assert "retry" in first.json()["detail"]
    assert (unknown.status_code, unknown.json()["type"]) == (409, "/problems/not-yet-known")
    assert unknown.headers["Retry-After"] == "2"
    await eventually(lambda: _ok(scheme.matching.put(f"/mentees/{mentee}/preferences", json={"choices": [professor]})))


async def test_withdrawal_and_erasure_reach_the_read_model(scheme: Scheme) -> None:
    professor = await register(scheme, "prof", role="mentor", seniority="Professor")
    mentee = await register(scheme, "lecturer", role="mentee", seniority="Lecturer")
    await eventually(lambda: _when(directory_ids(scheme), {professor}))
    await eventually(lambda: _ok(scheme.matching.get(f"/mentees/{mentee}/preferences")))
    await scheme.matching.put(f"/mentees/{mentee}/preferences", json={"choices": [professor]})

    await scheme.platform.registration.post(f"/participants/{professor}/withdrawal", json={})
    await scheme.platform.registration.delete(f"/participants/{mentee}")

    await eventually(lambda: _when(directory_ids(scheme), set()))
    await eventually(lambda: has_status(scheme.matching.get(f"/mentees/{mentee}/preferences"), 404))


async def _when(pending: Any, expected: set[str]) -> bool:
    return await pending == expected


async def _ok(pending: Any) -> bool:
    return (await pending).status_code == 200


async def test_her_free_text_arriving_before_her_profile_leaves_her_not_yet_known(scheme: Scheme) -> None:
    """The text rides the contacts topic and may overtake her profile: until the profile comes she is a
    retry, not an error; then she is an active member with both."""
    store: MatchingStore = scheme.matching_app.state.store
    text = {"participant_id": "text-first", "job_title": "Clinical lecturer", "offers": None, "answers": {}}
    await store.save_member_text(text)

    assert await store.member("text-first") is None
    early = await scheme.matching.get("/mentees/text-first/preferences")
    assert (early.status_code, early.json()["type"]) == (409, "/problems/not-yet-known")

    await store.save_member(
        Member(
            "text-first",
            "aimms-mentoring",
            "demo-university",
            ("mentee",),
            "Lecturer",
            "clinical",
            (),
            None,
            False,
            False,
        )
    )
    member = await store.member("text-first")
    assert member is not None and (member.job_title, member.active, member.load) == ("Clinical lecturer", True, 0)
