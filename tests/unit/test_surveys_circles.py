"""Circles are evaluated as pairs are: each member asked in her role, through surveys' own subscriptions, over an
in-memory store; a circles programme gets the circle questionnaires by its kind."""

import json
from datetime import UTC, datetime, timedelta

from aimms_shared.contracts import matching as m
from aimms_shared.contracts import registration as reg
from aimms_shared.events import Event, wrap
from aimms_surveys import handlers
from aimms_surveys.domain.invitations import SurveyPolicy
from aimms_surveys.use_cases import Surveys
from tests.factories import programme_opened
from tests.fakes import FakeSurveysStore
from tests.unit.test_surveys_questionnaires import shipped_template
from tests.unit.test_surveys_use_cases import surveys

CIRCLES = "peer-circles"
FORMED_AT = datetime(2025, 1, 6, 9, tzinfo=UTC)
# Four peers from three schools and their facilitator, as matching announces them.
MEMBERS = [
    m.CircleMember(participant_id="peer-1", institution_id="north", role="peer", shared_interests=["surgery"]),
    m.CircleMember(participant_id="peer-2", institution_id="south", role="peer", shared_interests=["surgery"]),
    m.CircleMember(participant_id="peer-3", institution_id="east", role="peer", shared_interests=["genomics"]),
    m.CircleMember(participant_id="peer-4", institution_id="north", role="peer", shared_interests=["genomics"]),
    m.CircleMember(participant_id="facilitator-1", institution_id="west", role="facilitator", shared_interests=[]),
]
EVERYONE = [member.participant_id for member in MEMBERS]


def circle_formed(members: list[m.CircleMember] = MEMBERS) -> m.CircleFormed:
    return m.CircleFormed(
        circle_id="circle-1",
        programme_id=CIRCLES,
        members=members,
        shared_interests=["genomics", "surgery"],
        stages=["Lecturer", "Senior lecturer"],
        formed_at=FORMED_AT,
        follow_up_at=FORMED_AT + timedelta(days=182),
    )


def follow_up_due(members: list[m.CircleMember]) -> m.CircleFollowUpDue:
    return m.CircleFollowUpDue(
        circle_id="circle-1",
        programme_id=CIRCLES,
        members=members,
        formed_at=FORMED_AT,
        follow_up_at=FORMED_AT + timedelta(days=182),
    )


async def deliver(service: Surveys, event: Event) -> None:
    """Hand the event to the handler surveys subscribes with, in a fresh envelope (a new event id each time)."""
    route = handlers.subscriptions(service).route(event.topic.name, event.event_type)
    assert route is not None, f"surveys does not handle {event.event_type}"
    await route.handler(event, wrap(event, producer=event.topic.name.split(".")[0]))


def circles_opened() -> reg.ProgrammeOpened:
    return programme_opened(programme_id=CIRCLES, kind="circles", roles_offered=["peer", "facilitator"])


async def circles_programme(*, in_evaluation: list[str]) -> tuple[FakeSurveysStore, Surveys]:
    """A circles programme as registration opened it, and who consented to the evaluation (the rest did not)."""
    store, service = surveys()
    await deliver(service, circles_opened())
    for member in MEMBERS:
        await service.evaluation_changed(member.participant_id, member.participant_id in in_evaluation)
    return store, service


async def test_a_formed_circle_invites_each_member_in_the_evaluation_to_the_baseline_in_her_role() -> None:
    store, service = await circles_programme(in_evaluation=["peer-1", "peer-2", "peer-4", "facilitator-1"])

    await deliver(service, circle_formed())

    assert store.invited() == [
        ("facilitator-1", "baseline", "facilitator", "open"),
        ("peer-1", "baseline", "peer", "open"),
        ("peer-2", "baseline", "peer", "open"),
        ("peer-4", "baseline", "peer", "open"),
    ]  # peer-3 did not consent to the evaluation: she is not asked
    issued = [json.loads(entry["value"])["payload"] for entry in store.events]  # SurveyInvitationIssued
    assert {(e["participant_id"], e["role"]) for e in issued} == {(who, role) for who, _, role, _ in store.invited()}
    assert {i.institution_id for i in store.invitations.values()} == {"north", "south", "west"}


