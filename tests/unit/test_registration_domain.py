"""Registration's rules, without I/O: institutions, programmes, interests, participants, credentials."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from aimms_registration.domain import credentials, institutions, interests, page_links, participants, programmes
from aimms_registration.domain.interests import InterestSubmission, express_interest
from aimms_registration.domain.participants import Profile, Registration
from aimms_registration.domain.programmes import EligibilityStatement, Programme
from aimms_shared.contracts.registration import (
    MentorCapacityChanged,
    ParticipantContact,
    ParticipantProfileText,
    ParticipantProfileUpdated,
    ParticipantRegistered,
)
from aimms_shared.errors import Missing, RuleBroken, StateConflict
from aimms_shared.principal import PARTICIPANTS_READ, SELF, Principal
from tests.factories import aimms_programme

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
KEY = b"background-token-key-for-tests-!"
SCHOOL, _ = institutions.onboard(
    "demo-university", "Demo University Medical School", ["Demo-University.ac.uk"], "m@demo-university.ac.uk", None
)
AIMMS = aimms_programme()
PROFILE = Profile(
    job_title="Senior lecturer",
    seniority="Senior lecturer",
    pathway="clinical",
    research_interests=("Global Health", "global health", "  Epidemiology & Stats "),
    offers="grant writing",
    seeks="leadership",
    mentor_capacity=None,
    publish_profile=True,
    background_matching=True,
)
REGISTRATION = Registration(
    name=" Dr Amina Okafor ",
    email="amina@med.demo-university.ac.uk",
    institution_id="demo-university",
    programme_id="aimms-mentoring",
    role="both",
    profile=PROFILE,
    consents={"privacy_notice": "2025-01", "code_of_conduct": "v2", "confidentiality": "v1"},
    confirmed_eligibility=("woman",),
    sensitive={"ethnicity": "British Nigerian", "age_band": "30-39"},
)


def register(registration: Registration = REGISTRATION, programme: Programme = AIMMS):
    return participants.register(registration, SCHOOL, programme, participant_id="p-1", now=NOW, background_key=KEY)


def test_a_registration_records_her_profile_consents_and_raises_three_records() -> None:
    participant, (registered, contact, text) = register()

    assert participant.roles == ("mentor", "mentee")
    assert participant.name == "Dr Amina Okafor"
    assert participant.profile.research_interests == ("global-health", "epidemiology-stats")
    assert participant.profile.mentor_capacity == AIMMS.default_mentor_capacity
    assert [(c.kind, c.version, c.given_at) for c in participant.consents] == [
        ("privacy_notice", "2025-01", NOW),
        ("code_of_conduct", "v2", NOW),
        ("confidentiality", "v1", NOW),
    ]
    assert isinstance(registered, ParticipantRegistered) and isinstance(contact, ParticipantContact)
    assert contact.email == "amina@med.demo-university.ac.uk"
    assert isinstance(text, ParticipantProfileText) and (text.text_id, text.offers) == ("profile:p-1", "grant writing")


def test_no_event_carries_her_special_category_data_and_only_compacted_records_carry_her_words() -> None:
    _, (registered, contact, text) = register()
    wire = registered.model_dump_json()
    assert "Nigerian" not in wire and "30-39" not in wire
    assert "amina@" not in wire and "Okafor" not in wire
    assert "job_title" not in registered.model_dump()
    assert "grant writing" not in wire and "leadership" not in wire  # what she offers and seeks
    assert "Nigerian" not in contact.model_dump_json() and "Nigerian" not in text.model_dump_json()


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"email": "amina@gmail.com"}, "email", "institution-email-domain"),
        ({"consents": {"privacy_notice": "2025-01", "code_of_conduct": "v2"}}, "consents", "required-consent"),
        ({"confirmed_eligibility": ()}, "confirmed_eligibility", "eligibility"),
        ({"profile": replace(PROFILE, seniority="Dean")}, "seniority", "programme-scale"),
        ({"profile": replace(PROFILE, mentor_capacity=4)}, "mentor_capacity", "capacity-range"),
        ({"profile": replace(PROFILE, mentor_capacity=0)}, "mentor_capacity", "capacity-range"),
        ({"profile": replace(PROFILE, offers=" ")}, "offers", "required-for-mentors"),
        ({"role": "mentee", "profile": replace(PROFILE, seeks=None)}, "seeks", "required-for-mentees"),
        ({"role": "mentee", "profile": replace(PROFILE, mentor_capacity=2)}, "mentor_capacity", "mentors-only"),
        (
            {"profile": replace(PROFILE, research_interests=tuple(f"t{i}" for i in range(21)))},
            "research_interests",
            "at-most-20",
        ),
    ],
)
def test_a_registration_is_refused_naming_the_field_and_the_rule(change: dict, field: str, rule: str) -> None:
    with pytest.raises(RuleBroken) as refused:
        register(replace(REGISTRATION, **change))
    assert (refused.value.extra["field"], refused.value.extra["rule"]) == (field, rule)


def test_a_role_the_programme_does_not_offer_is_refused() -> None:
    mentees_only = replace(AIMMS, roles_offered=("mentee",))
    with pytest.raises(RuleBroken) as refused:
        register(programme=mentees_only)
    assert refused.value.extra["rule"] == "role-offered"


def test_closed_programmes_and_suspended_institutions_refuse_registration() -> None:
    with pytest.raises(StateConflict):
        register(programme=replace(AIMMS, open_for_registration=False))
    suspended, _ = institutions.suspend(SCHOOL)
    with pytest.raises(StateConflict):
        participants.register(REGISTRATION, suspended, AIMMS, participant_id="p", now=NOW, background_key=KEY)
    with pytest.raises(Missing):
        participants.register(REGISTRATION, None, AIMMS, participant_id="p", now=NOW, background_key=KEY)


def test_a_mentee_only_registration_has_no_capacity_and_no_published_profile() -> None:
    participant, _ = register(replace(REGISTRATION, role="mentee", profile=replace(PROFILE, offers=None)))
    assert participant.profile.mentor_capacity is None
    assert participant.profile.publish_profile is False


def test_profile_updates_raise_what_changed() -> None:
    participant, _ = register()
    updated, events = participants.update_profile(
        participant,
        AIMMS,
        replace(participant.profile, mentor_capacity=2, job_title="Professor"),
        name="Prof Amina Okafor",
        background_key=KEY,
    )
    assert [type(e) for e in events] == [
        ParticipantProfileUpdated,
        ParticipantContact,
        ParticipantProfileText,
        MentorCapacityChanged,
    ]
    assert updated.name == "Prof Amina Okafor"
    unchanged, none = participants.update_profile(updated, AIMMS, updated.profile, background_key=KEY)
    assert none == [] and unchanged == updated


def test_an_empty_answer_withdraws_an_optional_demographic() -> None:
    participant, _ = register(replace(REGISTRATION, profile=replace(PROFILE, background_matching=False)))
    updated, events = participants.update_profile(
        participant, AIMMS, participant.profile, sensitive={"ethnicity": ""}, background_key=KEY
    )
    assert updated.sensitive == {"age_band": "30-39"}
    assert events == []


def test_background_matching_announces_a_keyed_token_equal_for_the_same_self_description() -> None:
    """Ethnicity never leaves registration: matching sees only whether two opted-in descriptions agree."""
    _, (nigerian, *_) = register()
    _, (same, *_) = register(replace(REGISTRATION, sensitive={"ethnicity": "nigerian (british)"}))
    _, (other, *_) = register(replace(REGISTRATION, sensitive={"ethnicity": "Pakistani"}))
    _, (not_opted_in, *_) = register(replace(REGISTRATION, profile=replace(PROFILE, background_matching=False)))
    _, (not_described, *_) = register(replace(REGISTRATION, sensitive={}))

    assert nigerian.background_token is not None and nigerian.background_token == same.background_token
    assert other.background_token not in (None, nigerian.background_token)
    assert not_opted_in.background_token is None and not_described.background_token is None
    assert "nigerian" not in nigerian.model_dump_json().lower()
    in_another_programme = participants.background_token("another-programme", "British Nigerian", KEY)
    assert in_another_programme != nigerian.background_token


def test_withdrawing_her_background_answer_withdraws_the_token_from_matching() -> None:
    participant, _ = register()
    updated, events = participants.update_profile(
        participant, AIMMS, participant.profile, sensitive={"ethnicity": ""}, background_key=KEY
    )
    (announced,) = events
    assert isinstance(announced, ParticipantProfileUpdated) and announced.background_token is None


REVERSE = programmes.define(
    Programme(
        programme_id="reverse",
        name="Reverse Mentoring",
        eligibility=(
            EligibilityStatement("student", "I am a student from an under-represented background.", ("mentor",)),
            EligibilityStatement("senior", "I hold a senior role.", ("mentee",)),
            EligibilityStatement("code", "I will keep what we discuss confidential."),
        ),
        roles_offered=("mentor", "mentee"),
        seniority_scale=("Student", "Professor", "Dean"),
        mentor_more_senior=False,
        sensitive_fields=("ethnicity", "age_band"),
    )
)


def test_each_role_confirms_only_its_own_eligibility_statements() -> None:
    """In reverse mentoring a Dean (mentee) never confirms 'I am a student'; the student mentor does."""
    dean = replace(
        REGISTRATION,
        programme_id="reverse",
        role="mentee",
        profile=replace(PROFILE, seniority="Dean", offers=None),
        confirmed_eligibility=("senior", "code"),
    )
    student = replace(
        REGISTRATION, programme_id="reverse", role="mentor", profile=replace(PROFILE, seniority="Student")
    )

    registered_dean, _ = register(dean, REVERSE)
    with pytest.raises(RuleBroken) as refused:
        register(replace(student, confirmed_eligibility=("senior", "code")), REVERSE)
    registered_student, _ = register(replace(student, confirmed_eligibility=("student", "code")), REVERSE)

    assert registered_dean.roles == ("mentee",) and registered_student.roles == ("mentor",)
    assert refused.value.detail == "not confirmed: student"
    both = replace(student, role="both", confirmed_eligibility=("student", "code"))
    with pytest.raises(RuleBroken, match="not confirmed: senior"):
        register(replace(both, profile=replace(PROFILE, seniority="Student")), REVERSE)


def test_a_statement_may_name_only_roles_the_programme_offers() -> None:
    mentors_only = replace(REVERSE, roles_offered=("mentor",))
    with pytest.raises(RuleBroken) as refused:
        programmes.define(mentors_only)
    assert refused.value.extra["field"] == "eligibility.1.roles"


def test_evaluation_consent_is_her_own_choice_recorded_with_the_information_sheet_version() -> None:
    without, (registered_without, *_) = register()
    consenting = replace(REGISTRATION, consents=REGISTRATION.consents | {"evaluation": "PIS-v3"})
    participant, (registered, *_) = register(consenting)

    assert not without.in_evaluation and registered_without.in_evaluation is False
    assert participant.in_evaluation and registered.in_evaluation is True
    assert ("evaluation", "PIS-v3") in [(c.kind, c.version) for c in participant.consents]

    withdrawn, (changed,) = participants.set_evaluation_consent(participant, None, now=NOW)
    assert not withdrawn.in_evaluation and changed.in_evaluation is False
    assert [c.withdrawn_at for c in withdrawn.consents if c.kind == "evaluation"] == [NOW]  # the record stays
    given, (again,) = participants.set_evaluation_consent(without, "PIS-v4", now=NOW)
    assert given.in_evaluation and again.in_evaluation is True
    assert participants.set_evaluation_consent(given, "PIS-v4", now=NOW)[1] == []  # no change, no event


def test_coordinators_can_exclude_a_consenting_participant_from_the_evaluation_with_a_reason() -> None:
    participant, _ = register(replace(REGISTRATION, consents=REGISTRATION.consents | {"evaluation": "PIS-v3"}))

    excluded, (left_out,) = participants.exclude_from_evaluation(participant, "committee member")
    included, (back,) = participants.exclude_from_evaluation(excluded, None)

    assert excluded.excluded_from_evaluation == "committee member" and not excluded.in_evaluation
    assert left_out.in_evaluation is False and back.in_evaluation is True and included.in_evaluation
    with pytest.raises(RuleBroken):
        participants.exclude_from_evaluation(participant, " ")


def test_a_withdrawn_participant_cannot_change_or_withdraw_again() -> None:
    participant, _ = register()
    withdrawn, [event] = participants.withdraw(participant, "moved abroad", now=NOW)
    assert withdrawn.status == "withdrawn" and event.reason == "moved abroad"
    with pytest.raises(StateConflict):
        participants.withdraw(withdrawn, None, now=NOW)
    with pytest.raises(StateConflict):
        participants.update_profile(withdrawn, AIMMS, withdrawn.profile, background_key=KEY)


def test_programmes_are_data_aimms_postgraduate_and_reverse_mentoring() -> None:
    reverse = programmes.define(
        replace(
            AIMMS, programme_id="reverse", name="Reverse", mentor_more_senior=False, term="P3M", follow_up_after="P3M"
        )
    )
    postgraduate = programmes.define(replace(AIMMS, programme_id="pg", name="Postgraduate", term="P1Y"))
    assert programmes.announcement(reverse, new=True).mentor_more_senior is False
    assert programmes.announcement(postgraduate, new=False).term == "P1Y"
    assert AIMMS.sensitive_fields == ("ethnicity", "age_band")  # ethnicity is always sensitive


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"term": "6 months"}, "term"),
        ({"follow_up_after": "P"}, "follow_up_after"),
        ({"seniority_scale": ("Lecturer", "Lecturer")}, "seniority_scale"),
        ({"default_mentor_capacity": 4, "max_mentor_capacity": 3}, "default_mentor_capacity"),
        ({"roles_offered": ()}, "roles_offered"),
    ],
)
def test_inconsistent_programme_settings_are_refused(change: dict, field: str) -> None:
    with pytest.raises(RuleBroken) as refused:
        programmes.define(replace(AIMMS, **change))
    assert refused.value.extra["field"] == field


@pytest.mark.parametrize("duration", ["P6M", "P1Y", "P2W", "PT30S", "P1DT12H"])
def test_iso_8601_durations_are_accepted(duration: str) -> None:
    assert programmes.define(replace(AIMMS, term=duration)).term == duration


def test_institutions_check_email_domains_including_subdomains() -> None:
    assert SCHOOL.email_domains == ("demo-university.ac.uk",)
    assert institutions.email_in_domains("a@demo-university.ac.uk", SCHOOL.email_domains)
    assert institutions.email_in_domains("a@med.demo-university.ac.uk", SCHOOL.email_domains)
    assert not institutions.email_in_domains("a@evil-demo-university.ac.uk", SCHOOL.email_domains)
    with pytest.raises(RuleBroken):
        institutions.onboard("x", "X", ["not a domain"], "a@x.org", None)


def test_suspension_and_reactivation_toggle_and_refuse_repeats() -> None:
    suspended, _ = institutions.suspend(SCHOOL)
    with pytest.raises(StateConflict):
        institutions.suspend(suspended)
    active, _ = institutions.reactivate(suspended)
    assert active.active


def test_expressions_of_interest_carry_the_registration_link() -> None:
    school = replace(SCHOOL, registration_url="https://portal.example/aimms")
    submission = InterestSubmission("Amina", "amina@example.org", "demo-university", "aimms-mentoring")
    interest, [event, contact] = express_interest(submission, school, AIMMS, interest_id="i-1", now=NOW)
    assert event.registration_url == "https://portal.example/aimms"
    assert interest.email_key == "amina@example.org"
    # Her name and address travel only as her contact, on the compacted topic her erasure's tombstone reaches.
    assert "amina@example.org" not in event.model_dump_json() and "Amina" not in event.model_dump_json()
    assert (contact.topic.compacted, contact.key(), contact.email) == (True, "interest:i-1", "amina@example.org")


def test_secrets_are_stored_as_salted_hashes_and_checked() -> None:
    stored = credentials.hash_secret("s3cret")
    assert "s3cret" not in stored and stored != credentials.hash_secret("s3cret")
    assert credentials.secret_matches("s3cret", stored)
    assert not credentials.secret_matches("wrong", stored)


def test_portal_credentials_cannot_hold_admin_and_admin_credentials_have_no_institution() -> None:
    assert credentials.check_scopes("demo-university", ["participants:read"]) == ("participants:read",)
    with pytest.raises(RuleBroken):
        credentials.check_scopes("demo-university", ["admin"])
    with pytest.raises(RuleBroken):
        credentials.check_scopes(None, ["participants:read"])
    assert credentials.check_scopes(None, ["admin"]) == ("admin",)


# -- links to her programme's page


def test_a_page_link_is_stored_only_as_the_hash_of_the_secret_it_emails() -> None:
    participant, _ = register()
    link, event = page_links.issue(participant, "https://aimms.example/portal/", now=NOW)

    secret = event.url.removeprefix("https://aimms.example/portal/me/links/")
    assert len(secret) >= 40 and secret not in link.link_id
    assert link.link_id == page_links.link_id(secret)
    assert (event.participant_id, event.programme_id) == (participant.participant_id, participant.programme_id)
    assert event.expires_at == link.expires_at == NOW + page_links.LIFETIME
    assert participant.email not in event.model_dump_json() and participant.name not in event.model_dump_json()


def test_a_page_link_is_sent_only_to_an_active_registration_and_not_twice_in_a_row() -> None:
    participant, _ = register()
    withdrawn, _ = participants.withdraw(participant, None, now=NOW)

    assert page_links.may_send(participant, None, NOW)
    assert not page_links.may_send(withdrawn, None, NOW)
    assert not page_links.may_send(participant, NOW - timedelta(seconds=30), NOW)
    assert page_links.may_send(participant, NOW - page_links.RESEND_AFTER, NOW)


def test_a_participant_acts_for_herself_and_nobody_else_at_her_institution() -> None:
    herself = Principal("participant:p-1", "demo-university", frozenset({SELF}), participant_id="p-1")
    school = Principal("portal-1", "demo-university", frozenset({PARTICIPANTS_READ}))

    assert herself.may_act_for("demo-university", "p-1")
    assert not herself.may_act_for("demo-university", "p-2")
    assert not herself.may_act_for("demo-university")  # an institution-wide action is never hers
    assert school.may_act_for("demo-university", "p-2") and not school.may_act_for("northgate", "p-2")


# -- the scheme's own page, for people whose institution is not a member


def test_interest_on_the_schemes_page_goes_to_her_member_institution_or_the_schemes_tenancy() -> None:
    tenancy, onboarded = institutions.scheme_tenancy()
    open_programme = replace(AIMMS, open_to_non_members=True)
    members = [SCHOOL, tenancy]

    def routed(email: str, programme: Programme = open_programme) -> str:
        submission = InterestSubmission("Dr Ama Mensah", email, "", "aimms-mentoring", "Kingston University")
        return interests.from_the_schemes_page(submission, members, programme).institution_id

    assert routed("ama@kingston.ac.uk") == "scheme" == onboarded.institution_id
    assert routed("ama@med.demo-university.ac.uk") == "demo-university"  # her portal sees her
    with pytest.raises(StateConflict) as closed:
        routed("ama@kingston.ac.uk", AIMMS)
    assert closed.value.extra["rule"] == "open-to-non-members"


def test_the_schemes_tenancy_registers_any_address_and_a_member_only_its_own() -> None:
    tenancy, _ = institutions.scheme_tenancy()
    assert institutions.accepts_address(tenancy, "ama@kingston.ac.uk")
    assert not institutions.accepts_address(SCHOOL, "ama@kingston.ac.uk")
    participant, _ = participants.register(
        replace(REGISTRATION, email="ama@kingston.ac.uk"),
        tenancy,
        AIMMS,
        participant_id="p-9",
        now=NOW,
        background_key=KEY,
    )
    assert participant.institution_id == "scheme"


def test_a_circles_programme_offers_peers_and_facilitators_and_a_pairs_programme_mentors_and_mentees() -> None:
    circles = programmes.define(
        replace(AIMMS, programme_id="circles", kind="circles", roles_offered=("peer", "facilitator"))
    )
    assert programmes.announcement(circles, new=True).kind == "circles"

    with pytest.raises(RuleBroken) as mixed:
        programmes.define(replace(AIMMS, kind="circles", roles_offered=("peer", "mentor")))
    assert mixed.value.extra["rule"] == "roles"
    with pytest.raises(RuleBroken) as unknown:
        programmes.define(replace(AIMMS, kind="triads"))
    assert unknown.value.extra["rule"] == "programme-kind"
    with pytest.raises(RuleBroken):
        programmes.define(replace(AIMMS, roles_offered=("peer",)))


def test_a_peer_registers_in_a_circles_programme_and_no_one_as_a_mentor_there() -> None:
    circles = programmes.define(
        replace(AIMMS, programme_id="circles", kind="circles", roles_offered=("peer", "facilitator"))
    )
    peer = replace(REGISTRATION, programme_id="circles", role="peer", confirmed_eligibility=("woman",))
    participant, _ = register(peer, circles)
    assert participant.roles == ("peer",) and participant.profile.mentor_capacity is None

    with pytest.raises(RuleBroken) as refused:
        register(replace(peer, role="mentor"), circles)
    assert refused.value.extra["rule"] == "role-offered"
