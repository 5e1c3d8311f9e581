"""The evaluation's tables, computed from anonymous responses, with small groups suppressed."""

import csv
import io
from typing import Any

from aimms_surveys.domain.reports import Response, programme_report, report_csv
from aimms_surveys.use_cases import shipped_questionnaires
from tests.unit.test_surveys_questionnaires import shipped_template

QUESTIONNAIRES = {q.wave: [q] for q in shipped_questionnaires()}


def baseline(role: str, **answers: Any) -> Response:
    return Response(
        "baseline", role, 1, {k: {"value": v} if not isinstance(v, dict) else v for k, v in answers.items()}
    )  # type: ignore[arg-type]


def follow_up(role: str, **answers: Any) -> Response:
    return Response("follow_up", role, 1, {k: {"value": v} for k, v in answers.items()})  # type: ignore[arg-type]


def item(report: dict[str, Any], wave: str, item_id: str, role: str) -> dict[str, Any]:
    return next(i for i in report["waves"][wave]["items"] if i["id"] == item_id)["roles"][role]


def test_the_pilot_baseline_reproduces_table_1_and_table_2_counts() -> None:
    # Table 1: Yes 5 mentee + 7 mentor; No 5 mentee + 3 mentor. Table 2 (n = 10 each), first rows.
    mentees = [baseline("mentee", career_more_challenging=i < 5) for i in range(10)]
    mentors = [baseline("mentor", career_more_challenging=i < 7) for i in range(10)]
    for i, r in enumerate(mentees):
        r.answers["want_from_scheme"] = {  # type: ignore[index]
            "value": [o for o, n in (("professional-development", 7), ("career-advice", 9)) if i < n]
        }
    report = programme_report(
        "aimms-mentoring",
        QUESTIONNAIRES,
        {("baseline", "mentee"): 12, ("baseline", "mentor"): 10},
        mentees + mentors,
        3,
    )
    roles = report["waves"]["baseline"]["roles"]
    assert roles["mentee"] == {"invited": 12, "responses": 10, "response_rate": 83.3, "suppressed": False}
    assert roles["mentor"]["response_rate"] == 100.0
    challenging = {r: item(report, "baseline", "career_more_challenging", r) for r in ("mentee", "mentor")}
    assert [(c["yes"]["count"], c["no"]["count"]) for c in challenging.values()] == [(5, 5), (7, 3)]
    assert challenging["mentor"]["yes"]["percent"] == 70.0
    want = item(report, "baseline", "want_from_scheme", "mentee")
    counts = {o["id"]: o["count"] for o in want["options"]}
    assert (counts["professional-development"], counts["career-advice"], counts["general-support"]) == (7, 9, 0)
    assert "understand-difficulties" not in counts  # a mentor-only option is not a mentee row (N/A in the paper)
    assert "career-advice" not in {o["id"] for o in item(report, "baseline", "want_from_scheme", "mentor")["options"]}


def test_scales_have_mean_median_and_a_full_distribution() -> None:
    stars = [5, 5, 5, 4, 4]  # mean 4.6, like the pilot's mentees
    responses = [
        follow_up("mentee", scheme_rating=s, career_impact_confidence=c, sessions_held=n, good_relationship=g)
        for s, c, n, g in zip(stars, [7, 8, 10, 9, 6], [1, 3, 5, 2, 3], [5, 4, 4, 5, 4], strict=True)
    ]
    report = programme_report("aimms-mentoring", QUESTIONNAIRES, {}, responses, 3)
    rating = item(report, "follow_up", "scheme_rating", "mentee")
    assert (rating["answered"], rating["mean"], rating["median"]) == (5, 4.6, 5)
    assert [(p["value"], p["count"]) for p in rating["distribution"]] == [(1, 0), (2, 0), (3, 0), (4, 2), (5, 3)]
    confidence = item(report, "follow_up", "career_impact_confidence", "mentee")
    assert len(confidence["distribution"]) == 10 and confidence["median"] == 8
    sessions = item(report, "follow_up", "sessions_held", "mentee")
    assert (sessions["mean"], sessions["min"], sessions["max"]) == (2.8, 1, 5)
    assert [p["value"] for p in sessions["distribution"]] == [1, 2, 3, 5]
    relationship = item(report, "follow_up", "good_relationship", "mentee")
    assert relationship["distribution"][3] == {"value": 4, "count": 3, "percent": 60.0, "label": "Agree"}
    assert report["waves"]["follow_up"]["roles"]["mentee"]["response_rate"] is None  # none invited: no rate


def test_a_role_with_fewer_respondents_than_the_threshold_is_suppressed_whole() -> None:
    responses = [follow_up("mentee", scheme_rating=5, most_rewarding=f"text {i}") for i in range(3)] + [
        follow_up("mentor", scheme_rating=2, most_rewarding="my only mentee")
    ] * 2
    report = programme_report("aimms-mentoring", QUESTIONNAIRES, {}, responses, 3)
    roles = report["waves"]["follow_up"]["roles"]
    assert (roles["mentor"]["responses"], roles["mentor"]["suppressed"]) == (2, True)
    assert item(report, "follow_up", "scheme_rating", "mentor") == {"suppressed": True}
    assert item(report, "follow_up", "most_rewarding", "mentor") == {"suppressed": True}
    assert item(report, "follow_up", "scheme_rating", "mentee")["answered"] == 3
    assert "my only mentee" not in str(report)


