"""A pair's life without I/O: proposal, answers, trial, follow-up, term end, extension, and answer links."""

import base64
import hashlib
import hmac
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from aimms_matching.domain import engine, pairs
from aimms_matching.domain.pairs import Explanation, Pair, Timing
from aimms_matching.domain.rules import Member, ProgrammeRules, check_choices, declared_conflicts, matching_summary
from aimms_matching.links import AnswerLinks, InvalidLink
from aimms_shared.contracts.registration import MatchingPolicy
from aimms_shared.durations import after, is_duration, parse
from aimms_shared.errors import RuleBroken, StateConflict
from aimms_shared.links import sign

T0 = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
TIMING = Timing(reply_within="P14D", reminder_after="P7D", trial_period="P1M", term="P6M", follow_up_after="P6M")
LINKS = AnswerLinks(b"k" * 32, "https://aimms.example/matching")


def held(**changes) -> Pair:
    pair = Pair(
        pair_id="p1",
        programme_id="aimms",
        mentee_id="amina",
        mentor_id="grace",
        mentee_institution_id="north",
        mentor_institution_id="south",
        explanation=Explanation("stable", 1, None, 2.1, {"seniority": 1.0}, ("global-health",), 1),
        timing=TIMING,
        created_at=T0,
    )
    return replace(pair, **changes)


def proposed() -> Pair:
    return pairs.propose(held(), T0, LINKS.for_pair("p1"))[0]


def started() -> Pair:
    pair, _ = pairs.answer(proposed(), "mentee", True, T0)
    return pairs.answer(pair, "mentor", True, T0)[0]


def types(events) -> list[str]:
    return [e.event_type for e in events]


# --- durations ----------------------------------------------------------------------------------------------


def test_months_are_calendar_months_clamped_at_month_end():
    assert after(T0, "P1M") == datetime(2026, 2, 28, 9, 0, tzinfo=UTC)
    assert after(T0, "P6M") == datetime(2026, 7, 31, 9, 0, tzinfo=UTC)
    assert after(T0, "P1Y2M3DT4H5M6S") == datetime(2027, 4, 3, 13, 5, 6, tzinfo=UTC)


def test_seconds_let_tests_run_a_whole_term():
    assert after(T0, "PT30S") - T0 == timedelta(seconds=30)
    assert parse("P2W").span == timedelta(days=14)


@pytest.mark.parametrize("text", ["P", "6M", "PT", "P1.5M", "P1MT", ""])
def test_malformed_durations_are_refused(text):
    assert not is_duration(text)
    with pytest.raises(ValueError, match="ISO 8601"):
        parse(text)


# --- proposal and answers -----------------------------------------------------------------------------------


def test_a_held_pair_is_proposed_with_its_explanation_links_and_deadline():
    pair, events = pairs.propose(held(), T0, LINKS.for_pair("p1"))
    assert pair.state == "proposed" and pair.reply_by == T0 + timedelta(days=14)
    (event,) = events
    assert event.event_type == "MatchProposed"
    assert event.choice_rank == 1 and event.shared_interests == ["global-health"]
    assert LINKS.read(event.mentor_links.decline.rsplit("/", 1)[1]) == ("p1", "mentor", "decline")
    assert pairs.propose(pair, T0, LINKS.for_pair("p1")) == (pair, [])  # proposing again changes nothing


def test_both_accepting_starts_mentoring_with_the_programmes_dates():
    pair, events = pairs.answer(proposed(), "mentor", True, T0)
    assert pair.state == "proposed" and types(events) == ["MatchAccepted"]
    pair, events = pairs.answer(pair, "mentee", True, T0 + timedelta(hours=1))
    assert types(events) == ["MatchAccepted", "MentoringStarted"]
    start = T0 + timedelta(hours=1)
    assert pair.state == "mentoring" and pair.started_at == start
    assert (pair.trial_ends_at, pair.follow_up_at, pair.term_ends_at) == (
        after(start, "P1M"),
        after(start, "P6M"),
        after(start, "P6M"),
    )


def test_a_decline_ends_the_proposal_and_records_who_and_why():
    pair, events = pairs.answer(proposed(), "mentor", False, T0, "on leave")
    assert pair.state == "declined" and pair.excludes_pair
    (event,) = events
    assert (event.side, event.reason, event.expired) == ("mentor", "on leave", False)


