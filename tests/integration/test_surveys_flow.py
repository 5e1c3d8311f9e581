"""Surveys on the real broker and store: invitations on matching's events, answers by link, anonymity, reports.

Matching's and registration's events are published by the test itself into its namespace, as
those services would publish them, so each trigger is shown on its own.
"""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from aimms_shared.contracts import matching as m
from aimms_shared.contracts import registration as reg
from aimms_shared.contracts.surveys import INVITATIONS, RESPONSES
from aimms_shared.events import Envelope, Event, in_namespace, wrap
from aimms_shared.mongo import utcnow
from aimms_surveys.app import create_app as create_surveys
from aimms_surveys.settings import SurveysSettings

from .conftest import (
    Infrastructure,
    Platform,
    bearer,
    eventually,
    has_status,
    read_topic,
    running,
    service_settings,
    verifier_of,
)

pytestmark = pytest.mark.integration

PROGRAMME = "aimms-mentoring"


@dataclass
class Surveys:
    """The surveys service running in this test, beside registration (for coordinators' tokens)."""

    platform: Platform
    infra: Infrastructure
    app: FastAPI
    http: httpx.AsyncClient
    admin: dict[str, str]

    @property
    def namespace(self) -> str:
        return self.platform.namespace

    async def publish(self, event: Event, envelope: Envelope | None = None) -> Envelope:
        """Put an event on its topic in this test's namespace, as its producer would."""
        envelope = envelope or wrap(event, producer="test")
        producer = AIOKafkaProducer(bootstrap_servers=self.infra.kafka)
        await producer.start()
        try:
            topic = in_namespace(event.topic.name, self.namespace)
            await producer.send_and_wait(topic, envelope.encode(), key=event.key().encode())
        finally:
            await producer.stop()
        return envelope

    async def in_evaluation(self, *participant_ids: str, included: bool = True) -> None:
        """Registration's word that they consented to the evaluation (or are out of it)."""
        for participant_id in participant_ids:
            await self.publish(
                reg.EvaluationParticipationChanged(
                    participant_id=participant_id,
                    programme_id=PROGRAMME,
                    institution_id="demo-university",
                    in_evaluation=included,
                )
            )

    async def invitations(self, expect: int, timeout: float = 20) -> list[dict[str, Any]]:
        """Distinct invitation events so far (delivery is at least once: copies share an event id)."""
        topic = in_namespace(INVITATIONS.name, self.namespace)
        records = [json.loads(r.value) for r in await read_topic(self.infra, topic, expect=expect, timeout=timeout)]
        return list({r["event_id"]: r for r in records}.values())

    async def links_for(self, participant_id: str, expect: int) -> list[str]:
        """Her links, in the order they were issued, once `expect` invitation events exist."""
        events = await eventually(lambda: self._at_least(expect))
        return [e["payload"]["link"] for e in events if e["payload"]["participant_id"] == participant_id]

    async def _at_least(self, expect: int) -> list[dict[str, Any]] | None:
        events = await self.invitations(expect, timeout=2)
        return events if len(events) >= expect else None

    async def stored(self, collection: str) -> list[dict[str, Any]]:
        """Every document of one of surveys' collections, as stored."""
        client: AsyncMongoClient = AsyncMongoClient(self.infra.mongodb_uri)
        try:
            return await client[f"{self.namespace}_surveys"][collection].find().to_list()
        finally:
            await client.close()


@pytest.fixture
async def surveys(platform: Platform, infrastructure: Infrastructure) -> AsyncIterator[Surveys]:
    settings = service_settings(
        SurveysSettings,
        infrastructure,
        platform.namespace,
        public_url="http://surveys.test",
        scheduler_poll_seconds=0.2,
    )
    app = create_surveys(settings)
    async with running(app) as http:
        app.state.token_verifier = verifier_of(platform.registration)
        yield Surveys(platform, infrastructure, app, http, bearer(platform.admin_token))


