"""The coordinators' dashboard from the services' reports: pure, no I/O."""

from typing import Any

from aimms_portal.domain.dashboard import bars, circles, email_name, funnel, rounds, survey_tables


def agreement(counts: dict[int, int]) -> dict[str, Any]:
    answered = sum(counts.values())
    return {
        "answered": answered,
        "mean": 4.0,
        "median": 4,
        "distribution": [{"value": v, "count": counts.get(v, 0), "label": f"label {v}"} for v in range(1, 6)],
    }


def report(mentor: dict[str, Any]) -> dict[str, Any]:
    return {
        "waves": {
            "follow_up": {
                "roles": {"mentee": {"responses": 4}, "mentor": {"responses": 3}},
                "items": [
                    {
                        "id": "good_relationship",
                        "kind": "agreement",
                        "text": "I have a good relationship with my mentoring partner",
                        "roles": {"mentee": agreement({5: 2, 4: 1, 2: 1}), "mentor": mentor},
                    },
                    {
                        "id": "recommend",
                        "kind": "scale_10",
                        "text": "Would you recommend the scheme?",
                        "roles": {
                            "mentee": {
                                "answered": 4,
                                "distribution": [
                                    {"value": v, "count": {6: 1, 7: 1, 10: 2}.get(v, 0)} for v in range(1, 11)
                                ],
                            },
                            "mentor": {"suppressed": True},
                        },
                    },
                ],
            }
        }
    }


def test_agreement_tables_have_roles_side_by_side_a_total_and_the_agreed_summary() -> None:
    [wave] = survey_tables(report(agreement({5: 3})))
    table = wave.tables[0]
    assert table.roles == ["mentee", "mentor"]
    agreed = table.rows[-1]
    assert agreed.summary and agreed.label == "Agreed or strongly agreed"
    assert (agreed.cells["mentee"].value, agreed.cells["mentee"].note) == (3, "75%")
    assert (agreed.cells["mentor"].value, agreed.cells["mentor"].note) == (3, "100%")
    assert agreed.total is not None and (agreed.total.value, agreed.total.note) == (6, "85.7%")


def test_a_suppressed_role_shows_no_figure_and_no_total_that_could_reveal_it() -> None:
    [wave] = survey_tables(report({"suppressed": True}))
    for row in wave.tables[0].rows:
        assert row.cells["mentor"] is None and row.total is None
    high = wave.tables[1].rows[-1]
    assert high.label == "7 or above" and high.cells["mentee"].value == 3 and high.cells["mentor"] is None


def test_the_funnel_adds_up_the_services_reports() -> None:
    pipeline = [
        {"programme_id": "p", "institution_id": "b", "interested": 2, "registered": 5, "withdrawn": 1},
        {"programme_id": "p", "institution_id": "a", "interested": 1, "registered": 4, "withdrawn": 0},
        {"programme_id": "other", "institution_id": "a", "interested": 9, "registered": 9, "withdrawn": 0},
    ]
    pairs = {
        "pairs_by_state": {"held": 1, "proposed": 3, "mentoring": 2},
        "pairs_by_institution": {"a": {"proposed": 2, "mentoring": 1}},
        "partnerships_started": 2,
    }
    survey = {"waves": {"follow_up": {"roles": {"mentee": {"responses": 2}, "mentor": {"responses": 1}}}}}
    shown = funnel("p", pipeline, pairs, survey)
    assert [(s.label.split()[0], s.value) for s in shown.stages] == [
        ("Expressed", 3),
        ("Registered", 9),
        ("Pairs", 5),
        ("Partnerships", 2),
        ("Follow-up", 3),
    ]
    assert shown.stages[1].width == 100.0
    assert [r["institution_id"] for r in shown.institutions] == ["a", "b"]
    assert shown.institutions[0]["proposed"] == 3 and shown.institutions[1]["mentoring"] == 0


def test_rounds_newest_first_with_quality_in_percent() -> None:
    def round_report(ran_at: str) -> dict[str, Any]:
        quality = {"first_choice_rate": 0.7, "any_choice_rate": 0.9, "blocking_pairs": 0}
        stable = quality | {"rank_profile": {"choice_1": 14, "fallback": 2}, "by_institution": {}, "by_seniority": {}}
        residual = {"blocking_pairs": 0}
        return {"ran_at": ran_at, "mentees": 20, "mentors": 14, "proposed": 19, "unmatched": 1} | {
            "stable": stable,
            "residual": residual,
        }

    shown = rounds([round_report("2026-01-01T10:00:00Z"), round_report("2026-02-01T10:00:00Z")])
    assert [r.ran_at for r in shown] == ["2026-02-01 10:00", "2026-01-01 10:00"]
    assert [(q.value, q.width) for q in shown[0].quality] == [(70.0, 70.0), (90.0, 90.0)]
    assert {b.label: b.value for b in shown[0].ranks}["Not matched"] == 1


def test_bars_and_email_names() -> None:
    assert [b.width for b in bars([("a", 0), ("b", 0)])] == [0.0, 0.0]
    assert email_name("match_proposed") == "Proposal" and email_name("new_thing") == "New thing"


def test_a_circles_round_and_its_circles_in_words() -> None:
    quality = {"size_min": 5, "size_max": 6, "members_alone_of_their_group": 0, "institutions_mixed_rate": 1.0}
    quality |= {"sharing_an_interest_rate": 0.958, "facilitated_rate": 0.5}
    report = {"ran_at": "2026-03-01T09:30:00Z", "kind": "circles", "mentees": 11, "mentors": 1, "circles": 2}
    [shown] = rounds([report | {"proposed": 11, "unmatched": 0, "stable": quality, "residual": {}}])
    assert shown.summary == (
        "11 peers waiting, 1 facilitator: 2 circles formed, 11 placed, 0 not placed; circles of 5 to 6, "
        "0 members alone of their group."
    )
    assert [(q.label, q.value) for q in shown.quality][1] == ("Members sharing an interest in their circle", 95.8)
    assert shown.ranks == [] and shown.groups == {}

    members = [{"participant_id": f"p{i}", "role": "peer", "institution_id": "ab"[i % 2]} for i in range(5)]
    circle = {"members": members, "stages": ["Lecturer", "Lecturer"], "shared_interests": [], "left": ["p9"]}
    [row] = circles([circle | {"formed_at": "2026-03-01T09:30:00Z", "follow_up_at": "2026-09-01T09:30:00Z"}])
    assert (row.members, row.institutions, row.stages, row.left) == ("5 peers, no facilitator", "a, b", "Lecturer", 1)
    assert (row.interests, row.follow_up) == ("None in common", "1 September 2026")
