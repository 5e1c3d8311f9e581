"""Registration's use cases over an in-memory store: institutions and their credentials, programmes, interest,
a participant's registration, changes, withdrawal and erasure, and the links to her programme's page."""

import json
import uuid
from dataclasses import replace
from typing import Any

import pytest

from aimms_registration import use_cases
from aimms_registration.domain import credentials, page_links
from aimms_registration.domain.interests import InterestSubmission
from aimms_registration.domain.participants import Participant, Profile, Registration
from aimms_registration.domain.programmes import Programme
from aimms_registration.tokens import TokenIssuer, new_signing_key_pem
from aimms_shared.auth import TokenVerifier, Unauthenticated
from aimms_shared.errors import Missing, RuleBroken, StateConflict
from aimms_shared.events import decode, payload
from aimms_shared.outbox import ConcurrentUpdate
from aimms_shared.principal import ADMIN, PARTICIPANTS_READ, PARTICIPANTS_WRITE, PROFILES_READ, SELF, Principal
from tests.factories import aimms_programme, interest_expressed
from tests.fakes import FakeRegistrationStore

SCHOOL = "demo-university"
PORTAL = Principal("demo-portal", SCHOOL, frozenset({PARTICIPANTS_WRITE, PARTICIPANTS_READ}))
OTHER_PORTAL = Principal("northgate-portal", "northgate", frozenset({PARTICIPANTS_WRITE, PARTICIPANTS_READ}))
COORDINATOR = Principal("coordinator", None, frozenset({ADMIN}))
ISSUER = TokenIssuer(new_signing_key_pem(), issuer="https://registration.test", ttl_seconds=300)
PAGES = "https://portal.test"
AIMMS = aimms_programme()
POSTGRADUATE = replace(AIMMS, programme_id="postgraduate", name="Postgraduate Mentoring")
AMINA = "amina@demo-university.ac.uk"


def herself(participant_id: str) -> Principal:
    """Her own token, as her page link gives it."""
    return Principal(f"participant:{participant_id}", SCHOOL, frozenset({SELF}), participant_id=participant_id)


def registration(role: str = "mentee", **changes: Any) -> Registration:
    """Dr Amina Okafor's registration at Demo University; override any field."""
    mentor = role in ("mentor", "both")
    profile = Profile(
        job_title="Clinical lecturer",
        seniority="Lecturer",
        pathway="clinical",
        research_interests=("global health",),
        offers="grant writing" if mentor else None,
        seeks="advice on fellowships" if role != "mentor" else None,
        mentor_capacity=2 if mentor else None,
        publish_profile=mentor,
        background_matching=True,
    )
    fields = {
        "name": "Dr Amina Okafor",
        "email": AMINA,
        "institution_id": SCHOOL,
        "programme_id": AIMMS.programme_id,
        "role": role,
        "profile": profile,
        "consents": {"privacy_notice": "2025-01", "code_of_conduct": "v2", "confidentiality": "v1"},
        "confirmed_eligibility": ("woman",),
        "sensitive": {"ethnicity": "British Nigerian", "age_band": "30-39"},
    }
    return Registration(**(fields | changes))


def interest(email: str = AMINA, programme_id: str = AIMMS.programme_id, **changes: Any) -> InterestSubmission:
    return InterestSubmission("Dr Amina Okafor", email, SCHOOL, programme_id, **changes)


async def scheme(*opened: Programme) -> tuple[FakeRegistrationStore, tuple[str, str]]:
    """Demo University onboarded with the programmes open; its portal's client id and secret. The set-up's events
    are dropped."""
    store = FakeRegistrationStore()
    _, credential, secret = await use_cases.onboard_institution(
        store,
        institution_id=SCHOOL,
        name="Demo University Medical School",
        email_domains=["demo-university.ac.uk"],
        contact_email="mentoring@demo-university.ac.uk",
        registration_url="https://portal.demo-university.ac.uk/aimms",
    )
    for programme in opened or (AIMMS,):
        await use_cases.create_programme(store, programme)
    store.events.clear()
    return store, (credential.client_id, secret)


async def registered(store: FakeRegistrationStore, participant_id: str | None = None, **changes: Any) -> Participant:
    return await use_cases.register_participant(store, registration(**changes), participant_id or str(uuid.uuid4()))


def written(store: FakeRegistrationStore, event_type: str) -> list[dict[str, Any]]:
    """The payloads of the events of one type written so far, in order."""
    return [json.loads(e["value"])["payload"] for e in store.events if e["event_type"] == event_type]