def new_pair(mentee: str, mentor: str) -> dict[str, str]:
    """What every event about a pair says of it, for a pair of its own."""
    return {"pair_id": str(uuid.uuid4()), "programme_id": PROGRAMME, "mentee_id": mentee, "mentor_id": mentor}


def started(mentee: str, mentor: str) -> m.MentoringStarted:
    now = utcnow()
    return m.MentoringStarted(
        **new_pair(mentee, mentor),
        mentee_institution_id="demo-university",
        mentor_institution_id="northgate",
        started_at=now,
        trial_ends_at=now + timedelta(days=30),
        follow_up_at=now + timedelta(days=182),
        term_ends_at=now + timedelta(days=182),
    )


def six_months(mentee: str, mentor: str) -> m.SixMonthsElapsed:
    now = utcnow()
    return m.SixMonthsElapsed(**new_pair(mentee, mentor), started_at=now - timedelta(days=182), follow_up_at=now)


def token_of(link: str) -> str:
    return link.rsplit("/", 1)[1]


async def test_mentoring_started_invites_mentee_and_mentor_once_however_often_it_arrives(surveys: Surveys) -> None:
    await surveys.in_evaluation("mentee-1", "mentor-1")
    event = started("mentee-1", "mentor-1")
    envelope = await surveys.publish(event)
    await surveys.publish(event, envelope)  # a redelivery: the same event id
    await surveys.publish(event)  # the same news again under a new event id

    await eventually(lambda: surveys._at_least(2))
    await asyncio.sleep(2)  # give any duplicate time to appear
    events = await surveys.invitations(expect=3, timeout=3)

    assert sorted((e["event_type"], e["payload"]["participant_id"], e["payload"]["role"]) for e in events) == [
        ("SurveyInvitationIssued", "mentee-1", "mentee"),
        ("SurveyInvitationIssued", "mentor-1", "mentor"),
    ]
    for e in events:
        payload = e["payload"]
        assert payload["wave"] == "baseline" and payload["programme_id"] == PROGRAMME
        assert payload["link"].startswith("http://surveys.test/surveys/") and len(token_of(payload["link"])) >= 43
        assert e["institution_id"] in ("demo-university", "northgate")
    assert len(await surveys.stored("invitations")) == 2


async def test_only_those_in_the_evaluation_are_asked_and_an_invitation_waits_for_registrations_word(
    surveys: Surveys,
) -> None:
    """Matching's event may arrive before registration's word on her: the invitation is owed, then issued."""
    await surveys.publish(started("mentee-7", "mentor-7"))
    await surveys.publish(started("mentee-8", "mentor-8"))
    await asyncio.sleep(2)
    assert await surveys.invitations(expect=1, timeout=1) == []  # nobody known to be in the evaluation yet

    await surveys.in_evaluation("mentee-7", "mentee-8")
    await surveys.in_evaluation("mentor-7", "mentor-8", included=False)  # no consent, or excluded by coordinators
    await eventually(lambda: surveys._at_least(2))
    await asyncio.sleep(2)  # give anything not owed time to appear
    events = await surveys.invitations(expect=3, timeout=2)
    assert sorted(e["payload"]["participant_id"] for e in events) == ["mentee-7", "mentee-8"]

    await surveys.in_evaluation("mentee-8", included=False)  # she withdrew her consent: her link stops working
    [link] = await surveys.links_for("mentee-8", expect=2)
    await eventually(lambda: has_status(surveys.http.get(f"/surveys/{token_of(link)}"), 410))
    await surveys.publish(six_months("mentee-8", "mentor-8"))
    await surveys.publish(six_months("mentee-7", "mentor-7"))
    follow_up = await surveys.links_for("mentee-7", expect=3)
    assert len(follow_up) == 2 and await surveys.links_for("mentee-8", expect=3) == [link]
    owed = await surveys.stored("evaluation")
    assert all(not doc.get("owed") for doc in owed)  # every owed invitation was settled


