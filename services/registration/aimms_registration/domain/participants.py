"""Participants: registration in a programme, profile changes, withdrawal and erasure."""

import hashlib
import hmac
import re
from dataclasses import dataclass, field, replace
from datetime import datetime

from aimms_registration.domain.institutions import Institution, accepts_address
from aimms_registration.domain.interests import require_open
from aimms_registration.domain.programmes import Programme
from aimms_shared.contracts.registration import (
    EvaluationParticipationChanged,
    MentorCapacityChanged,
    ParticipantContact,
    ParticipantErased,
    ParticipantProfileText,
    ParticipantProfileUpdated,
    ParticipantRegistered,
    ParticipantWithdrawn,
    gives,
    profile_text_id,
)
from aimms_shared.errors import RuleBroken, StateConflict
from aimms_shared.events import Event
from aimms_shared.mapping import picked

CONSENTS = ("privacy_notice", "code_of_conduct", "confidentiality")
# Optional: consent to take part in the evaluation, given to a version of its participant information sheet.
EVALUATION = "evaluation"
AGE_BANDS = ("under-30", "30-39", "40-49", "50-59", "60-plus")
PATHWAYS = ("clinical", "non-clinical")
MAX_INTERESTS = 20
TAG = re.compile(r"[^a-z0-9]+")
WORD = re.compile(r"[a-z]+")
# Words that do not tell backgrounds apart ("British Pakistani" and "Pakistani" describe the same one).
NEUTRAL_WORDS = frozenset({"and", "background", "british", "heritage", "of", "origin", "uk"})


@dataclass(frozen=True)
class Consent:
    """A consent or acceptance, with the version of the text she agreed to and when."""

    kind: str
    version: str
    given_at: datetime
    withdrawn_at: datetime | None = None

    @property
    def in_force(self) -> bool:
        """Given and not withdrawn."""
        return self.withdrawn_at is None


@dataclass(frozen=True)
class Profile:
    """What she tells the scheme about her career and what she offers or seeks."""

    job_title: str
    seniority: str
    pathway: str
    research_interests: tuple[str, ...]
    offers: str | None
    seeks: str | None
    mentor_capacity: int | None
    publish_profile: bool
    background_matching: bool
    answers: dict[str, str] = field(default_factory=dict)  # question id -> her answer (the programme's questions)


@dataclass(frozen=True)
class Registration:
    """A registration as a portal submits it (already well-formed)."""

    name: str
    email: str
    institution_id: str
    programme_id: str
    # Pairs: the programme's giving role (mentor, sponsor or ally), mentee, or both; circles: peer or facilitator.
    role: str
    profile: Profile
    consents: dict[str, str]  # kind -> version
    confirmed_eligibility: tuple[str, ...]
    sensitive: dict[str, str] = field(default_factory=dict)  # e.g. ethnicity, age_band (optional)


@dataclass(frozen=True)
class Participant:
    """A person registered in one programme."""

    participant_id: str
    programme_id: str
    institution_id: str
    name: str
    email: str
    roles: tuple[str, ...]
    profile: Profile
    consents: tuple[Consent, ...]
    confirmed_eligibility: tuple[str, ...]
    sensitive: dict[str, str]
    registered_at: datetime
    status: str = "active"  # active | withdrawn
    withdrawn_at: datetime | None = None
    withdrawal_reason: str | None = None
    # Coordinators may leave someone out of the evaluation (the pilot left out committee members).
    excluded_from_evaluation: str | None = None  # the reason, when excluded
    # The expression of interest she registered after: her export shows it and her erasure deletes it,
    # whatever address she uses later.
    interest_id: str | None = None
    version: int = 1

    @property
    def is_mentor(self) -> bool:
        """Whether she gives the programme's support (mentors, sponsors or is an ally): she has a capacity."""
        return gives(self.roles)

    @property
    def in_evaluation(self) -> bool:
        """Her answers are sought: she consented to the evaluation and coordinators did not exclude her."""
        consented = any(c.kind == EVALUATION and c.in_force for c in self.consents)
        return consented and self.excluded_from_evaluation is None


