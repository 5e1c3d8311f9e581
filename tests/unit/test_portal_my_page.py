"""A participant's own page, from the APIs' answers, without I/O."""

from datetime import UTC, datetime
from typing import Any

from aimms_portal.domain.my_page import PAUSED_STAGE, WITHDRAWN_STAGE, choices_from, my_page

AMINA = {
    "participant_id": "p-amina",
    "programme_id": "aimms-mentoring",
    "name": "Dr Amina Okafor",
    "roles": ["mentee"],
    "status": "active",
    "withdrawn_at": None,
}
PROGRAMME = {"programme_id": "aimms-mentoring", "name": "AIMMS Mentoring", "term": "P6M"}
PROFILES = [{"participant_id": "p-grace", "name": "Prof Grace Mensah"}]
SCHOOLS = {"northgate": "Northgate Medical School"}


def entry(participant_id: str, remaining: int, capacity: int = 2) -> dict[str, Any]:
    return {
        "participant_id": participant_id,
        "institution_id": "northgate",
        "job_title": "Professor of Medicine",
        "seniority": "professor",
        "pathway": "clinical",
        "research_interests": ["global-health", "medical-education"],
        "offers": "Fellowship applications",
        "capacity": capacity,
        "remaining_capacity": remaining,
        "full": remaining <= 0,
    }


def pair(state: str, **dates: str) -> dict[str, Any]:
    return {"pair_id": "pair-1", "mentee_id": "p-amina", "mentor_id": "p-grace", "state": state, **dates}


def test_a_mentee_not_yet_proposed_chooses_among_mentors_named_with_their_places_and_schools() -> None:
    directory = [entry("p-grace", 1), entry("p-unnamed", 0, capacity=1)]
    page = my_page(AMINA, PROGRAMME, [], PROFILES, directory, ["p-grace"], SCHOOLS)

    assert page.may_choose and page.term == "6 months" and page.roles == "a mentee"
    grace, unnamed = page.mentors
    assert (grace.name, grace.places, grace.institution) == (
        "Prof Grace Mensah",
        "1 of 2 places free",
        SCHOOLS["northgate"],
    )
    assert grace.interests == "global health, medical education" and grace.seniority == "Professor"
    assert (unnamed.name, unnamed.places, unnamed.full) == ("Professor of Medicine", "Full", True)
    assert page.choices == ["p-grace", "", ""]


def test_a_proposal_or_partnership_shows_its_dates_and_ends_her_choosing() -> None:
    proposed = pair("proposed", proposed_at="2026-12-01T09:00:00+00:00", reply_by="2026-12-15T09:00:00+00:00")
    mentoring = pair(
        "mentoring",
        started_at="2026-12-03T09:00:00+00:00",
        trial_ends_at="2027-01-03T09:00:00+00:00",
        follow_up_at="2027-06-03T09:00:00+00:00",
        term_ends_at="2027-06-03T09:00:00+00:00",
        reply_by="2026-12-15T09:00:00+00:00",
    )
    waiting = my_page(AMINA, PROGRAMME, [proposed], PROFILES, [], [], SCHOOLS)
    started = my_page(AMINA, PROGRAMME, [mentoring], PROFILES, [], [], SCHOOLS)

    assert not waiting.may_choose and not started.may_choose
    [shown] = waiting.partnerships
    assert shown.with_whom == "Your mentor, Prof Grace Mensah" and shown.stage.startswith("Proposed")
    assert shown.dates == [("Proposed", "1 December 2026"), ("Answer by", "15 December 2026")]
    [going] = started.partnerships
    assert dict(going.dates) == {
        "Started": "3 December 2026",
        "First meeting, the trial, by": "3 January 2027",
        "Follow-up questionnaire": "3 June 2027",
        "Term ends": "3 June 2027",
    }


def test_after_she_withdraws_her_open_pairs_read_as_ending_and_she_chooses_nobody() -> None:
    withdrawn = AMINA | {"status": "withdrawn", "withdrawn_at": "2026-12-05T10:00:00+00:00"}
    page = my_page(withdrawn, PROGRAMME, [pair("proposed")], PROFILES, [entry("p-grace", 1)], [], SCHOOLS)

    assert not page.active and not page.may_choose and page.withdrawn_on == "5 December 2026"
    assert page.partnerships[0].stage == WITHDRAWN_STAGE


def test_a_mentor_sees_her_mentee_unnamed_and_no_choosing() -> None:
    grace = AMINA | {"participant_id": "p-grace", "roles": ["mentor"], "name": "Prof Grace Mensah"}
    page = my_page(grace, PROGRAMME, [pair("mentoring")], PROFILES, [], [], SCHOOLS)

    assert not page.may_choose and page.partnerships[0].with_whom == "Your mentee"