def test_a_side_answers_once_and_never_after_the_deadline_or_a_decision():
    pair, _ = pairs.answer(proposed(), "mentee", True, T0)
    with pytest.raises(StateConflict, match="already answered"):
        pairs.answer(pair, "mentee", False, T0)
    with pytest.raises(StateConflict, match="expired"):
        pairs.answer(proposed(), "mentor", True, T0 + timedelta(days=14))
    declined, _ = pairs.answer(proposed(), "mentor", False, T0)
    with pytest.raises(StateConflict, match="no longer open"):
        pairs.answer(declined, "mentee", True, T0)


# --- the clock ----------------------------------------------------------------------------------------------


def test_an_unanswered_proposal_is_reminded_once_then_expires_as_a_decline():
    pair, _ = pairs.answer(proposed(), "mentee", True, T0)
    assert pair.next_due() == T0 + timedelta(days=7)
    assert pairs.tick(pair, T0 + timedelta(days=6), LINKS.for_pair("p1")) == (pair, [])
    reminded, events = pairs.tick(pair, T0 + timedelta(days=7), LINKS.for_pair("p1"))
    assert types(events) == ["MatchProposalReminder"] and events[0].awaiting == ["mentor"]
    assert reminded.next_due() == T0 + timedelta(days=14)
    assert pairs.tick(reminded, T0 + timedelta(days=8), LINKS.for_pair("p1"))[1] == []
    expired, events = pairs.tick(reminded, T0 + timedelta(days=14), LINKS.for_pair("p1"))
    assert expired.state == "declined" and expired.next_due() is None
    assert (events[0].side, events[0].expired) == ("mentor", True)


def test_nobody_answering_expires_without_blaming_a_side():
    _, events = pairs.tick(proposed(), T0 + timedelta(days=15), LINKS.for_pair("p1"))
    assert events[0].side is None and events[0].expired


def test_six_months_elapsed_fires_once_then_the_term_end_asks_both():
    pair = started()
    assert pair.next_due() == pair.follow_up_at
    pair, events = pairs.tick(pair, pair.follow_up_at, LINKS.for_pair("p1"))
    # Follow-up and term end fall together here: both happen, each once.
    assert types(events) == ["SixMonthsElapsed", "MentoringTermEnded"]
    assert events[0].still_mentoring is True
    assert pairs.tick(pair, pair.follow_up_at + timedelta(seconds=1), LINKS.for_pair("p1"))[1] == []
    assert pair.next_due() == pair.term_reply_by


@pytest.mark.parametrize("reason", ["trial", "abandoned", "withdrawn"])
def test_a_partnership_that_ended_early_still_reaches_its_follow_up_point_once(reason):
    """The evaluation asks everyone whose partnership started (the pilot's ended pairs answered too)."""
    pair = started()
    ended, _ = pairs.end(pair, reason, T0 + timedelta(days=3), "mentee")

    assert ended.next_due() == pair.follow_up_at
    assert pairs.tick(ended, pair.follow_up_at - timedelta(seconds=1), LINKS.for_pair("p1"))[1] == []
    followed_up, events = pairs.tick(ended, pair.follow_up_at, LINKS.for_pair("p1"))

    assert types(events) == ["SixMonthsElapsed"] and events[0].still_mentoring is False
    assert followed_up.state == "ended" and followed_up.next_due() is None
    assert pairs.tick(followed_up, pair.follow_up_at + timedelta(days=1), LINKS.for_pair("p1"))[1] == []


def test_a_proposal_that_never_started_has_no_follow_up():
    declined, _ = pairs.answer(proposed(), "mentor", False, T0)
    assert declined.next_due() is None
    assert pairs.tick(declined, after(T0, "P1Y"), LINKS.for_pair("p1"))[1] == []


def test_both_extending_adds_a_term_and_one_concluding_completes():
    pair, _ = pairs.tick(started(), after(T0, "P6M"), LINKS.for_pair("p1"))
    once, events = pairs.decide_term(pair, "mentee", True, after(T0, "P6M"))
    assert events == [] and once.extend_votes == ("mentee",)
    extended, events = pairs.decide_term(once, "mentor", True, after(T0, "P6M"))
    assert types(events) == ["MatchExtended"] and extended.term_ends_at == after(pair.term_ends_at, "P6M")
    assert extended.term_reply_by is None
    ended, events = pairs.decide_term(pair, "mentor", False, after(T0, "P6M"))
    assert ended.state == "ended" and events[0].reason == "completed" and events[0].ended_by == "mentor"


def test_silence_at_the_term_end_concludes_the_partnership():
    pair, _ = pairs.tick(started(), after(T0, "P6M"), LINKS.for_pair("p1"))
    ended, events = pairs.tick(pair, pair.term_reply_by, LINKS.for_pair("p1"))
    assert ended.state == "ended" and types(events) == ["MatchEnded"] and events[0].reason == "completed"