async def test_a_member_whose_consent_is_not_yet_known_is_asked_once_it_arrives() -> None:
    store, service = await circles_programme(in_evaluation=["peer-1"])
    newcomer = m.CircleMember(participant_id="peer-5", institution_id="east", role="peer", shared_interests=[])

    await deliver(service, circle_formed([MEMBERS[0], newcomer]))
    assert store.invited() == [("peer-1", "baseline", "peer", "open")]

    await service.evaluation_changed("peer-5", True)
    assert ("peer-5", "baseline", "peer", "open") in store.invited()


async def test_the_follow_up_asks_only_the_members_still_in_the_circle() -> None:
    store, service = await circles_programme(in_evaluation=EVERYONE)
    await deliver(service, circle_formed())

    still_in_it = [member for member in MEMBERS if member.participant_id != "peer-2"]  # peer-2 left the circle
    await deliver(service, follow_up_due(still_in_it))

    followed_up = [(who, role) for who, wave, role, _ in store.invited() if wave == "follow_up"]
    assert followed_up == [("facilitator-1", "facilitator"), ("peer-1", "peer"), ("peer-3", "peer"), ("peer-4", "peer")]


async def test_a_redelivered_circle_event_invites_nobody_twice() -> None:
    store, service = await circles_programme(in_evaluation=EVERYONE)

    for _ in range(2):  # the same news twice, each time under a new event id
        await deliver(service, circle_formed())
        await deliver(service, follow_up_due(MEMBERS))

    assert len(store.invited()) == len(store.events) == 2 * len(MEMBERS)


async def test_the_programmes_survey_policy_times_a_circles_questionnaires_as_it_times_a_pairs() -> None:
    store, service = await circles_programme(in_evaluation=EVERYONE)
    store.policies[CIRCLES] = SurveyPolicy(baseline_on="registration", follow_up=False)

    await deliver(service, circle_formed())
    await deliver(service, follow_up_due(MEMBERS))

    assert store.invited() == []


async def test_a_circles_programme_gets_the_circle_questionnaires_by_its_kind() -> None:
    store, service = await circles_programme(in_evaluation=[])

    baseline, follow_up = (store.questionnaires[(CIRCLES, wave)] for wave in ("baseline", "follow_up"))
    assert [(q.version, q.roles) for q in baseline + follow_up] == [(1, ("peer", "facilitator"))] * 2
    assert follow_up[0].items == shipped_template("follow_up").items

    await deliver(service, programme_opened(programme_id="reverse-mentoring"))  # a pairs programme
    assert not [key for key in store.questionnaires if key[0] == "reverse-mentoring"]  # adopts its own, as today


async def test_a_coordinators_revision_is_kept_when_the_programme_is_announced_again() -> None:
    store, service = await circles_programme(in_evaluation=[])
    revised = shipped_template("follow_up").for_programme(CIRCLES).model_copy(update={"version": 2, "title": "Ours"})
    store.questionnaires[(CIRCLES, "follow_up")].append(revised)

    await deliver(service, reg.ProgrammeUpdated(**circles_opened().model_dump()))

    assert [q.title for q in store.questionnaires[(CIRCLES, "follow_up")]] == [
        "Mentoring circle: follow-up questionnaire",
        "Ours",
    ]


async def test_a_circle_in_a_programme_whose_questionnaire_asks_no_peers_invites_nobody() -> None:
    store, service = surveys()  # aimms-mentoring's questionnaires are answered by mentees and mentors
    for member in EVERYONE:
        await service.evaluation_changed(member, True)

    await deliver(service, circle_formed().model_copy(update={"programme_id": "aimms-mentoring"}))

    assert store.invited() == []


async def test_a_circle_read_before_its_programme_adopts_the_circle_questionnaires_itself() -> None:
    store, service = surveys()  # ProgrammeOpened not read yet: it is on another topic
    for member in EVERYONE:
        await service.evaluation_changed(member, True)

    await deliver(service, circle_formed())

    assert len(store.invited()) == len(MEMBERS)
    assert store.questionnaires[(CIRCLES, "baseline")][0].roles == ("peer", "facilitator")