async def test_an_answer_by_link_is_stored_anonymously_once_and_never_again(surveys: Surveys) -> None:
    await surveys.in_evaluation("mentee-2", "mentor-2")
    await surveys.publish(started("mentee-2", "mentor-2"))
    [link] = await surveys.links_for("mentee-2", expect=2)
    token = token_of(link)

    shown = await surveys.http.get(f"/surveys/{token}")
    assert shown.status_code == 200, shown.text
    form = shown.json()
    assert (form["wave"], form["role"], form["version"]) == ("baseline", "mentee", 1)
    want = next(i for i in form["items"] if i["id"] == "want_from_scheme")
    assert "understand-difficulties" not in [o["id"] for o in want["options"]]  # a mentor-only option

    misfit = await surveys.http.post(
        f"/surveys/{token}",
        json={"answers": {"career_more_challenging": True, "want_from_scheme": ["understand-difficulties"]}},
    )
    assert misfit.status_code == 422
    assert (misfit.json()["field"], misfit.json()["rule"]) == ("answers.want_from_scheme", "offered-option")
    assert await surveys.stored("responses") == []  # nothing of a refused response is kept

    answers = {
        "job_title": "Lecturer",
        "ethnicity": "British Bangladeshi",
        "career_more_challenging": {"value": True, "text": "I cannot be what I don't see"},
        "want_from_scheme": {"value": ["career-advice", "other"], "text": "How to navigate my career"},
    }
    recorded = await surveys.http.post(f"/surveys/{token}", json={"answers": answers})
    assert recorded.status_code == 201, recorded.text
    assert recorded.json() == {"recorded": True, "wave": "baseline", "role": "mentee"}

    again = await surveys.http.post(f"/surveys/{token}", json={"answers": answers})
    unknown = await surveys.http.post("/surveys/not-a-token-anyone-was-given", json={"answers": answers})
    assert again.status_code == unknown.status_code == 410
    assert again.json()["detail"] == unknown.json()["detail"]  # a used link looks like one that never existed
    assert (await surveys.http.get(f"/surveys/{token}")).status_code == 410

    [response] = await surveys.stored("responses")
    [invitation] = [i for i in await surveys.stored("invitations") if i["participant_id"] == "mentee-2"]
    kept = {k: v for k, v in response.items() if k not in ("outbox", "outbox_due")}
    assert set(kept) == {
        "_id",
        "programme_id",
        "wave",
        "role",
        "questionnaire_version",
        "submitted_on",
        "answers",
        "sealed_answers",
    }
    # Special category data is encrypted at rest, under the configured key, apart from the other answers.
    assert "ethnicity" not in kept["answers"] and set(kept["sealed_answers"]) == {"ethnicity"}
    assert kept["sealed_answers"]["ethnicity"]["kid"] == "test-1"
    assert kept["submitted_on"] == utcnow().date().isoformat()
    everything = json.dumps(response, default=str)
    for identifying in (
        "mentee-2",
        "mentor-2",
        token,
        invitation["_id"],
        *invitation["token_hashes"],
        "demo-university",
        "Bangladeshi",
    ):
        assert identifying not in everything
    assert invitation["status"] == "answered" and token not in json.dumps(invitation, default=str)
    assert all(token not in json.dumps(t) for t in await surveys.stored("tokens"))

    [completed] = await read_topic(surveys.infra, in_namespace(RESPONSES.name, surveys.namespace), expect=1)
    payload = json.loads(completed.value)["payload"]
    assert payload == {"programme_id": PROGRAMME, "wave": "baseline", "role": "mentee", "questionnaire_version": 1}