def test_free_text_is_listed_alphabetically_and_sensitive_text_once_per_value() -> None:
    responses = [
        baseline("mentee", job_title="Senior lecturer", ethnicity="British Indian"),
        baseline("mentee", job_title="lecturer", ethnicity="Arab"),
        baseline("mentee", job_title="Lecturer", ethnicity="British Indian"),
        baseline(
            "mentee", career_more_challenging={"value": True, "text": "I cannot be what I don't see"}, job_title="A"
        ),
    ]
    report = programme_report("aimms-mentoring", QUESTIONNAIRES, {}, responses, 3)
    assert item(report, "baseline", "job_title", "mentee")["texts"] == ["A", "lecturer", "Lecturer", "Senior lecturer"]
    assert item(report, "baseline", "ethnicity", "mentee")["texts"] == ["Arab", "British Indian"]
    challenging = item(report, "baseline", "career_more_challenging", "mentee")
    assert challenging["yes"]["texts"] == ["I cannot be what I don't see"] and challenging["no"]["texts"] == []


def test_the_csv_has_the_figures_and_no_free_text() -> None:
    responses = [
        baseline("mentee", career_more_challenging={"value": i % 2 == 0, "text": "secret story"}) for i in range(4)
    ]
    report = programme_report("aimms-mentoring", QUESTIONNAIRES, {("baseline", "mentee"): 5}, responses, 3)
    text = report_csv(report)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert "secret story" not in text
    assert {"wave": "baseline", "role": "mentee", "measure": "response_rate", "value": "80.0"}.items() <= next(
        r for r in rows if r["measure"] == "response_rate" and r["role"] == "mentee"
    ).items()
    yes = next(r for r in rows if r["item_id"] == "career_more_challenging" and r["option"] == "yes")
    assert (yes["role"], yes["measure"], yes["value"]) == ("mentee", "count", "2")
    assert any(r["role"] == "mentor" and r["measure"] == "suppressed" for r in rows)


def test_a_circles_programme_reports_peers_and_facilitators_side_by_side_and_suppresses_a_small_group() -> None:
    circles = {wave: [shipped_template(wave).for_programme("peer-circles")] for wave in ("baseline", "follow_up")}
    peers = [follow_up("peer", circle_satisfaction=s, would_recommend=r) for s, r in ((5, 10), (4, 9), (4, 6), (3, 8))]
    facilitators = [follow_up("facilitator", circle_satisfaction=2, peers_supported_each_other=1)] * 2
    invited = {("follow_up", "peer"): 5, ("follow_up", "facilitator"): 2}

    report = programme_report("peer-circles", circles, invited, peers + facilitators, 3)

    roles = report["waves"]["follow_up"]["roles"]
    assert list(roles) == ["peer", "facilitator"] and list(report["waves"]["baseline"]["roles"]) == list(roles)
    assert roles["peer"] == {"invited": 5, "responses": 4, "response_rate": 80.0, "suppressed": False}
    assert roles["facilitator"] == {"invited": 2, "responses": 2, "response_rate": 100.0, "suppressed": True}
    satisfaction = item(report, "follow_up", "circle_satisfaction", "peer")
    assert (satisfaction["answered"], satisfaction["mean"]) == (4, 4.0)
    recommend = item(report, "follow_up", "would_recommend", "peer")
    assert (recommend["median"], recommend["min"], recommend["max"]) == (8.5, 6, 10)
    assert item(report, "follow_up", "circle_satisfaction", "facilitator") == {"suppressed": True}
    by_id = {i["id"]: i["roles"] for i in report["waves"]["follow_up"]["items"]}
    assert list(by_id["facilitator_helpful"]) == ["peer"]  # asked of peers only
    assert by_id["peers_supported_each_other"] == {"facilitator": {"suppressed": True}}
    rows = list(csv.DictReader(io.StringIO(report_csv(report))))
    assert {r["role"] for r in rows} == {"peer", "facilitator"}
    suppressed = {(r["role"], r["item_id"]) for r in rows if r["measure"] == "suppressed" and r["wave"] == "follow_up"}
    assert ("facilitator", "circle_satisfaction") in suppressed and "peer" not in {role for role, _ in suppressed}


def test_three_facilitators_are_reported_beside_the_peers() -> None:
    circles = {"follow_up": [shipped_template("follow_up").for_programme("peer-circles")]}
    responses = [follow_up("peer", meeting_frequency="monthly")] * 3 + [
        follow_up("facilitator", meeting_frequency=f) for f in ("monthly", "monthly", "less-than-monthly")
    ]

    report = programme_report("peer-circles", circles, {}, responses, 3)

    frequency = {
        role: {o["id"]: o["count"] for o in item(report, "follow_up", "meeting_frequency", role)["options"]}
        for role in ("peer", "facilitator")
    }
    assert (frequency["peer"]["monthly"], frequency["facilitator"]["monthly"]) == (3, 2)
    assert frequency["facilitator"]["less-than-monthly"] == 1