def test_her_choices_are_read_best_first_without_blanks_or_repeats() -> None:
    assert choices_from(["p-2", "", "p-2"]) == ["p-2"]
    assert choices_from(["", "p-1", "p-3"]) == ["p-1", "p-3"]
    assert choices_from(["p-1", "p-2", "p-3", "p-4"]) == ["p-1", "p-2", "p-3"]


def test_a_paused_pair_says_so_and_nothing_of_why() -> None:
    page = my_page(
        AMINA, PROGRAMME, [pair("mentoring", paused_at="2026-12-05T10:00:00+00:00")], PROFILES, [], [], SCHOOLS
    )
    assert page.partnerships[0].stage == PAUSED_STAGE and "concern" not in PAUSED_STAGE


def test_a_partnership_going_on_records_meetings_and_may_end_as_a_trial_until_the_first() -> None:
    going = pair("mentoring", started_at="2026-12-01T09:00:00+00:00", trial_ends_at="2027-01-01T09:00:00+00:00")
    now = datetime(2026, 12, 5, tzinfo=UTC)
    before = my_page(AMINA, PROGRAMME, [going], PROFILES, [], [], SCHOOLS, {"pair-1": []}, now)
    met = [{"held_on": "2026-12-04", "notes": "Monthly calls"}]
    after = my_page(AMINA, PROGRAMME, [going], PROFILES, [], [], SCHOOLS, {"pair-1": met}, now)

    assert before.partnerships[0].may_record and before.partnerships[0].in_trial
    assert after.partnerships[0].may_record and not after.partnerships[0].in_trial
    assert after.partnerships[0].meetings == [("4 December 2026", "Monthly calls")]
    assert "Trial ended, at your first meeting" in dict(after.partnerships[0].dates)
    assert (
        not my_page(AMINA, PROGRAMME, [going], PROFILES, [], [], SCHOOLS, {}, datetime(2027, 2, 1, tzinfo=UTC))
        .partnerships[0]
        .in_trial
    )


def test_a_sponsorship_page_names_sponsors_and_shows_their_answers_to_the_programme_question() -> None:
    question = {"question_id": "opens", "text": "What can you open doors to?", "roles": ["sponsor"]}
    sponsorship = PROGRAMME | {"roles_offered": ["sponsor", "mentee"], "profile_questions": [question]}
    sponsor = entry("p-grace", 1) | {"answers": {"opens": "The promotions panel", "retired": "not shown"}}
    page = my_page(AMINA, sponsorship, [], PROFILES, [sponsor], [], SCHOOLS)

    assert (page.giver, page.a_giver) == ("sponsor", "a sponsor")
    assert page.mentors[0].answers == [("What can you open doors to?", "The promotions panel")]
    ally = my_page(AMINA | {"roles": ["ally"]}, PROGRAMME | {"roles_offered": ["ally", "mentee"]}, [], [], [], [], {})
    assert (ally.roles, ally.a_giver) == ("an ally", "an ally")


def test_a_sponsored_mentee_reads_your_sponsor_on_her_partnership() -> None:
    sponsorship = PROGRAMME | {"roles_offered": ["sponsor", "mentee"]}
    page = my_page(AMINA, sponsorship, [pair("mentoring")], PROFILES, [], [], SCHOOLS)
    assert page.partnerships[0].with_whom == "Your sponsor, Prof Grace Mensah"


def test_a_peer_sees_her_circle_by_school_and_stage_without_names() -> None:
    circles = PROGRAMME | {"kind": "circles", "roles_offered": ["peer", "facilitator"]}
    members = [("p-amina", "peer", "northgate"), ("p-bea", "peer", "demo"), ("p-cy", "peer", "northgate")]
    circle = {
        "circle_id": "circle-1",
        "members": [
            {"participant_id": pid, "role": role, "institution_id": school}
            for pid, role, school in [*members, ("p-dee", "facilitator", "demo")]
        ],
        "stages": ["Lecturer", "Senior lecturer"],
        "shared_interests": ["global-health"],
        "formed_at": "2026-12-01T09:00:00+00:00",
        "follow_up_at": "2027-06-01T09:00:00+00:00",
    }
    page = my_page(AMINA | {"roles": ["peer"]}, circles, [], [], [], [], SCHOOLS, circles=[circle])

    assert page.in_circles and not page.may_choose
    [shown] = page.circles
    assert (shown.her_role, shown.members, shown.stages) == (
        "Peer",
        "3 peers and a facilitator",
        "Lecturer to Senior lecturer",
    )
    assert shown.schools == "Northgate Medical School, demo" and shown.interests == "global health"
    assert shown.dates == [("Formed", "1 December 2026"), ("Follow-up questionnaire", "1 June 2027")]
