"""The portal's forms against surveys' own questionnaires and validator: what a page sends is what the API takes."""

import pytest

from aimms_portal.domain.forms import answers_from, form, problems_from
from aimms_surveys.domain.questionnaires import AnswersRejected, validate_answers
from aimms_surveys.use_cases import shipped_questionnaires

SHIPPED = {(q.wave): q for q in shipped_questionnaires()}


@pytest.mark.parametrize("wave", ["baseline", "follow_up"])
@pytest.mark.parametrize("role", ["mentee", "mentor"])
def test_every_item_becomes_a_labelled_control(wave: str, role: str) -> None:
    questionnaire = SHIPPED[wave]
    page = form(questionnaire.view_for(role))
    assert [f.id for f in page.fields] == [i.id for i in questionnaire.items_for(role)]
    for field in page.fields:
        assert field.text and field.control
        if field.grouped:
            assert len(field.choices) >= 2 and all(c.label for c in field.choices)
    assert page.problems == ()


def test_a_filled_follow_up_form_is_accepted_by_surveys_as_sent() -> None:
    questionnaire = SHIPPED["follow_up"]
    view = questionnaire.view_for("mentee")
    submitted = {
        "job_title": ["Clinical Lecturer"],
        "age_band": ["30-39"],
        "scheme_rating": ["4"],
        "sessions_held": [" 6 "],
        "still_mentoring": ["yes"],
        "good_relationship": ["5"],
        "matched_expectations": ["no"],
        "matched_expectations.text": ["  We met less than planned. "],
        "personal_development": ["leadership", "other"],
        "personal_development.text": ["Grant writing"],
        "career_impact_confidence": ["8"],
        "improvements": [""],  # left blank: left out
    }
    answers = answers_from(view, submitted)
    assert answers["scheme_rating"] == 4 and answers["sessions_held"] == 6 and answers["still_mentoring"] is True
    assert answers["matched_expectations"] == {"value": False, "text": "We met less than planned."}
    assert "improvements" not in answers
    stored = validate_answers(questionnaire, "mentee", answers)
    assert stored["personal_development"] == {"value": ["leadership", "other"], "text": "Grant writing"}


def test_a_refused_form_comes_back_as_filled_with_each_problem_beside_its_item() -> None:
    questionnaire = SHIPPED["baseline"]
    view = questionnaire.view_for("mentee")
    submitted = {"want_from_scheme": ["career-advice"], "want_from_scheme.text": ["Sponsorship"], "age_band": ["30-39"]}
    with pytest.raises(AnswersRejected) as refused:
        validate_answers(questionnaire, "mentee", answers_from(view, submitted))
    page = form(view, submitted, problems_from(view, refused.value.extra["errors"]))
    assert [item_id for item_id, _ in page.problems] == ["want_from_scheme"]
    wanted = next(f for f in page.fields if f.id == "want_from_scheme")
    assert wanted.problem == "You wrote a few words for “Other”: tick “Other” as well, or clear the text"
    assert wanted.text_value == "Sponsorship"
    assert [c.value for c in wanted.choices if c.checked] == ["career-advice"]
    assert next(f for f in page.fields if f.id == "age_band").problem is None


def test_what_cannot_be_read_goes_to_surveys_as_typed_so_it_words_the_problem() -> None:
    questionnaire = SHIPPED["follow_up"]
    view = questionnaire.view_for("mentor")
    answers = answers_from(view, {"sessions_held": ["six"]})
    assert answers == {"sessions_held": "six"}
    with pytest.raises(AnswersRejected) as refused:
        validate_answers(questionnaire, "mentor", answers)
    assert problems_from(view, refused.value.extra["errors"]) == {"sessions_held": "Enter a whole number from 0 to 100"}
