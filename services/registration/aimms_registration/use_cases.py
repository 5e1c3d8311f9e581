"""Registration use cases: load, decide with the domain, store state and events in one write.

HTTP routes (and the CLI) call these; the store hands the events a write raised to the outbox relay.
"""

import contextlib
import uuid
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

from aimms_registration.domain import credentials, institutions, interests, page_links, participants, programmes
from aimms_registration.domain.credentials import Credential
from aimms_registration.domain.institutions import Institution
from aimms_registration.domain.participants import Participant, Profile, Registration
from aimms_registration.domain.programmes import Programme
from aimms_registration.store import RegistrationStore
from aimms_registration.tokens import TokenIssuer
from aimms_shared.auth import SELF, Principal, Unauthenticated
from aimms_shared.contracts.registration import CONTACTS, interest_contact_id, profile_text_id
from aimms_shared.errors import Missing, RuleBroken, StateConflict
from aimms_shared.events import Event
from aimms_shared.mongo import utcnow
from aimms_shared.outbox import outbox_entries, outbox_tombstone

PRODUCER = "registration"


_entries = partial(outbox_entries, producer=PRODUCER)  # events raised here, ready for a store's outbox


# -- institutions and credentials


async def onboard_institution(
    store: RegistrationStore,
    *,
    institution_id: str,
    name: str,
    email_domains: list[str],
    contact_email: str,
    registration_url: str | None,
) -> tuple[Institution, Credential, str]:
    """Onboard an institution and give its portal a first credential (its secret returned once)."""
    institution, event = institutions.onboard(institution_id, name, email_domains, contact_email, registration_url)
    await store.add_institution(institution, _entries([event], institution_id))
    credential, secret = await create_credential(
        store,
        name=f"{name} portal",
        institution_id=institution_id,
        scopes=["participants:write", "participants:read", "profiles:read"],
    )
    return institution, credential, secret


async def set_institution_active(store: RegistrationStore, institution_id: str, active: bool) -> Institution:
    """Suspend or re-activate an institution."""
    institution = await _institution(store, institution_id)
    changed, event = (institutions.reactivate if active else institutions.suspend)(institution)
    await store.save_institution(changed, _entries([event], institution_id))
    return replace(changed, version=changed.version + 1)


async def create_credential(
    store: RegistrationStore, *, name: str, institution_id: str | None, scopes: list[str]
) -> tuple[Credential, str]:
    """A new credential; the secret is returned once and stored only as a hash."""
    if institution_id is not None:
        await _institution(store, institution_id)
    checked = credentials.check_scopes(institution_id, scopes)
    secret = credentials.new_secret()
    credential = Credential(
        client_id=credentials.new_client_id(institution_id),
        name=name,
        institution_id=institution_id,
        scopes=checked,
        secret_hash=credentials.hash_secret(secret),
        created_at=utcnow(),
    )
    await store.save_credential(credential)
    return credential, secret


async def rotate_credential(store: RegistrationStore, client_id: str) -> tuple[Credential, str]:
    """Replace a credential's secret; the old one stops working at once."""
    credential = await _credential(store, client_id)
    secret = credentials.new_secret()
    rotated = replace(credential, secret_hash=credentials.hash_secret(secret))
    await store.save_credential(rotated)
    return rotated, secret


async def revoke_credential(store: RegistrationStore, client_id: str) -> Credential:
    """No more tokens for this credential (tokens already issued expire within their short life)."""
    credential = await _credential(store, client_id)
    revoked = replace(credential, revoked_at=credential.revoked_at or utcnow())
    await store.save_credential(revoked)
    return revoked


async def ensure_admin_credential(store: RegistrationStore, client_id: str, secret: str) -> None:
    """The first administrator, from deployment configuration: created once, never overwritten."""
    if await store.credential(client_id) is None:
        await store.save_credential(
            Credential(
                client_id, "bootstrap administrator", None, ("admin",), credentials.hash_secret(secret), utcnow()
            )
        )


async def issue_token(
    store: RegistrationStore, issuer: TokenIssuer, client_id: str, secret: str, requested: list[str] | None
) -> tuple[str, tuple[str, ...]]:
    """OAuth2 client credentials: a short-lived token for a valid, unrevoked credential."""
    credential = await store.credential(client_id)
    if credential is None or not credential.active or not credentials.secret_matches(secret, credential.secret_hash):
        raise Unauthenticated("unknown client, wrong secret, or revoked credential")
    if credential.institution_id is not None:
        institution = await store.institution(credential.institution_id)
        if institution is None or not institution.active:
            raise Unauthenticated("the credential's institution is suspended")
    asked = tuple(dict.fromkeys(requested or ()))  # a scope named twice is asked for once
    scopes = tuple(s for s in asked if s in credential.scopes) if asked else credential.scopes
    if asked and len(scopes) != len(asked):
        raise RuleBroken("scope", "granted-scopes", f"this client may ask for: {' '.join(credential.scopes)}")
    return issuer.issue(credential.client_id, credential.institution_id, scopes), scopes