def test_the_trial_may_be_ended_freely_only_within_the_trial_period():
    pair = started()
    ended, events = pairs.end(pair, "trial", T0 + timedelta(days=3), "mentee")
    assert ended.excludes_pair and events[0].stage == "mentoring"
    with pytest.raises(RuleBroken, match="trial period ended"):
        pairs.end(pair, "trial", pair.trial_ends_at, "mentee")
    assert pairs.end(pair, "abandoned", pair.trial_ends_at, "mentee")[0].end_reason == "abandoned"


def test_withdrawal_cancels_a_proposal_but_a_side_cannot_end_one():
    ended, events = pairs.end(proposed(), "withdrawn", T0, "mentor")
    assert ended.state == "ended" and events[0].stage == "proposal"
    with pytest.raises(StateConflict):
        pairs.end(proposed(), "abandoned", T0, "mentor")


# --- links and programme rules ------------------------------------------------------------------------------


def test_an_altered_or_foreign_link_is_refused():
    token = LINKS.token("p1", "mentee", "accept")
    forged = token.replace(".mentee.", ".mentor.")
    other_key = AnswerLinks(b"x" * 32, "https://elsewhere").token("p1", "mentee", "accept")
    for bad in (forged, other_key, "p1.mentee.accept", "nonsense"):
        with pytest.raises(InvalidLink):
            LINKS.read(bad)


def test_an_answer_link_signed_for_another_purpose_is_refused_and_one_issued_before_the_shared_helper_works():
    """Answer and opt-out links share one signing helper; links already in inboxes keep working."""
    opt_out_style = f"p1.mentee.accept.{sign(b'k' * 32, 'opt-out', 'p1', 'mentee', 'accept')}"
    digest = hmac.new(b"k" * 32, b"p1|mentee|accept", hashlib.sha256).digest()
    issued_before = f"p1.mentee.accept.{base64.urlsafe_b64encode(digest[:18]).decode()}"

    with pytest.raises(InvalidLink):
        LINKS.read(opt_out_style)
    assert LINKS.read(issued_before) == ("p1", "mentee", "accept")


def member(pid: str, institution: str, roles=("mentee",)) -> Member:
    return Member(pid, "aimms", institution, roles, "ST3", "clinical", (), 1, True, False)


def test_a_mentee_may_name_any_published_mentor_unless_the_programme_limits_choices_by_seniority():
    rules = ProgrammeRules("aimms", ("F1", "ST3", "Consultant"), True, 1, 3, "P6M", "P6M")
    peer = replace(member("peer", "east", ("mentor",)), seniority="ST3")  # not more senior than her
    her = member("e", "north")

    assert check_choices(her, ["peer"], {"peer": peer}, rules) == ("peer",)
    limited = replace(rules, matching=MatchingPolicy(choices_by_seniority=True))
    with pytest.raises(RuleBroken) as refused:
        check_choices(her, ["peer"], {"peer": peer}, limited)
    assert refused.value.extra["rule"] == "eligible-seniority"


def test_the_engine_sees_a_background_token_only_where_registration_sent_one_and_the_pathway():
    rules = ProgrammeRules("aimms", ("F1", "ST3"), True, 1, 3, "P6M", "P6M")
    opted_in = replace(member("e", "north"), background_token="t-1")
    mentor = replace(member("m", "east", ("mentor",)), background_token=None, pathway="non-clinical")

    assert rules.as_mentee(opted_in, ()).background == "t-1" and rules.as_mentee(opted_in, ()).pathway == "clinical"
    assert rules.as_mentor(mentor).background is None and rules.as_mentor(mentor).pathway == "non-clinical"


def test_a_programme_may_declare_same_school_pairs_a_conflict():
    allowed = ProgrammeRules("aimms", ("F1", "ST3"), True, 1, 3, "P6M", "P6M")
    strict = replace(allowed, matching=MatchingPolicy(same_institution_allowed=False))
    mentees = [member("a", "north"), member("b", "south")]
    mentors = [member("m", "north", ("mentor",)), member("n", "east", ("mentor",))]
    assert declared_conflicts(allowed, mentees, mentors) == set()
    assert declared_conflicts(strict, mentees, mentors) == {("a", "m")}