def secret_in(url: str) -> str:
    return url.removeprefix(f"{PAGES}/me/links/")


async def principal_of(token: str) -> Principal:
    """Who a token stands for, as every service verifies it."""

    async def jwks() -> dict[str, Any]:
        return ISSUER.jwks()

    return await TokenVerifier(jwks, issuer="https://registration.test").verify(token)


# -- institutions and credentials


async def test_an_onboarded_institution_gets_a_portal_credential_whose_secret_is_kept_only_as_a_hash() -> None:
    store = FakeRegistrationStore()
    northgate = {
        "institution_id": "northgate",
        "name": " Northgate School of Medicine ",
        "email_domains": ["@Northgate.ac.uk"],
        "contact_email": "m@northgate.ac.uk",
        "registration_url": None,
    }
    institution, credential, secret = await use_cases.onboard_institution(store, **northgate)

    assert store.institutions_by_id["northgate"] == institution and institution.active
    kept = store.credentials_by_id[credential.client_id]
    assert (kept.institution_id, kept.scopes) == ("northgate", (PARTICIPANTS_WRITE, PARTICIPANTS_READ, PROFILES_READ))
    assert secret not in kept.secret_hash and credentials.secret_matches(secret, kept.secret_hash)
    assert store.event_types() == ["InstitutionOnboarded"]
    assert written(store, "InstitutionOnboarded") == [
        {"institution_id": "northgate", "name": "Northgate School of Medicine", "email_domains": ["northgate.ac.uk"]}
    ]
    assert decode(store.events[0]["value"].encode()).institution_id == "northgate"

    another = {"name": "Another", "email_domains": ["another.ac.uk"], "contact_email": "a@another.ac.uk"}
    with pytest.raises(StateConflict) as taken:
        await use_cases.onboard_institution(store, **(northgate | another))
    assert taken.value.extra["rule"] == "unique"
    assert store.institutions_by_id["northgate"].name == "Northgate School of Medicine"
    assert len(store.credentials_by_id) == 1 and store.event_types() == ["InstitutionOnboarded"]


async def test_a_portal_gets_a_token_for_the_scopes_it_asks_for_and_no_more() -> None:
    store, (client_id, secret) = await scheme()

    token, everything = await use_cases.issue_token(store, ISSUER, client_id, secret, None)
    _, reading = await use_cases.issue_token(store, ISSUER, client_id, secret, [PARTICIPANTS_READ])

    portal = await principal_of(token)
    assert (portal.client_id, portal.institution_id, portal.scopes) == (client_id, SCHOOL, frozenset(everything))
    assert everything == (PARTICIPANTS_WRITE, PARTICIPANTS_READ, PROFILES_READ) and reading == (PARTICIPANTS_READ,)
    _, named_twice = await use_cases.issue_token(store, ISSUER, client_id, secret, [PARTICIPANTS_READ] * 2)
    assert named_twice == (PARTICIPANTS_READ,)
    with pytest.raises(RuleBroken) as refused:
        await use_cases.issue_token(store, ISSUER, client_id, secret, [PARTICIPANTS_READ, ADMIN])
    assert refused.value.extra["rule"] == "granted-scopes"
    with pytest.raises(Unauthenticated):
        await use_cases.issue_token(store, ISSUER, client_id, "not-the-secret", None)
    with pytest.raises(Unauthenticated):
        await use_cases.issue_token(store, ISSUER, "nobody", secret, None)


async def test_a_rotated_secret_stops_working_at_once_and_a_revoked_credential_gets_no_tokens() -> None:
    store, (client_id, old) = await scheme()

    rotated, new = await use_cases.rotate_credential(store, client_id)

    with pytest.raises(Unauthenticated):
        await use_cases.issue_token(store, ISSUER, client_id, old, None)
    assert (await use_cases.issue_token(store, ISSUER, client_id, new, None))[1] == rotated.scopes
    revoked = await use_cases.revoke_credential(store, client_id)
    assert revoked.revoked_at is not None and store.credentials_by_id[client_id].revoked_at == revoked.revoked_at
    with pytest.raises(Unauthenticated):
        await use_cases.issue_token(store, ISSUER, client_id, new, None)
    again = await use_cases.revoke_credential(store, client_id)
    assert again.revoked_at == revoked.revoked_at  # revoked once, when it first was
    with pytest.raises(Missing):
        await use_cases.rotate_credential(store, "nobody")


