"""Questionnaires as data: the shipped AIMMS definitions, and how answers are checked against them."""

import re
from typing import Any

import pytest
from pydantic import ValidationError

from aimms_shared.errors import RuleBroken
from aimms_surveys.domain.questionnaires import (
    AnswersRejected,
    Questionnaire,
    QuestionnaireDraft,
    QuestionnaireTemplate,
    validate_answers,
)
from aimms_surveys.use_cases import shipped_questionnaires, shipped_templates


def shipped(wave: str) -> Questionnaire:
    [questionnaire] = [q for q in shipped_questionnaires() if q.wave == wave]
    return questionnaire


def shipped_template(wave: str) -> QuestionnaireTemplate:
    """The circles programmes' questionnaire for a wave."""
    [template] = [t for t in shipped_templates() if (t.kind, t.wave) == ("circles", wave)]
    return template


def refused(questionnaire: Questionnaire, role: str, answers: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(AnswersRejected) as caught:
        validate_answers(questionnaire, role, answers)  # type: ignore[arg-type]
    return [(e["field"], e["rule"]) for e in caught.value.extra["errors"]]


EVERY_KIND = Questionnaire.model_validate(
    {
        "programme_id": "p",
        "wave": "follow_up",
        "version": 1,
        "title": "Every kind",
        "items": [
            {"id": "colour", "kind": "single_choice", "text": "Colour", "required": True,
             "options": [{"id": "red", "label": "Red"}, {"id": "blue", "label": "Blue"}]},
            {"id": "gains", "kind": "multiple_choice", "text": "Gains", "comment": "Other (please specify)",
             "options": [{"id": "a", "label": "A"}, {"id": "b", "label": "B", "roles": ["mentor"]},
                         {"id": "c", "label": "C", "roles": ["mentee"]},
                         {"id": "other", "label": "Other", "other": True}]},
            {"id": "fair", "kind": "yes_no", "text": "Fair?", "comment": "Why?"},
            {"id": "agree", "kind": "agreement", "text": "Agree?"},
            {"id": "stars", "kind": "stars", "text": "Stars"},
            {"id": "useful", "kind": "scale_10", "text": "Useful?"},
            {"id": "sessions", "kind": "number", "text": "Sessions", "min": 0, "max": 20},
            {"id": "notes", "kind": "free_text", "text": "Notes"},
            {"id": "mentors_only", "kind": "yes_no", "text": "Mentoring skills?", "roles": ["mentor"]},
        ],
    }
)  # fmt: skip


def test_the_shipped_baseline_asks_what_the_paper_reports_with_role_only_options() -> None:
    baseline = shipped("baseline")
    assert (baseline.programme_id, baseline.version) == ("aimms-mentoring", 1)
    assert [i.id for i in baseline.items] == [
        "job_title", "ethnicity", "age_band", "career_more_challenging", "want_from_scheme",
    ]  # fmt: skip
    assert not any(i.required for i in baseline.items)  # descriptive items are optional; none is forced
    want = baseline.items[-1]
    mentee_only = {o.label for o in want.options if o.roles == ("mentee",)}
    mentor_only = {o.label for o in want.options if o.roles == ("mentor",)}
    assert mentee_only == {
        "To receive practical advice about how to progress my career",
        "General support",
    }
    assert mentor_only == {
        "To increase my understanding about the difficulties facing women from ethnic minorities in academic medicine"
    }
    assert want.options[0].label == "Professional development, e.g. research skills, grant applications"
    assert baseline.items[1].sensitive  # ethnicity


def test_the_shipped_follow_up_has_every_table_3_option_for_the_right_roles() -> None:
    follow_up = shipped("follow_up")
    by_id = {i.id: i for i in follow_up.items}
    assert by_id["scheme_rating"].kind == "stars"
    assert [by_id[i].kind for i in ("good_relationship", "scheme_support_helpful", "supported_by_others")] == [
        "agreement"
    ] * 3
    assert by_id["career_impact_confidence"].kind == by_id["similar_characteristics"].kind == "scale_10"
    personal = by_id["personal_development"]
    assert len(personal.options) == 16
    assert {o.label for o in personal.options_for("mentee")} ^ {o.label for o in personal.options_for("mentor")} == {
        "Listening skills",
        "Mentoring skills",
        "Developing independence",
    }
    professional = by_id["professional_development"]
    assert len(professional.options) == 11
    assert [o.label for o in professional.options if o.roles == ("mentee",)] == [
        "Increased productivity",
        "Performance at job interviews",
    ]


def test_the_circle_questionnaires_speak_of_the_circle_to_its_peers_and_facilitator() -> None:
    baseline, follow_up = shipped_template("baseline"), shipped_template("follow_up")
    assert [t.roles for t in (baseline, follow_up)] == [("peer", "facilitator")] * 2
    words = " ".join(
        text for t in (baseline, follow_up) for i in t.items for text in (i.text, *(o.label for o in i.options))
    )
    assert not re.search(r"\bment(ee|or)s?\b", words, re.IGNORECASE) and "circle" in words
    by_id = {i.id: i for i in follow_up.items}
    assert by_id["circle_satisfaction"].kind == "stars"
    assert (by_id["meetings_attended"].kind, by_id["meeting_frequency"].kind) == ("number", "single_choice")
    assert (by_id["would_recommend"].kind, by_id["would_recommend"].scale()) == ("number", (0, 10))
    assert (by_id["facilitator_helpful"].roles, by_id["peers_supported_each_other"].roles) == (
        ("peer",),
        ("facilitator",),
    )
    # An 'Other' wherever the pairs' questionnaires have one, and in what helped the circle.
    with_other = {i.id for t in (baseline, follow_up) for i in t.items if any(o.other for o in i.options)}
    assert with_other == {"want_from_circle", "what_helped", "personal_development", "professional_development"}
    personal = by_id["personal_development"]
    assert {o.label for o in personal.options_for("facilitator")} - {o.label for o in personal.options_for("peer")} == {
        "Listening skills",
        "Facilitation skills",
    }
    assert by_id["ethnicity"].sensitive


def test_a_kinds_template_becomes_version_1_of_a_programmes_questionnaire() -> None:
    questionnaire = shipped_template("follow_up").for_programme("peer-circles")
    assert (questionnaire.programme_id, questionnaire.wave, questionnaire.version) == ("peer-circles", "follow_up", 1)
    assert questionnaire.roles == ("peer", "facilitator")


def test_a_peer_and_a_facilitator_answer_their_own_views_of_the_circle_follow_up() -> None:
    follow_up = shipped_template("follow_up").for_programme("peer-circles")
    peer = {i["id"] for i in follow_up.view_for("peer")["items"]}
    facilitator = {i["id"] for i in follow_up.view_for("facilitator")["items"]}
    assert peer ^ facilitator == {"facilitator_helpful", "peers_supported_each_other"}

    answers = validate_answers(
        follow_up,
        "peer",
        {
            "circle_satisfaction": 4,
            "meeting_frequency": "monthly",
            "facilitator_helpful": 5,
            "what_helped": {"value": ["facilitator", "other"], "text": "Meeting in person once"},
            "would_recommend": 0,
        },
    )
    assert answers["what_helped"] == {"value": ["facilitator", "other"], "text": "Meeting in person once"}
    assert refused(follow_up, "facilitator", {"facilitator_helpful": 5, "would_recommend": 11}) == [
        ("answers.facilitator_helpful", "asked-of-role"),
        ("answers.would_recommend", "in-range"),
    ]


def test_a_revision_changes_who_answers_a_wave_only_by_naming_them() -> None:
    circle = shipped_template("baseline").for_programme("peer-circles")
    general = tuple(i for i in circle.items if i.roles is None and all(o.roles is None for o in i.options))

    with pytest.raises(RuleBroken) as caught:  # as a coordinator might post it: mentee and mentor by default
        QuestionnaireDraft(title="Ours", items=general).check_revises(circle)
    assert (caught.value.extra["field"], caught.value.status) == ("roles", 422)
    QuestionnaireDraft(title="Ours", roles=("peer", "facilitator"), items=circle.items).check_revises(circle)
    QuestionnaireDraft(title="Peers only", roles=("peer",), items=general).check_revises(circle)
    QuestionnaireDraft(title="Ours", items=general).check_revises(shipped("baseline"))  # a pairs wave, as before


def test_a_role_that_does_not_answer_a_questionnaire_is_asked_nothing() -> None:
    pairs = shipped("baseline")
    assert pairs.items_for("peer") == () and pairs.view_for("peer")["items"] == []
    assert refused(pairs, "peer", {"job_title": "Lecturer"}) == [("answers.job_title", "asked-of-role")]


def test_a_complete_valid_response_is_normalised() -> None:
    answers = validate_answers(
        EVERY_KIND,
        "mentee",
        {
            "colour": " blue ",
            "gains": ["other", "a", "a"],
            "fair": {"value": False, "text": "  because  "},
            "agree": 4,
            "stars": 5,
            "useful": 10,
            "sessions": 0,
            "notes": "Helpful.",
        },
    )
    assert answers == {
        "colour": {"value": "blue"},
        "gains": {"value": ["a", "other"]},
        "fair": {"value": False, "text": "because"},
        "agree": {"value": 4},
        "stars": {"value": 5},
        "useful": {"value": 10},
        "sessions": {"value": 0},
        "notes": {"value": "Helpful."},
    }


def test_optional_items_may_be_left_out_or_null_and_are_then_not_stored() -> None:
    assert validate_answers(EVERY_KIND, "mentor", {"colour": "red", "fair": None, "notes": "  "}) == {
        "colour": {"value": "red"}
    }


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({}, [("answers.colour", "required")]),
        ({"colour": "green"}, [("answers.colour", "offered-option")]),
        ({"colour": ["red"]}, [("answers.colour", "single-choice")]),
        ({"colour": "red", "gains": "a"}, [("answers.gains", "multiple-choice")]),
        ({"colour": "red", "gains": ["b"]}, [("answers.gains", "offered-option")]),  # a mentor-only option
        ({"colour": "red", "gains": {"value": ["a"], "text": "x"}}, [("answers.gains", "other-text")]),
        ({"colour": "red", "fair": "yes"}, [("answers.fair", "yes-no")]),
        ({"colour": "red", "agree": 6}, [("answers.agree", "in-range")]),
        ({"colour": "red", "agree": 0}, [("answers.agree", "in-range")]),
        ({"colour": "red", "stars": 4.5}, [("answers.stars", "in-range")]),
        ({"colour": "red", "stars": True}, [("answers.stars", "in-range")]),
        ({"colour": "red", "useful": 11}, [("answers.useful", "in-range")]),
        ({"colour": "red", "sessions": -1}, [("answers.sessions", "in-range")]),
        ({"colour": "red", "sessions": 21}, [("answers.sessions", "in-range")]),
        ({"colour": "red", "notes": 3}, [("answers.notes", "free-text")]),
        ({"colour": "red", "notes": "x" * 4001}, [("answers.notes", "free-text")]),
        ({"colour": "red", "agree": {"value": 3, "text": "no comment allowed"}}, [("answers.agree", "no-comment")]),
        ({"colour": "red", "fair": {"text": "text without an answer"}}, [("answers.fair", "text-with-answer")]),
        ({"colour": "red", "fair": {"value": True, "note": "x"}}, [("answers.fair", "answer-shape")]),
        ({"colour": "red", "mentors_only": True}, [("answers.mentors_only", "asked-of-role")]),
        ({"colour": "red", "shoe_size": 5}, [("answers.shoe_size", "known-item")]),
    ],
)
def test_an_answer_that_does_not_fit_its_item_is_refused_naming_the_item(
    answers: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert refused(EVERY_KIND, "mentee", answers) == expected


def test_every_misfit_is_reported_at_once_and_the_first_is_the_problem_field() -> None:
    with pytest.raises(AnswersRejected) as caught:
        validate_answers(EVERY_KIND, "mentee", {"stars": 9, "useful": 0})
    problem = caught.value
    assert (problem.status, problem.extra["field"], problem.extra["rule"]) == (422, "answers.colour", "required")
    assert len(problem.extra["errors"]) == 3


def test_the_other_role_may_answer_its_own_items_and_options() -> None:
    answers = validate_answers(EVERY_KIND, "mentor", {"colour": "red", "gains": ["b"], "mentors_only": True})
    assert answers["gains"] == {"value": ["b"]} and answers["mentors_only"] == {"value": True}


def test_a_role_sees_only_its_items_and_options() -> None:
    view = EVERY_KIND.view_for("mentee")
    assert "mentors_only" not in [i["id"] for i in view["items"]]
    gains = next(i for i in view["items"] if i["id"] == "gains")
    assert [o["id"] for o in gains["options"]] == ["a", "c", "other"]
    agree = next(i for i in view["items"] if i["id"] == "agree")
    assert (agree["min"], agree["max"], agree["labels"][0]) == (1, 5, "Strongly disagree")


@pytest.mark.parametrize(
    "broken",
    [
        {"items": [{"id": "q", "kind": "single_choice", "text": "Q", "options": [{"id": "a", "label": "A"}]}]},
        {"items": [{"id": "q", "kind": "stars", "text": "Q", "options": [{"id": "a", "label": "A"}]}]},
        {"items": [{"id": "q", "kind": "stars", "text": "Q", "min": 1}]},
        {"items": [{"id": "q", "kind": "free_text", "text": "Q"}, {"id": "q", "kind": "stars", "text": "R"}]},
        {"items": [{"id": "Bad Id", "kind": "free_text", "text": "Q"}]},
        {"items": []},
        {
            "items": [
                {
                    "id": "q",
                    "kind": "multiple_choice",
                    "text": "Q",
                    "options": [{"id": "a", "label": "A"}, {"id": "b", "label": "B", "roles": ["mentor"]}],
                }
            ]
        },
        # An item for a role that does not answer the questionnaire would never be asked.
        {"roles": ["peer", "facilitator"], "items": [{"id": "q", "kind": "yes_no", "text": "Q", "roles": ["mentor"]}]},
        {
            "roles": ["peer", "facilitator"],
            "items": [
                {
                    "id": "q",
                    "kind": "single_choice",
                    "text": "Q",
                    "options": [{"id": "a", "label": "A"}, {"id": "b", "label": "B", "roles": ["mentee"]}],
                }
            ],
        },
        {"roles": ["peer", "peer"], "items": [{"id": "q", "kind": "yes_no", "text": "Q"}]},
        {"roles": [], "items": [{"id": "q", "kind": "yes_no", "text": "Q"}]},
    ],
)
def test_a_malformed_definition_is_refused(broken: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Questionnaire.model_validate({"programme_id": "p", "wave": "baseline", "version": 1, "title": "T"} | broken)