def normalise_interests(tags: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Research interests as tags: lower case, words joined by hyphens, each once."""
    normalised = (TAG.sub("-", tag.lower()).strip("-") for tag in tags)
    unique = tuple(dict.fromkeys(t for t in normalised if t))
    if len(unique) > MAX_INTERESTS:
        raise RuleBroken("research_interests", "at-most-20", f"name at most {MAX_INTERESTS} research interests")
    return unique


def register(
    registration: Registration,
    institution: Institution | None,
    programme: Programme | None,
    *,
    participant_id: str,
    now: datetime,
    background_key: bytes,
) -> tuple[Participant, list[Event]]:
    """Accept a registration, or say which rule refuses it."""
    require_open(institution, programme, (registration.institution_id, registration.programme_id))
    assert institution is not None and programme is not None  # checked above
    if not accepts_address(institution, registration.email):
        raise RuleBroken(
            "email", "institution-email-domain", f"the address must be at {' or '.join(institution.email_domains)}"
        )
    roles = (programme.giver, "mentee") if registration.role == "both" else (registration.role,)
    for role in roles:
        if not programme.offers(role):
            raise RuleBroken("role", "role-offered", f"{programme.name} has no {role} role")
    missing_consents = [kind for kind in CONSENTS if not registration.consents.get(kind, "").strip()]
    if missing_consents:
        raise RuleBroken("consents", "required-consent", f"required: {', '.join(missing_consents)} (with its version)")
    unconfirmed = [
        s.statement_id
        for s in programme.statements_for(roles)
        if s.statement_id not in registration.confirmed_eligibility
    ]
    if unconfirmed:
        raise RuleBroken("confirmed_eligibility", "eligibility", f"not confirmed: {', '.join(unconfirmed)}")
    unknown_sensitive = [k for k in registration.sensitive if k not in programme.sensitive_fields]
    if unknown_sensitive:
        raise RuleBroken(
            unknown_sensitive[0], "asked-by-programme", f"{programme.name} does not ask for {unknown_sensitive[0]}"
        )
    profile = _checked_profile(registration.profile, roles, programme)
    participant = Participant(
        participant_id=participant_id,
        programme_id=programme.programme_id,
        institution_id=institution.institution_id,
        name=registration.name.strip(),
        email=registration.email.strip(),
        roles=roles,
        profile=profile,
        consents=tuple(
            Consent(kind, registration.consents[kind].strip(), now)
            for kind in (*CONSENTS, EVALUATION)
            if registration.consents.get(kind, "").strip()
        ),
        confirmed_eligibility=tuple(registration.confirmed_eligibility),
        sensitive={k: v.strip() for k, v in registration.sensitive.items() if v and v.strip()},
        registered_at=now,
    )
    registered = ParticipantRegistered(
        **_profile_fields(participant, background_key), registered_at=now, in_evaluation=participant.in_evaluation
    )
    return participant, [registered, contact(participant), profile_text(participant)]


def update_profile(
    participant: Participant,
    programme: Programme,
    profile: Profile,
    *,
    name: str | None = None,
    email: str | None = None,
    institution: Institution | None = None,
    sensitive: dict[str, str | None] | None = None,
    background_key: bytes,
) -> tuple[Participant, list[Event]]:
    """Apply profile, contact and optional-demographic changes; return the events they raise."""
    _require_active(participant)
    events: list[Event] = []
    checked = _checked_profile(profile, participant.roles, programme)
    updated = replace(participant, profile=checked)
    email_changed = email is not None and email.strip() != participant.email
    if email_changed and (institution is None or not accepts_address(institution, email)):
        raise RuleBroken("email", "institution-email-domain", "the address must be in the institution's domains")
    if email_changed or (name is not None and name.strip() != participant.name):
        updated = replace(updated, name=(name or participant.name).strip(), email=(email or participant.email).strip())
        events.append(contact(updated))
    if sensitive:
        unknown = [k for k in sensitive if k not in programme.sensitive_fields]
        if unknown:
            raise RuleBroken(unknown[0], "asked-by-programme", f"{programme.name} does not ask for {unknown[0]}")
        kept = dict(participant.sensitive)
        for key, value in sensitive.items():  # an empty value withdraws the answer
            if value and value.strip():
                kept[key] = value.strip()
            else:
                kept.pop(key, None)
        updated = replace(updated, sensitive=kept)
    announced = _profile_fields(updated, background_key)
    if announced != _profile_fields(participant, background_key):  # the profile, or the token it implies
        events.insert(0, ParticipantProfileUpdated(**announced))
    if profile_text(updated) != profile_text(participant):
        events.append(profile_text(updated))
    if checked.mentor_capacity != participant.profile.mentor_capacity and checked.mentor_capacity is not None:
        events.append(MentorCapacityChanged(**_ids(updated), mentor_capacity=checked.mentor_capacity))
    return updated, events


def withdraw(participant: Participant, reason: str | None, *, now: datetime) -> tuple[Participant, list[Event]]:
    """She leaves the programme; her record stays (she may ask for erasure separately)."""
    _require_active(participant)
    withdrawn = replace(participant, status="withdrawn", withdrawn_at=now, withdrawal_reason=reason)
    return withdrawn, [ParticipantWithdrawn(**_ids(participant), reason=reason)]


def set_evaluation_consent(
    participant: Participant, version: str | None, *, now: datetime
) -> tuple[Participant, list[Event]]:
    """She gives (to a participant information sheet version) or withdraws consent to the evaluation."""
    _require_active(participant)
    kept = tuple(
        replace(c, withdrawn_at=now) if c.kind == EVALUATION and c.in_force else c for c in participant.consents
    )
    if version is not None and version.strip():
        kept = (*kept, Consent(EVALUATION, version.strip(), now))
    return _evaluation_changed(participant, replace(participant, consents=kept))


def exclude_from_evaluation(participant: Participant, reason: str | None) -> tuple[Participant, list[Event]]:
    """Coordinators leave her out of the evaluation (a reason: excluded; None: included again)."""
    reason = reason.strip() if reason is not None else None
    if reason == "":
        raise RuleBroken("reason", "reason-required", "say why she is excluded from the evaluation")
    return _evaluation_changed(participant, replace(participant, excluded_from_evaluation=reason))


def _evaluation_changed(before: Participant, after: Participant) -> tuple[Participant, list[Event]]:
    if before.in_evaluation == after.in_evaluation:
        return after, []
    return after, [EvaluationParticipationChanged(**_ids(after), in_evaluation=after.in_evaluation)]


def background_token(programme_id: str, ethnicity: str, key: bytes) -> str | None:
    """A keyed hash of her self-described background: equal for the same description (case, word order and
    words like 'British' aside) in one programme; says nothing of the background without the key."""
    words = sorted(set(WORD.findall(ethnicity.lower())) - NEUTRAL_WORDS)
    if not words:
        return None
    message = f"{programme_id}\x00{' '.join(words)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def erase(participant: Participant) -> ParticipantErased:
    """Erasure: the event that tells every other service to delete what it holds about her."""
    return ParticipantErased(**_ids(participant), interest_id=participant.interest_id)


def contact(participant: Participant) -> ParticipantContact:
    """Her contact details, for the compacted contacts topic."""
    return ParticipantContact(**_ids(participant), name=participant.name, email=participant.email)


def profile_text(participant: Participant) -> ParticipantProfileText:
    """Her profile's free text, for the compacted contacts topic."""
    p = participant.profile
    return ParticipantProfileText(
        **_ids(participant),
        text_id=profile_text_id(participant.participant_id),
        job_title=p.job_title,
        offers=p.offers,
        seeks=p.seeks,
        answers=dict(p.answers),
    )


def _checked_profile(profile: Profile, roles: tuple[str, ...], programme: Programme) -> Profile:
    if profile.seniority not in programme.seniority_scale:
        raise RuleBroken("seniority", "programme-scale", f"seniority is one of: {', '.join(programme.seniority_scale)}")
    if profile.pathway not in PATHWAYS:
        raise RuleBroken("pathway", "pathway", f"pathway is one of: {', '.join(PATHWAYS)}")
    capacity = profile.mentor_capacity
    if gives(roles):
        capacity = programme.default_mentor_capacity if capacity is None else capacity
        if not 1 <= capacity <= programme.max_mentor_capacity:
            raise RuleBroken(
                "mentor_capacity", "capacity-range", f"mentor capacity is 1 to {programme.max_mentor_capacity}"
            )
        if not (profile.offers or "").strip():
            raise RuleBroken("offers", "required-for-mentors", f"{programme.giver}s say what they can offer")
    elif capacity is not None:
        raise RuleBroken("mentor_capacity", "mentors-only", f"only {programme.giver}s have a capacity")
    if "mentee" in roles and not (profile.seeks or "").strip():
        raise RuleBroken("seeks", "required-for-mentees", "mentees say what they hope to gain")
    return replace(
        profile,
        job_title=profile.job_title.strip(),
        research_interests=normalise_interests(profile.research_interests),
        mentor_capacity=capacity,
        publish_profile=profile.publish_profile and gives(roles),
        answers=_checked_answers(profile.answers, roles, programme),
    )


def _checked_answers(answers: dict[str, str], roles: tuple[str, ...], programme: Programme) -> dict[str, str]:
    """Her answers to the programme's questions for her roles: each required one given, none to another's."""
    asked = {q.question_id: q for q in programme.questions_for(roles)}
    for question_id in answers:
        if question_id not in asked:
            raise RuleBroken(f"answers.{question_id}", "question-asked", "the programme asks no such question of her")
    kept = {question_id: text.strip() for question_id, text in answers.items() if text.strip()}
    for question in asked.values():
        if question.required and question.question_id not in kept:
            raise RuleBroken(f"answers.{question.question_id}", "required-answer", f"answer: {question.text}")
    return kept


def _require_active(participant: Participant) -> None:
    if participant.status != "active":
        raise StateConflict("participant_id", "active-participant", "she has withdrawn from the programme")


def _ids(participant: Participant) -> dict[str, str]:
    return picked(participant, "participant_id", "programme_id", "institution_id")


def _profile_fields(participant: Participant, background_key: bytes) -> dict:
    p = participant.profile
    ethnicity = participant.sensitive.get("ethnicity")
    token = None
    if p.background_matching and ethnicity:  # only where she asked for it
        token = background_token(participant.programme_id, ethnicity, background_key)
    return {
        **_ids(participant),
        "roles": list(participant.roles),
        "seniority": p.seniority,
        "pathway": p.pathway,
        "research_interests": list(p.research_interests),
        "mentor_capacity": p.mentor_capacity,
        "profile_published": p.publish_profile,
        "background_matching": p.background_matching,
        "background_token": token,
    }
