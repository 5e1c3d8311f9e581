"""Sponsorship and allyship as a pairs programme's giving role: one kind per programme, its own profile
questions, and a least seniority gap that choices, rounds and coordinators' pairs all keep."""

from dataclasses import replace

import pytest

from aimms_matching.domain import rules
from aimms_matching.domain.rules import ProgrammeRules
from aimms_registration.domain import participants, programmes
from aimms_registration.domain.participants import Registration
from aimms_shared.contracts.registration import MatchingPolicy, ProfileQuestion
from aimms_shared.errors import RuleBroken
from tests.factories import aimms_programme, matching_member
from tests.unit.test_registration_domain import KEY, NOW, PROFILE, REGISTRATION, SCHOOL

OPENS = ProfileQuestion(question_id="opens", text="What can you open doors to?", roles=["sponsor"], required=True)
SPONSORSHIP = programmes.define(
    replace(
        aimms_programme(), programme_id="sponsorship", roles_offered=("sponsor", "mentee"), profile_questions=(OPENS,)
    )
)


def sponsor(answers: dict[str, str]) -> Registration:
    profile = replace(PROFILE, answers=answers)
    return replace(REGISTRATION, programme_id="sponsorship", role="sponsor", profile=profile)


def test_a_pairs_programme_gives_one_kind_of_support_and_asks_questions_only_of_roles_it_offers() -> None:
    assert SPONSORSHIP.giver == "sponsor" and aimms_programme().giver == "mentor"
    for change, rule in (
        ({"roles_offered": ("sponsor", "ally", "mentee")}, "one-giving-role"),
        ({"profile_questions": (OPENS, OPENS)}, "distinct-ids"),
        ({"roles_offered": ("ally", "mentee")}, "roles-offered"),  # the question is a sponsor's
    ):
        with pytest.raises(RuleBroken) as refused:
            programmes.define(replace(SPONSORSHIP, **change))
        assert refused.value.extra["rule"] == rule


def test_a_sponsor_answers_the_programme_question_her_text_record_carries_and_both_is_sponsor_and_mentee() -> None:
    def register(registration: Registration) -> tuple:
        return participants.register(
            registration, SCHOOL, SPONSORSHIP, participant_id="p-1", now=NOW, background_key=KEY
        )

    for answers, rule in (({}, "required-answer"), ({"opens": "x", "other": "y"}, "question-asked")):
        with pytest.raises(RuleBroken) as refused:
            register(sponsor(answers))
        assert refused.value.extra["rule"] == rule
    participant, events = register(sponsor({"opens": " The promotions panel "}))
    assert participant.roles == ("sponsor",) and participant.is_mentor
    assert participant.profile.answers == {"opens": "The promotions panel"}
    assert participant.profile.mentor_capacity == SPONSORSHIP.default_mentor_capacity
    assert events[2].answers == {"opens": "The promotions panel"}  # with her profile's other free text
    both, _ = register(replace(sponsor({"opens": "A network"}), role="both"))
    assert both.roles == ("sponsor", "mentee")


def test_the_least_seniority_gap_rules_out_choices_round_pairs_and_pairs_by_hand() -> None:
    scale = ("Postdoc", "Lecturer", "Senior lecturer", "Professor")
    programme = ProgrammeRules(
        "aimms",
        scale,
        True,
        1,
        3,
        "P6M",
        "P6M",
        MatchingPolicy(min_seniority_gap=2),
        roles_offered=("sponsor", "mentee"),
    )
    her = matching_member(participant_id="e", roles=("mentee",), seniority="Lecturer", institution_id="north")
    far, near = (
        matching_member(
            participant_id=pid, roles=("sponsor",), seniority=level, mentor_capacity=1, profile_published=True
        )
        for pid, level in (("far", "Professor"), ("near", "Senior lecturer"))
    )
    assert programme.giver == "sponsor" and far.is_published_mentor
    assert rules.check_choices(her, ["far"], {"far": far, "near": near}, programme) == ("far",)
    with pytest.raises(RuleBroken) as refused:
        rules.check_choices(her, ["near"], {"far": far, "near": near}, programme)
    assert refused.value.extra["rule"] == "seniority-gap"
    assert rules.declared_conflicts(programme, [her], [far, near]) == {("e", "near")}
    with pytest.raises(RuleBroken):
        rules.manual_proposal(programme, her, near, (), set())
    assert rules.manual_proposal(programme, her, far, (), set()).mentor_id == "far"
    assert rules.declared_conflicts(replace(programme, matching=MatchingPolicy()), [her], [far, near]) == set()