async def test_credentials_are_refused_for_an_institution_not_onboarded_or_with_the_wrong_kind_of_scope() -> None:
    store, _ = await scheme()

    with pytest.raises(Missing):
        await use_cases.create_credential(store, name="x", institution_id="nowhere", scopes=[PARTICIPANTS_READ])
    with pytest.raises(RuleBroken) as portal_admin:
        await use_cases.create_credential(store, name="x", institution_id=SCHOOL, scopes=[ADMIN])
    with pytest.raises(RuleBroken) as admin_portal:
        await use_cases.create_credential(store, name="x", institution_id=None, scopes=[PARTICIPANTS_READ])

    assert (portal_admin.value.extra["rule"], admin_portal.value.extra["rule"]) == ("portal-scopes", "admin-credential")
    assert len(store.credentials_by_id) == 1  # the portal's first, from onboarding


async def test_the_bootstrap_administrator_is_created_once_and_never_overwritten() -> None:
    store = FakeRegistrationStore()

    await use_cases.ensure_admin_credential(store, "bootstrap", "first-secret")
    await use_cases.ensure_admin_credential(store, "bootstrap", "second-secret")  # a restart with other config

    token, scopes = await use_cases.issue_token(store, ISSUER, "bootstrap", "first-secret", None)
    assert scopes == (ADMIN,) and (await principal_of(token)).is_admin
    with pytest.raises(Unauthenticated):
        await use_cases.issue_token(store, ISSUER, "bootstrap", "second-secret", None)


async def test_a_suspended_institution_gets_no_tokens_and_registers_no_one_until_reactivated() -> None:
    store, (client_id, secret) = await scheme()

    suspended = await use_cases.set_institution_active(store, SCHOOL, False)

    assert not suspended.active and suspended == store.institutions_by_id[SCHOOL] and suspended.version == 2
    with pytest.raises(Unauthenticated):
        await use_cases.issue_token(store, ISSUER, client_id, secret, None)
    with pytest.raises(StateConflict) as refused:
        await registered(store)
    assert refused.value.extra["rule"] == "active-institution"
    with pytest.raises(StateConflict):
        await use_cases.set_institution_active(store, SCHOOL, False)

    reactivated = await use_cases.set_institution_active(store, SCHOOL, True)

    assert reactivated == store.institutions_by_id[SCHOOL] and reactivated.version == 3
    assert (await registered(store)).institution_id == SCHOOL
    assert store.event_types() == [
        "InstitutionSuspended",
        "InstitutionReactivated",
        "ParticipantRegistered",
        "ParticipantContact",
        "ParticipantProfileText",
    ]
    with pytest.raises(Missing):
        await use_cases.set_institution_active(store, "nowhere", False)


# -- programmes


async def test_a_programme_is_opened_once_and_changed_as_data_each_announced_in_full() -> None:
    store, _ = await scheme(POSTGRADUATE)

    opened = await use_cases.create_programme(store, AIMMS)
    with pytest.raises(StateConflict):
        await use_cases.create_programme(store, replace(AIMMS, name="Another"))
    closed = await use_cases.update_programme(store, replace(AIMMS, open_for_registration=False, term="P1Y"))

    assert opened.sensitive_fields == ("ethnicity", "age_band")  # ethnicity is always sensitive
    assert closed == store.programmes_by_id[AIMMS.programme_id] and closed.version == 2
    assert store.event_types() == ["ProgrammeOpened", "ProgrammeUpdated"]
    [announced] = written(store, "ProgrammeUpdated")
    assert (announced["programme_id"], announced["open_for_registration"], announced["term"]) == (
        AIMMS.programme_id,
        False,
        "P1Y",
    )
    with pytest.raises(StateConflict) as refused:
        await use_cases.express_interest(store, interest())
    assert refused.value.extra["rule"] == "open-programme"


async def test_programme_settings_that_do_not_hang_together_or_name_no_programme_change_nothing() -> None:
    store, _ = await scheme()

    with pytest.raises(RuleBroken) as inconsistent:
        await use_cases.update_programme(store, replace(AIMMS, term="six months"))
    with pytest.raises(Missing):
        await use_cases.update_programme(store, replace(AIMMS, programme_id="nowhere"))
    with pytest.raises(RuleBroken):
        await use_cases.create_programme(store, replace(AIMMS, programme_id="new", roles_offered=()))

    assert inconsistent.value.extra["field"] == "term"
    assert store.programmes_by_id == {AIMMS.programme_id: AIMMS} and store.events == []


