"""Surveys' invitation rules over an in-memory store: only those in the evaluation, and nothing owed is lost."""

from datetime import timedelta

from aimms_surveys.domain.invitations import Invitee
from aimms_surveys.use_cases import Surveys, shipped_questionnaires, shipped_templates
from tests.fakes import FakeSurveysStore

PAIR = [Invitee("mentee-1", "mentee", "north"), Invitee("mentor-1", "mentor", "south")]


def surveys() -> tuple[FakeSurveysStore, Surveys]:
    store = FakeSurveysStore()
    for questionnaire in shipped_questionnaires():
        store.questionnaires.setdefault((questionnaire.programme_id, questionnaire.wave), []).append(questionnaire)
    service = Surveys(
        store,  # type: ignore[arg-type]
        public_url="https://aimms.example",
        lease=timedelta(seconds=30),
        templates=shipped_templates(),
    )
    return store, service


async def test_only_participants_in_the_evaluation_are_invited() -> None:
    store, service = surveys()
    await service.evaluation_changed("mentee-1", True)
    await service.evaluation_changed("mentor-1", False)

    await service.mentoring_reached("aimms-mentoring", PAIR, trigger="mentoring_started")

    assert store.invited() == [("mentee-1", "baseline", "mentee", "open")]


async def test_an_invitation_owed_before_her_status_arrives_is_issued_once_it_does() -> None:
    store, service = surveys()
    await service.mentoring_reached("aimms-mentoring", PAIR, trigger="mentoring_started")
    await service.mentoring_reached("aimms-mentoring", PAIR, trigger="follow_up")
    assert store.invited() == []

    await service.evaluation_changed("mentee-1", True)
    await service.evaluation_changed("mentee-1", True)  # a redelivery issues nothing twice
    await service.evaluation_changed("mentor-1", False)

    assert store.invited() == [
        ("mentee-1", "baseline", "mentee", "open"),
        ("mentee-1", "follow_up", "mentee", "open"),
    ]
    assert store.evaluation["mentee-1"]["owed"] == [] and store.evaluation["mentor-1"]["owed"] == []


async def test_leaving_the_evaluation_voids_her_open_invitations_and_she_is_not_asked_again() -> None:
    store, service = surveys()
    await service.evaluation_changed("mentee-1", True)
    await service.mentoring_reached("aimms-mentoring", PAIR, trigger="mentoring_started")

    await service.evaluation_changed("mentee-1", False)
    await service.mentoring_reached("aimms-mentoring", PAIR, trigger="follow_up")

    assert store.invited() == [("mentee-1", "baseline", "mentee", "voided")]