def test_the_coordinators_summary_counts_pairs_and_days_to_match():
    from aimms_matching.domain.rules import matching_summary

    waiting_three_days = replace(started(), started_at=T0 + timedelta(days=3))
    other = replace(started(), pair_id="p2", mentee_id="bisi", started_at=T0 + timedelta(days=10))
    open_proposal = replace(proposed(), pair_id="p3", mentee_id="chi")
    joined = {"amina": T0, "bisi": T0, "chi": T0}

    summary = matching_summary([waiting_three_days, other, open_proposal], joined)

    assert summary["pairs_by_state"] == {"mentoring": 2, "proposed": 1}
    assert summary["pairs_by_institution"]["north"] == {"mentoring": 2, "proposed": 1}
    assert (summary["partnerships_started"], summary["days_to_match_median"], summary["days_to_match_p90"]) == (
        2,
        3.0,
        10.0,
    )
    assert matching_summary([], {})["days_to_match_median"] is None


def test_a_programme_that_sets_no_matching_policy_matches_by_the_engines_defaults() -> None:
    # The engine keeps defaults of its own (it runs without the service in benches); the contract's
    # defaults are what programmes get. They must not drift apart.
    assert ProgrammeRules("aimms", ("F1", "ST3"), True, 1, 3, "P6M", "P6M").policy() == engine.DEFAULT_POLICY


# --- meetings and the trial ---------------------------------------------------------------------------------


def test_the_first_recorded_meeting_ends_the_trial_and_each_day_counts_once():
    pair = started()
    day = (T0 + timedelta(days=3)).date()
    with pytest.raises(RuleBroken):  # not before the start, not in the future
        pairs.record_meeting(pair, "mentee", (T0 - timedelta(days=1)).date(), None, T0 + timedelta(days=3), "m0")
    with pytest.raises(RuleBroken):
        pairs.record_meeting(pair, "mentee", (T0 + timedelta(days=9)).date(), None, T0 + timedelta(days=3), "m0")

    met, [first] = pairs.record_meeting(pair, "mentee", day, "Agreed monthly calls", T0 + timedelta(days=3), "m1")

    assert (first.meetings, first.trial_ended, first.held_on) == (1, True, day)
    assert "Agreed" not in first.model_dump_json()  # notes never leave the pair
    assert met.trial_ends_at == T0 + timedelta(days=3) and met.meetings[0].notes == "Agreed monthly calls"
    with pytest.raises(RuleBroken):  # the trial is over: ended as abandoned or completed from now on
        pairs.end(met, "trial", T0 + timedelta(days=4), "mentor")
    with pytest.raises(StateConflict):  # the other side records the same meeting: counted once
        pairs.record_meeting(met, "mentor", day, None, T0 + timedelta(days=4), "m2")
    again, [second] = pairs.record_meeting(met, "mentor", day + timedelta(days=1), None, T0 + timedelta(days=5), "m3")
    assert (second.meetings, second.trial_ended) == (2, False) and again.trial_ends_at == met.trial_ends_at


def test_meetings_are_recorded_only_in_a_partnership_going_on():
    with pytest.raises(StateConflict):
        pairs.record_meeting(proposed(), "mentee", T0.date(), None, T0, "m1")
    paused, _ = pairs.pause(started(), T0)
    with pytest.raises(StateConflict):
        pairs.record_meeting(paused, "mentee", T0.date(), None, T0, "m1")


def test_the_coordinators_summary_counts_meetings_never_notes():
    met = started()
    for n in range(3):
        met, _ = pairs.record_meeting(
            met, "mentee", (T0 + timedelta(days=n)).date(), "private", T0 + timedelta(days=3), f"m{n}"
        )
    summary = matching_summary([met, started(), proposed()], {})
    assert summary["meetings"] == {"partnerships": 2, "mean": 1.5, "min": 0, "max": 3, "by_count": {"0": 1, "3": 1}}
    assert "private" not in str(summary)


def test_after_a_key_rotation_answer_links_already_sent_still_work_until_the_retired_key_is_dropped() -> None:
    old, new = b"o" * 32, b"n" * 32
    sent = AnswerLinks(old, "https://aimms.example").token("p1", "mentee", "accept")

    assert AnswerLinks(new, "https://aimms.example", retired=(old,)).read(sent) == ("p1", "mentee", "accept")
    with pytest.raises(InvalidLink):
        AnswerLinks(new, "https://aimms.example").read(sent)


def test_link_keys_are_the_current_one_then_those_a_rotation_retired() -> None:
    from aimms_matching.settings import MatchingSettings

    settings = MatchingSettings(
        link_signing_key="n" * 32,
        link_previous_signing_keys=" " + "o" * 32 + ", " + "p" * 32,
        public_url="https://aimms.example",
        kafka_bootstrap_servers="kafka:9092",
        mongodb_uri="mongodb://mongo",
    )
    assert settings.link_keys() == (b"n" * 32, b"o" * 32, b"p" * 32)