async def test_a_participant_sees_only_her_own_programme_and_portals_see_any() -> None:
    store, _ = await scheme(AIMMS, POSTGRADUATE)
    amina = await registered(store)

    assert await use_cases.programme_for(store, herself(amina.participant_id), AIMMS.programme_id) == AIMMS
    assert await use_cases.programme_for(store, OTHER_PORTAL, POSTGRADUATE.programme_id) == POSTGRADUATE
    with pytest.raises(Missing):
        await use_cases.programme_for(store, herself(amina.participant_id), POSTGRADUATE.programme_id)
    with pytest.raises(Missing):
        await use_cases.programme_for(store, herself("someone-erased"), AIMMS.programme_id)


# -- expressions of interest


async def test_interest_is_recorded_and_welcomed_once_per_programme_and_address() -> None:
    store, _ = await scheme(AIMMS, POSTGRADUATE)

    interest_id, created = await use_cases.express_interest(store, interest())
    again = await use_cases.express_interest(store, interest(email=" Amina@Demo-University.AC.UK "))
    elsewhere = await use_cases.express_interest(store, interest(programme_id=POSTGRADUATE.programme_id))

    assert created and again == (interest_id, False)
    assert elsewhere[1] and elsewhere[0] != interest_id
    assert len(store.interests_by_id) == 2
    assert store.event_types() == ["InterestExpressed", "ParticipantContact"] * 2
    assert payload(decode(store.events[0]["value"].encode())) == interest_expressed(interest_id=interest_id)
    [contact, _] = written(store, "ParticipantContact")
    assert (contact["participant_id"], contact["email"]) == (f"interest:{interest_id}", AMINA)


async def test_interest_in_a_programme_not_open_or_through_an_institution_not_onboarded_writes_nothing() -> None:
    store, _ = await scheme()
    await use_cases.update_programme(store, replace(AIMMS, open_for_registration=False))
    store.events.clear()

    with pytest.raises(StateConflict):
        await use_cases.express_interest(store, interest())
    with pytest.raises(Missing) as no_programme:
        await use_cases.express_interest(store, interest(programme_id="nowhere"))
    with pytest.raises(Missing) as no_institution:
        await use_cases.express_interest(store, replace(interest(), institution_id="nowhere"))

    assert (no_programme.value.extra["field"], no_institution.value.extra["field"]) == (
        "programme_id",
        "institution_id",
    )
    assert store.interests_by_id == {} and store.events == []


async def test_interest_on_the_schemes_page_goes_to_her_member_institution_or_else_the_schemes_tenancy() -> None:
    store, _ = await scheme(replace(AIMMS, open_to_non_members=True))
    await use_cases.ensure_scheme_tenancy(store)
    await use_cases.ensure_scheme_tenancy(store)  # every start: created once

    def on_the_page(name: str, email: str) -> InterestSubmission:
        return InterestSubmission(name, email, "", AIMMS.programme_id, declared_institution="Kingston University")

    outsider, _ = await use_cases.express_interest_on_the_schemes_page(store, on_the_page("Ama", "ama@kingston.ac.uk"))
    member, _ = await use_cases.express_interest_on_the_schemes_page(
        store, on_the_page("Bisi", "bisi@demo-university.ac.uk")
    )

    assert store.interests_by_id[outsider].institution_id == "scheme"
    assert store.interests_by_id[outsider].declared_institution == "Kingston University"
    assert store.interests_by_id[member].institution_id == SCHOOL  # her portal sees her
    assert store.event_types() == ["InstitutionOnboarded"] + ["InterestExpressed", "ParticipantContact"] * 2
    welcomed = [decode(e["value"].encode()) for e in store.events[1:] if e["event_type"] == "InterestExpressed"]
    assert [(e.institution_id, e.payload["institution_id"]) for e in welcomed] == [
        ("scheme", "scheme"),
        (SCHOOL, SCHOOL),
    ]
    assert welcomed[0].payload["registration_url"] is None  # coordinators register her; there is no portal


async def test_a_programme_closed_to_non_members_takes_no_interest_on_the_schemes_page() -> None:
    store, _ = await scheme()
    await use_cases.ensure_scheme_tenancy(store)
    store.events.clear()

    with pytest.raises(StateConflict) as refused:
        await use_cases.express_interest_on_the_schemes_page(
            store, InterestSubmission("Ama", "ama@kingston.ac.uk", "", AIMMS.programme_id)
        )

    assert refused.value.extra["rule"] == "open-to-non-members"
    assert store.interests_by_id == {} and store.events == []