# -- her programme's page


async def send_page_links(store: RegistrationStore, email: str, pages_url: str) -> None:
    """A link to each of her active registrations' pages, emailed; nothing says whether any exist."""
    now = utcnow()
    for participant in await store.participants_by_email(email):
        if page_links.may_send(participant, await store.last_page_link_at(participant.participant_id), now):
            link, event = page_links.issue(participant, pages_url, now)
            await store.add_page_link(link, _entries([event], participant.institution_id))


async def open_page(store: RegistrationStore, issuer: TokenIssuer, secret: str) -> tuple[str, Participant]:
    """Her link, used up, exchanged for an access token to act for herself alone."""
    link = await store.use_page_link(page_links.link_id(secret), utcnow())
    participant = await store.participant(link.participant_id) if link else None
    if participant is None or participant.status != "active":
        raise page_links.PageLinkUnusable()
    pid = participant.participant_id
    return issuer.issue(f"participant:{pid}", participant.institution_id, (SELF,), participant_id=pid), participant


# -- programmes


async def create_programme(store: RegistrationStore, programme: Programme) -> Programme:
    """Open a programme (ProgrammeOpened)."""
    checked = programmes.define(programme)
    await store.add_programme(checked, _entries([programmes.announcement(checked, new=True)]))
    return checked


async def update_programme(store: RegistrationStore, programme: Programme) -> Programme:
    """Change a programme's settings (ProgrammeUpdated)."""
    current = await store.programme(programme.programme_id)
    if current is None:
        raise Missing("programme_id", "existing-programme", f"programme '{programme.programme_id}' does not exist")
    checked = programmes.define(replace(programme, version=current.version))
    await store.save_programme(checked, _entries([programmes.announcement(checked, new=False)]))
    return replace(checked, version=current.version + 1)


# -- expressions of interest


async def express_interest(store: RegistrationStore, submission: interests.InterestSubmission) -> tuple[str, bool]:
    """Record an expression of interest and raise InterestExpressed; return (interest id, created)."""
    institution = await store.recent_institution(submission.institution_id)
    programme = await store.recent_programme(submission.programme_id)
    interest, events = interests.express_interest(
        submission, institution, programme, interest_id=str(uuid.uuid4()), now=utcnow()
    )
    return await store.add_interest(interest, _entries(events, interest.institution_id))


async def express_interest_on_the_schemes_page(
    store: RegistrationStore, submission: interests.InterestSubmission
) -> tuple[str, bool]:
    """Interest from someone the scheme's own page reached: to her member institution, or the scheme's tenancy."""
    programme = await store.recent_programme(submission.programme_id)
    routed = interests.from_the_schemes_page(submission, await store.institutions(), programme)
    return await express_interest(store, routed)


async def ensure_scheme_tenancy(store: RegistrationStore) -> None:
    """The scheme's own tenancy exists from the first start (InstitutionOnboarded, once)."""
    if await store.institution(institutions.SCHEME) is None:
        tenancy, event = institutions.scheme_tenancy()
        with contextlib.suppress(StateConflict):  # another replica created it first
            await store.add_institution(tenancy, _entries([event], tenancy.institution_id))


# -- participants


async def register_participant(
    store: RegistrationStore, registration: Registration, participant_id: str
) -> Participant:
    """Register her in a programme: ParticipantRegistered plus her contact record, in one write.

    `participant_id` is the same on every try of one request (its idempotency key's): a try after a crash
    that came between the write and the answer finds her registered under it, and answers with her."""
    institution = await store.recent_institution(registration.institution_id)
    programme = await store.recent_programme(registration.programme_id)
    participant, events = participants.register(
        registration,
        institution,
        programme,
        participant_id=participant_id,
        now=utcnow(),
        background_key=store.background_key,
    )
    interest = await store.interest_of(participant.programme_id, participant.email)
    participant = replace(participant, interest_id=interest["_id"] if interest else None)
    try:
        await store.add_participant(participant, _entries(events, participant.institution_id))
    except StateConflict:
        earlier = await store.participant(participant_id)
        if earlier is None or earlier.email != participant.email:
            raise
        return earlier
    return participant


async def participant_for(store: RegistrationStore, caller: Principal, participant_id: str) -> Participant:
    """A participant the caller may see: her own institution's portal, or an administrator."""
    participant = await store.participant(participant_id)
    if participant is None or not caller.may_act_for(participant.institution_id, participant_id):
        # The same answer for "absent" and "another institution's": ids reveal nothing.
        raise Missing("participant_id", "own-institution", f"no participant '{participant_id}' at your institution")
    return participant