async def test_the_follow_up_goes_to_both_with_bounded_reminders_then_the_link_expires(surveys: Surveys) -> None:
    policy = {"valid_for": "PT15S", "reminder_every": "PT1S", "max_reminders": 2}
    assert (
        await surveys.http.put(f"/programmes/{PROGRAMME}/survey-policy", json=policy, headers=surveys.admin)
    ).status_code == 200

    await surveys.in_evaluation("mentee-3", "mentor-3")
    await surveys.publish(six_months("mentee-3", "mentor-3"))
    await eventually(lambda: surveys._at_least(6), timeout=30)  # 2 invitations + 2 reminders each
    first_link, *reminder_links = await surveys.links_for("mentor-3", expect=6)
    await asyncio.sleep(1.5)
    events = await surveys.invitations(expect=7, timeout=2)

    assert sorted(e["event_type"] for e in events) == ["SurveyInvitationIssued"] * 2 + ["SurveyReminderIssued"] * 4
    assert {e["payload"]["wave"] for e in events} == {"follow_up"}
    assert sorted(e["payload"]["reminder"] for e in events if e["event_type"] == "SurveyReminderIssued") == [1, 1, 2, 2]
    assert len({first_link, *reminder_links}) == 3  # each reminder brings a fresh link
    form = await surveys.http.get(f"/surveys/{token_of(reminder_links[-1])}")
    assert form.status_code == 200 and form.json()["role"] == "mentor"
    assert (await surveys.http.get(f"/surveys/{token_of(first_link)}")).status_code == 200  # earlier links still work

    await eventually(lambda: has_status(surveys.http.get(f"/surveys/{token_of(first_link)}"), 410), timeout=25)
    await eventually(lambda: _statuses(surveys, {"expired"}), timeout=10)


async def test_withdrawal_voids_her_open_invitations_and_erasure_leaves_nothing_of_her(surveys: Surveys) -> None:
    await surveys.in_evaluation("mentee-4", "mentor-4", "mentor-5")
    await surveys.publish(started("mentee-4", "mentor-4"))
    [mentee_link] = await surveys.links_for("mentee-4", expect=2)
    [mentor_link] = await surveys.links_for("mentor-4", expect=2)

    await surveys.publish(
        reg.ParticipantWithdrawn(participant_id="mentee-4", programme_id=PROGRAMME, institution_id="demo-university")
    )
    await surveys.publish(
        reg.ParticipantErased(participant_id="mentor-4", programme_id=PROGRAMME, institution_id="northgate")
    )

    await eventually(lambda: has_status(surveys.http.get(f"/surveys/{token_of(mentee_link)}"), 410))
    await eventually(lambda: has_status(surveys.http.get(f"/surveys/{token_of(mentor_link)}"), 410))
    await eventually(lambda: _erased(surveys, "mentor-4"))
    statuses = {i["participant_id"]: i["status"] for i in await surveys.stored("invitations")}
    assert statuses["mentee-4"] == "voided"
    assert await surveys.stored("tokens") != [] and len(await surveys.stored("tokens")) == 1  # only the mentee's

    await surveys.publish(six_months("mentee-4", "mentor-5"))  # she left: never asked again
    await surveys.links_for("mentor-5", expect=3)
    assert await surveys.links_for("mentee-4", expect=3) == [mentee_link]