# -- participants


async def test_registration_raises_her_profile_and_contact_record_and_never_her_special_category_answers() -> None:
    store, _ = await scheme()

    amina = await registered(store, role="both")

    assert store.participants_by_id[amina.participant_id] == amina
    assert amina.sensitive == {"ethnicity": "British Nigerian", "age_band": "30-39"}
    assert store.event_types() == ["ParticipantRegistered", "ParticipantContact", "ParticipantProfileText"]
    [profile] = written(store, "ParticipantRegistered")
    [contact] = written(store, "ParticipantContact")
    [text] = written(store, "ParticipantProfileText")
    assert (profile["participant_id"], profile["roles"], profile["mentor_capacity"]) == (
        amina.participant_id,
        ["mentor", "mentee"],
        2,
    )
    assert profile["background_token"] is not None  # she asked to be matched by background
    assert (contact["name"], contact["email"]) == ("Dr Amina Okafor", AMINA)
    assert "job_title" not in profile and text["job_title"] == amina.profile.job_title  # her words, compacted
    assert [e["key"] for e in store.events] == [amina.participant_id] * 2 + [f"profile:{amina.participant_id}"]
    for entry in store.events:
        assert "nigerian" not in entry["value"].lower() and "30-39" not in entry["value"]


async def test_an_address_registers_once_per_programme_whatever_its_case_and_may_join_another() -> None:
    store, _ = await scheme(AIMMS, POSTGRADUATE)
    first = await registered(store)

    with pytest.raises(StateConflict) as twice:
        await registered(store, email=" AMINA@demo-university.ac.uk")
    elsewhere = await registered(store, programme_id=POSTGRADUATE.programme_id)

    assert twice.value.extra["rule"] == "one-registration-per-programme"
    assert set(store.participants_by_id) == {first.participant_id, elsewhere.participant_id}
    assert store.event_types().count("ParticipantRegistered") == 2


async def test_a_try_after_a_crash_finds_her_registered_under_its_own_id_and_answers_with_her() -> None:
    """Every try of one idempotency key registers under the same id: the first wrote, then its process died
    before it could answer; the next try answers with her instead of refusing her address."""
    store, _ = await scheme()
    first = await registered(store, participant_id="p-1")

    again = await registered(store, participant_id="p-1")

    assert again == first and store.event_types().count("ParticipantRegistered") == 1


async def test_a_registration_refused_by_a_rule_writes_nothing() -> None:
    store, _ = await scheme()

    with pytest.raises(RuleBroken) as refused:
        await registered(store, email="amina@gmail.com")

    assert refused.value.extra["rule"] == "institution-email-domain"
    assert store.participants_by_id == {} and store.events == []


async def test_a_portal_sees_and_changes_only_its_own_institutions_participants_and_she_only_herself() -> None:
    store, _ = await scheme()
    amina = await registered(store)
    pid = amina.participant_id

    assert await use_cases.participant_for(store, PORTAL, pid) == amina
    assert await use_cases.participant_for(store, COORDINATOR, pid) == amina
    assert await use_cases.participant_for(store, herself(pid), pid) == amina
    refusals = []
    for caller, wanted in ((OTHER_PORTAL, pid), (herself("someone-else"), pid), (PORTAL, "nobody")):
        with pytest.raises(Missing) as refused:
            await use_cases.participant_for(store, caller, wanted)
        refusals.append(refused.value.extra)
    with pytest.raises(Missing):
        await use_cases.update_participant(store, OTHER_PORTAL, pid, {"job_title": "Professor"})
    with pytest.raises(Missing):
        await use_cases.withdraw_participant(store, OTHER_PORTAL, pid, None)

    # Another institution's participant and nobody at all get the same answer: ids reveal nothing.
    assert refusals == [{"field": "participant_id", "rule": "own-institution"}] * 3
    assert store.participants_by_id[pid] == amina and store.event_types() == [
        "ParticipantRegistered",
        "ParticipantContact",
        "ParticipantProfileText",
    ]