async def programme_for(store: RegistrationStore, caller: Principal, programme_id: str) -> Programme:
    """A programme: any, for portals and coordinators; her own, for a participant."""
    programme = await store.programme(programme_id)
    if programme is not None and caller.is_participant:
        herself = await store.participant(caller.participant_id or "")
        programme = programme if herself is not None and herself.programme_id == programme_id else None
    if programme is None:
        raise Missing("programme_id", "existing-programme", f"programme '{programme_id}' does not exist")
    return programme


async def update_participant(
    store: RegistrationStore,
    caller: Principal,
    participant_id: str,
    changes: dict[str, Any],
) -> Participant:
    """Apply profile, contact and demographic changes (ParticipantProfileUpdated and friends)."""
    participant = await participant_for(store, caller, participant_id)
    programme = await store.programme(participant.programme_id)
    institution = await store.institution(participant.institution_id)
    assert programme is not None  # a participant's programme is never deleted
    profile_fields = {k: v for k, v in changes.items() if k in Profile.__dataclass_fields__}
    profile = replace(participant.profile, **profile_fields)
    updated, events = participants.update_profile(
        participant,
        programme,
        profile,
        name=changes.get("name"),
        email=changes.get("email"),
        institution=institution,
        sensitive={k: changes[k] for k in ("ethnicity", "age_band") if k in changes},
        background_key=store.background_key,
    )
    await store.save_participant(updated, _entries(events, participant.institution_id))
    return replace(updated, version=participant.version + 1)


async def set_evaluation_consent(
    store: RegistrationStore, caller: Principal, participant_id: str, version: str | None
) -> Participant:
    """She gives or withdraws consent to the evaluation (EvaluationParticipationChanged when that changes it)."""
    decide = partial(participants.set_evaluation_consent, version=version, now=utcnow())
    return await _change_participant(store, caller, participant_id, decide)


async def exclude_from_evaluation(
    store: RegistrationStore, caller: Principal, participant_id: str, reason: str | None
) -> Participant:
    """Coordinators leave her out of the evaluation, or include her again (reason None)."""
    decide = partial(participants.exclude_from_evaluation, reason=reason)
    return await _change_participant(store, caller, participant_id, decide)


async def _change_participant(
    store: RegistrationStore,
    caller: Principal,
    participant_id: str,
    decide: Callable[[Participant], tuple[Participant, list[Event]]],
) -> Participant:
    """Load her, decide, and store the change with its events in one write."""
    participant = await participant_for(store, caller, participant_id)
    changed, events = decide(participant)
    await store.save_participant(changed, _entries(events, participant.institution_id))
    return replace(changed, version=participant.version + 1)


async def withdraw_participant(
    store: RegistrationStore, caller: Principal, participant_id: str, reason: str | None
) -> Participant:
    """She leaves the programme (ParticipantWithdrawn)."""
    decide = partial(participants.withdraw, reason=reason, now=utcnow())
    return await _change_participant(store, caller, participant_id, decide)


async def erase_participant(store: RegistrationStore, caller: Principal, participant_id: str) -> None:
    """Erasure: her personal data deleted here, tombstones for her contact and profile text, ParticipantErased."""
    participant = await participant_for(store, caller, participant_id)
    events = _entries([participants.erase(participant)], participant.institution_id)
    events.append(outbox_tombstone(CONTACTS, participant.participant_id))
    events.append(outbox_tombstone(CONTACTS, profile_text_id(participant.participant_id)))
    if participant.interest_id is not None:  # her name and address as she expressed interest
        events.append(outbox_tombstone(CONTACTS, interest_contact_id(participant.interest_id)))
    await store.erase_participant(participant, events)


async def export_participant(store: RegistrationStore, caller: Principal, participant_id: str) -> dict[str, Any]:
    """Subject access: everything this service holds about her, decrypted."""
    participant = await participant_for(store, caller, participant_id)
    stored = await store.raw_participant(participant_id) or {}
    return {
        "participant": stored | {"sensitive": participant.sensitive},
        "expression_of_interest": await store.interest(participant.interest_id) if participant.interest_id else None,
        "exported_at": utcnow(),
    }


async def _institution(store: RegistrationStore, institution_id: str) -> Institution:
    institution = await store.institution(institution_id)
    if institution is None:
        raise Missing("institution_id", "onboarded-institution", f"institution '{institution_id}' is not onboarded")
    return institution


async def _credential(store: RegistrationStore, client_id: str) -> Credential:
    credential = await store.credential(client_id)
    if credential is None:
        raise Missing("client_id", "existing-credential", f"no credential '{client_id}'")
    return credential