async def test_the_report_gives_every_figure_and_suppresses_the_small_group(surveys: Surveys) -> None:
    mentees, mentors = ["ma", "mb", "mc", "md"], ["ta", "tb"]
    await surveys.in_evaluation(*mentees, *mentors)
    for mentee, mentor in zip(mentees, mentors * 2, strict=True):
        await surveys.publish(started(mentee, mentor))
    events = await eventually(lambda: surveys._at_least(6))
    link = {e["payload"]["participant_id"]: e["payload"]["link"] for e in events}

    mentee_answers = [
        {
            "career_more_challenging": True,
            "want_from_scheme": ["career-advice", "personal-development"],
            "ethnicity": "Black British",
        },
        {
            "career_more_challenging": {"value": False, "text": "Not yet"},
            "want_from_scheme": ["career-advice"],
            "ethnicity": "British Indian",
        },
        {"career_more_challenging": True, "age_band": "30-39", "ethnicity": "Black British"},
    ]
    for who, answers in zip(mentees, mentee_answers, strict=False):  # "md" does not answer
        posted = await surveys.http.post(f"/surveys/{token_of(link[who])}", json={"answers": answers})
        assert posted.status_code == 201, posted.text
    for who in mentors:
        posted = await surveys.http.post(
            f"/surveys/{token_of(link[who])}", json={"answers": {"career_more_challenging": True}}
        )
        assert posted.status_code == 201, posted.text

    assert (await surveys.http.get(f"/reports/{PROGRAMME}")).status_code == 401
    report = (await surveys.http.get(f"/reports/{PROGRAMME}", headers=surveys.admin)).json()
    baseline = report["waves"]["baseline"]
    assert report["min_cell_size"] == 3
    assert baseline["roles"] == {
        "mentee": {"invited": 4, "responses": 3, "response_rate": 75.0, "suppressed": False},
        "mentor": {"invited": 2, "responses": 2, "response_rate": 100.0, "suppressed": True},
    }
    items = {i["id"]: i["roles"] for i in baseline["items"]}
    challenging = items["career_more_challenging"]["mentee"]
    assert challenging == {
        "answered": 3,
        "yes": {"count": 2, "percent": 66.7, "texts": []},
        "no": {"count": 1, "percent": 33.3, "texts": ["Not yet"]},
    }
    assert items["career_more_challenging"]["mentor"] == {"suppressed": True}
    want = {o["id"]: (o["count"], o["percent"]) for o in items["want_from_scheme"]["mentee"]["options"]}
    assert want["career-advice"] == (2, 100.0) and want["personal-development"] == (1, 50.0)
    assert want["professional-development"] == (0, 0.0)
    assert items["want_from_scheme"]["mentee"]["answered"] == 2
    age = {o["id"]: o["count"] for o in items["age_band"]["mentee"]["options"]}
    assert age == {"under-30": 0, "30-39": 1, "40-49": 0, "50-59": 0, "60-plus": 0}
    assert items["job_title"]["mentee"] == {"answered": 0, "texts": []}
    # Decrypted for the report, and each value listed once so repeats cannot be counted.
    assert items["ethnicity"]["mentee"] == {"answered": 3, "texts": ["Black British", "British Indian"]}
    assert report["waves"]["follow_up"]["roles"]["mentee"] == {
        "invited": 0,
        "responses": 0,
        "response_rate": None,
        "suppressed": True,
    }

    exported = await surveys.http.get(f"/reports/{PROGRAMME}/csv", headers=surveys.admin)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert "baseline,mentee,career_more_challenging" in exported.text and "Not yet" not in exported.text


async def test_coordinators_revise_a_questionnaire_as_a_new_version(surveys: Surveys) -> None:
    path = f"/questionnaires/{PROGRAMME}/baseline"
    current = (await surveys.http.get(path, headers=surveys.admin)).json()
    draft = {k: current[k] for k in ("title", "introduction", "items")}
    draft["items"] = [*draft["items"], {"id": "heard_from", "kind": "free_text", "text": "Where did you hear of us?"}]

    revised = await surveys.http.post(path, json=draft, headers=surveys.admin)
    refused = await surveys.http.post(path, json={"title": "x", "items": []}, headers=surveys.admin)
    portal = await surveys.http.post(path, json=draft, headers=bearer(surveys.platform.portal_token))

    assert revised.status_code == 201 and revised.json()["version"] == 2
    assert refused.status_code == 422 and portal.status_code == 403
    versions = (await surveys.http.get(f"/questionnaires/{PROGRAMME}", headers=surveys.admin)).json()
    assert [(v["wave"], v["version"]) for v in versions] == [("baseline", 1), ("baseline", 2), ("follow_up", 1)]

    await surveys.in_evaluation("mentee-6", "mentor-6")
    await surveys.publish(started("mentee-6", "mentor-6"))
    [link] = await surveys.links_for("mentee-6", expect=2)
    form = (await surveys.http.get(f"/surveys/{token_of(link)}")).json()
    assert form["version"] == 2 and form["items"][-1]["id"] == "heard_from"


async def _statuses(surveys: Surveys, expected: set[str]) -> bool:
    return {i["status"] for i in await surveys.stored("invitations")} == expected


async def _erased(surveys: Surveys, participant_id: str) -> bool:
    invitations = await surveys.stored("invitations")
    return bool(invitations) and all(i["participant_id"] != participant_id for i in invitations)