async def test_profile_changes_raise_what_changed_and_each_save_moves_her_version_on() -> None:
    store, _ = await scheme()
    amina = await registered(store, role="mentor")
    store.events.clear()

    changed = await use_cases.update_participant(
        store, PORTAL, amina.participant_id, {"mentor_capacity": 3, "name": "Prof Amina Okafor"}
    )
    unchanged = await use_cases.update_participant(store, herself(amina.participant_id), amina.participant_id, {})

    assert changed.version == 2 and unchanged.version == 3
    assert unchanged == store.participants_by_id[amina.participant_id]
    assert (unchanged.name, unchanged.profile.mentor_capacity) == ("Prof Amina Okafor", 3)
    assert store.event_types() == ["ParticipantProfileUpdated", "ParticipantContact", "MentorCapacityChanged"]
    assert written(store, "MentorCapacityChanged")[0]["mentor_capacity"] == 3
    assert written(store, "ParticipantContact")[0]["name"] == "Prof Amina Okafor"
    with pytest.raises(RuleBroken) as refused:
        await use_cases.update_participant(store, PORTAL, amina.participant_id, {"email": "amina@gmail.com"})
    with pytest.raises(RuleBroken):
        await use_cases.update_participant(store, PORTAL, amina.participant_id, {"mentor_capacity": 4})
    assert refused.value.extra["rule"] == "institution-email-domain"
    assert store.participants_by_id[amina.participant_id] == unchanged and len(store.events) == 3


async def test_a_new_background_answer_changes_only_the_token_matching_compares() -> None:
    store, _ = await scheme()
    amina = await registered(store)
    [before] = written(store, "ParticipantRegistered")
    store.events.clear()

    updated = await use_cases.update_participant(store, PORTAL, amina.participant_id, {"ethnicity": "Pakistani"})
    withdrawn = await use_cases.update_participant(store, PORTAL, amina.participant_id, {"ethnicity": ""})

    assert updated.sensitive["ethnicity"] == "Pakistani" and "ethnicity" not in withdrawn.sensitive
    tokens = [p["background_token"] for p in written(store, "ParticipantProfileUpdated")]
    assert len(tokens) == 2 and tokens[0] not in (None, before["background_token"]) and tokens[1] is None
    assert all("pakistani" not in e["value"].lower() for e in store.events)


async def test_a_change_decided_on_a_stale_read_is_refused_not_saved_over(monkeypatch: pytest.MonkeyPatch) -> None:
    store, _ = await scheme()
    amina = await registered(store)
    read_institution = store.institution

    async def withdrawn_meanwhile(institution_id: str) -> Any:
        # Another request lands between this one's read of her record and its write.
        await use_cases.withdraw_participant(store, PORTAL, amina.participant_id, "moved abroad")
        return await read_institution(institution_id)

    monkeypatch.setattr(store, "institution", withdrawn_meanwhile)
    with pytest.raises(ConcurrentUpdate):
        await use_cases.update_participant(store, PORTAL, amina.participant_id, {"job_title": "Professor"})

    kept = store.participants_by_id[amina.participant_id]
    assert (kept.status, kept.profile.job_title, kept.version) == ("withdrawn", "Clinical lecturer", 2)
    assert store.event_types()[-1] == "ParticipantWithdrawn"
    assert "ParticipantProfileUpdated" not in store.event_types()


async def test_evaluation_status_is_announced_only_when_her_consent_or_an_exclusion_changes_it() -> None:
    store, _ = await scheme()
    amina = await registered(store)
    pid = amina.participant_id
    store.events.clear()

    consented = await use_cases.set_evaluation_consent(store, herself(pid), pid, "PIS-v3")
    await use_cases.set_evaluation_consent(store, herself(pid), pid, "PIS-v3")  # a repeat, to the same sheet
    excluded = await use_cases.exclude_from_evaluation(store, COORDINATOR, pid, "committee member")
    await use_cases.exclude_from_evaluation(store, COORDINATOR, pid, None)

    assert consented.in_evaluation and not excluded.in_evaluation
    assert store.participants_by_id[pid].in_evaluation and store.participants_by_id[pid].version == 5
    assert [p["in_evaluation"] for p in written(store, "EvaluationParticipationChanged")] == [True, False, True]
    assert store.event_types() == ["EvaluationParticipationChanged"] * 3
    with pytest.raises(RuleBroken):
        await use_cases.exclude_from_evaluation(store, COORDINATOR, pid, "  ")


async def test_a_withdrawn_participant_is_kept_but_changes_nothing_more() -> None:
    store, _ = await scheme()
    amina = await registered(store)
    pid = amina.participant_id
    store.events.clear()

    withdrawn = await use_cases.withdraw_participant(store, PORTAL, pid, "moved abroad")

    kept = store.participants_by_id[pid]
    assert withdrawn == kept and kept.version == amina.version + 1
    assert (kept.status, kept.withdrawal_reason, kept.withdrawn_at) == (
        "withdrawn",
        "moved abroad",
        withdrawn.withdrawn_at,
    )
    assert written(store, "ParticipantWithdrawn") == [
        {"participant_id": pid, "programme_id": AIMMS.programme_id, "institution_id": SCHOOL, "reason": "moved abroad"}
    ]
    with pytest.raises(StateConflict):
        await use_cases.withdraw_participant(store, PORTAL, pid, None)
    with pytest.raises(StateConflict):
        await use_cases.update_participant(store, PORTAL, pid, {"job_title": "Professor"})
    await use_cases.send_page_links(store, AMINA, PAGES)
    assert store.event_types() == ["ParticipantWithdrawn"] and store.page_links_by_id == {}


async def test_the_interest_she_registered_after_is_exported_and_erased_though_her_address_changed() -> None:
    store, _ = await scheme()
    interest_id, _ = await use_cases.express_interest(store, interest())
    amina = await registered(store)
    moved = "amina.okafor@demo-university.ac.uk"
    await use_cases.update_participant(store, PORTAL, amina.participant_id, {"email": moved})

    exported = await use_cases.export_participant(store, PORTAL, amina.participant_id)
    assert exported["expression_of_interest"]["_id"] == interest_id

    await use_cases.erase_participant(store, PORTAL, amina.participant_id)
    assert interest_id not in store.interests_by_id and await store.interest_of(AIMMS.programme_id, AMINA) is None


async def test_erasure_leaves_only_ids_here_and_tombstones_her_contact_record() -> None:
    store, _ = await scheme()
    await use_cases.express_interest(store, interest())
    amina = await registered(store)
    pid = amina.participant_id
    await use_cases.send_page_links(store, AMINA, PAGES)
    [link] = written(store, "ParticipantLinkIssued")
    store.events.clear()

    await use_cases.erase_participant(store, PORTAL, pid)

    assert await store.participant(pid) is None
    remains = await store.raw_participant(pid)
    assert remains is not None and remains["status"] == "erased"
    assert not {"name", "email", "profile", "sensitive", "consents"} & remains.keys()
    assert await store.interest_of(AIMMS.programme_id, AMINA) is None
    with pytest.raises(page_links.PageLinkUnusable):
        await use_cases.open_page(store, ISSUER, secret_in(link["url"]))
    assert store.page_links_by_id == {}  # gone, not only refused: they name her
    assert store.event_types() == ["ParticipantErased", "tombstone", "tombstone", "tombstone"]
    tombstones = [(e["topic"], e["key"], e["value"]) for e in store.events[1:]]
    interest_key = f"interest:{amina.interest_id}"  # her name and address as she expressed interest
    assert tombstones == [("registration.contacts", key, None) for key in (pid, f"profile:{pid}", interest_key)]
    assert written(store, "ParticipantErased")[0]["interest_id"] == amina.interest_id
    assert written(store, "ParticipantErased")[0]["participant_id"] == pid
    with pytest.raises(Missing):
        await use_cases.erase_participant(store, PORTAL, pid)


async def test_an_erasure_decided_on_a_stale_read_is_refused_and_erases_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, _ = await scheme()
    amina = await registered(store)
    store.events.clear()
    read = store.participant

    async def changed_meanwhile(participant_id: str) -> Participant | None:
        stale = await read(participant_id)
        if stale is not None:  # another request's write lands after this read
            await store.save_participant(replace(stale, name="Prof Amina Okafor"), [])
        return stale

    monkeypatch.setattr(store, "participant", changed_meanwhile)
    with pytest.raises(StateConflict) as refused:
        await use_cases.erase_participant(store, PORTAL, amina.participant_id)

    assert refused.value.extra["rule"] == "concurrent-update"
    assert store.participants_by_id[amina.participant_id].name == "Prof Amina Okafor"
    assert store.erased == {} and store.events == []


async def test_after_erasure_her_address_may_express_interest_and_register_afresh() -> None:
    store, _ = await scheme()
    first_interest, _ = await use_cases.express_interest(store, interest())
    amina = await registered(store)
    await use_cases.erase_participant(store, COORDINATOR, amina.participant_id)

    interest_id, created = await use_cases.express_interest(store, interest())
    again = await registered(store)

    assert created and interest_id != first_interest
    assert again.participant_id != amina.participant_id and again.email == AMINA


async def test_her_export_holds_her_record_her_answers_in_the_clear_and_her_interest() -> None:
    store, _ = await scheme()
    await use_cases.express_interest(store, interest())
    amina = await registered(store)

    exported = await use_cases.export_participant(store, herself(amina.participant_id), amina.participant_id)

    assert exported["participant"]["_id"] == amina.participant_id and exported["participant"]["email"] == AMINA
    assert exported["participant"]["sensitive"] == {"ethnicity": "British Nigerian", "age_band": "30-39"}
    assert exported["expression_of_interest"]["name"] == "Dr Amina Okafor"
    assert exported["exported_at"] is not None
    with pytest.raises(Missing):
        await use_cases.export_participant(store, OTHER_PORTAL, amina.participant_id)


# -- links to her programme's page


async def test_each_active_registration_under_her_address_gets_a_link_that_opens_her_own_page_once() -> None:
    store, _ = await scheme(AIMMS, POSTGRADUATE)
    in_aimms = await registered(store)
    in_postgraduate = await registered(store, programme_id=POSTGRADUATE.programme_id)
    store.events.clear()

    await use_cases.send_page_links(store, " AMINA@demo-university.ac.uk ", PAGES)
    await use_cases.send_page_links(store, "nobody@demo-university.ac.uk", PAGES)  # says nothing, sends nothing

    issued = written(store, "ParticipantLinkIssued")
    assert store.event_types() == ["ParticipantLinkIssued"] * 2
    assert {i["participant_id"] for i in issued} == {in_aimms.participant_id, in_postgraduate.participant_id}
    assert all(AMINA not in e["value"] and "Okafor" not in e["value"] for e in store.events)
    link = next(i for i in issued if i["participant_id"] == in_aimms.participant_id)
    assert link["url"].startswith(f"{PAGES}/me/links/")

    token, opened = await use_cases.open_page(store, ISSUER, secret_in(link["url"]))

    assert opened == in_aimms
    acting = await principal_of(token)
    assert (acting.participant_id, acting.institution_id, acting.scopes) == (
        in_aimms.participant_id,
        SCHOOL,
        frozenset({SELF}),
    )
    assert acting.may_act_for(SCHOOL, in_aimms.participant_id)
    assert not acting.may_act_for(SCHOOL, in_postgraduate.participant_id)
    with pytest.raises(page_links.PageLinkUnusable):
        await use_cases.open_page(store, ISSUER, secret_in(link["url"]))
    with pytest.raises(page_links.PageLinkUnusable):
        await use_cases.open_page(store, ISSUER, "never-issued")


async def test_asking_again_within_minutes_sends_no_new_link_but_later_it_does() -> None:
    store, _ = await scheme()
    amina = await registered(store)
    store.events.clear()

    await use_cases.send_page_links(store, AMINA, PAGES)
    await use_cases.send_page_links(store, AMINA, PAGES)
    assert store.event_types() == ["ParticipantLinkIssued"]

    [first] = store.page_links_by_id.values()
    aged = replace(first, issued_at=first.issued_at - page_links.RESEND_AFTER)
    store.page_links_by_id[first.link_id] = aged
    await use_cases.send_page_links(store, AMINA, PAGES)

    assert store.event_types() == ["ParticipantLinkIssued"] * 2
    assert [link.participant_id for link in store.page_links_by_id.values()] == [amina.participant_id] * 2


async def test_an_expired_link_or_one_whose_registration_was_withdrawn_opens_nothing() -> None:
    store, _ = await scheme(AIMMS, POSTGRADUATE)
    in_aimms = await registered(store)
    await registered(store, programme_id=POSTGRADUATE.programme_id)
    await use_cases.send_page_links(store, AMINA, PAGES)
    links = {i["participant_id"]: secret_in(i["url"]) for i in written(store, "ParticipantLinkIssued")}
    expiring = store.page_links_by_id[page_links.link_id(links[in_aimms.participant_id])]
    store.page_links_by_id[expiring.link_id] = replace(expiring, expires_at=expiring.issued_at)

    await use_cases.withdraw_participant(store, PORTAL, next(p for p in links if p != in_aimms.participant_id), None)

    for secret in links.values():
        with pytest.raises(page_links.PageLinkUnusable):
            await use_cases.open_page(store, ISSUER, secret)
