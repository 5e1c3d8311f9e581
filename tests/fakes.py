"""In-memory stand-ins for the services' stores, so use cases are tested fast and without I/O.

Each fake keeps the same promises as the store it replaces (what a test can observe through the
use cases), not its queries: a place held is held once, an address registers once per programme,
a page link opens once, a stale version is refused, events are kept beside the state they were
written with.
"""

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from aimms_matching.domain.concerns import Concern
from aimms_matching.domain.ideas import Idea
from aimms_matching.domain.mentoring_circles import MentoringCircle
from aimms_matching.domain.pairs import OPEN_STATES, Pair
from aimms_matching.domain.rules import Member, ProgrammeRules
from aimms_notifications.domain.compose import Contact
from aimms_notifications.domain.compose import Programme as ProgrammeWording
from aimms_notifications.domain.delivery import Delivery
from aimms_notifications.domain.digest import DigestConfig, OpenProposal
from aimms_notifications.domain.messages import Notification
from aimms_notifications.store import (
    CANCELLED,
    DIGEST_DUE,
    FAILED,
    FINISHED,
    PENDING,
    PER_MESSAGE_DETAILS,
    SEND_DUE,
    SENT,
    pending_doc,
    requeued,
)
from aimms_registration.domain.credentials import Credential
from aimms_registration.domain.institutions import Institution
from aimms_registration.domain.interests import Interest, email_key
from aimms_registration.domain.page_links import PageLink
from aimms_registration.domain.participants import Participant
from aimms_registration.domain.programmes import Programme
from aimms_shared.errors import StateConflict
from aimms_shared.mongo import utcnow
from aimms_shared.outbox import ConcurrentUpdate, OutboxEntry
from aimms_surveys.domain.invitations import Invitation, SurveyPolicy
from aimms_surveys.domain.questionnaires import Questionnaire


@dataclass
class FakeMatchingStore:
    """MatchingStore's behaviour over dictionaries."""

    programmes_by_id: dict[str, ProgrammeRules] = field(default_factory=dict)
    rounds_begun: dict[str, datetime] = field(default_factory=dict)
    members_by_id: dict[str, Member] = field(default_factory=dict)
    texts: dict[str, dict[str, Any]] = field(default_factory=dict)  # participant id -> her profile's free text
    held_by: dict[str, set[str]] = field(default_factory=dict)  # mentor id -> pair ids holding her places
    erased: set[str] = field(default_factory=set)
    choices: dict[str, dict[str, Any]] = field(default_factory=dict)
    pairs_by_id: dict[str, Pair] = field(default_factory=dict)
    reports: list[dict[str, Any]] = field(default_factory=list)
    concerns_by_id: dict[str, Concern] = field(default_factory=dict)
    unplaced: set[tuple[str, str]] = field(default_factory=set)  # (mentee, wait) already announced
    ideas_recorded: list[Idea] = field(default_factory=list)
    circles_by_id: dict[str, MentoringCircle] = field(default_factory=dict)
    rounds_running: set[str] = field(default_factory=set)
    events: list[OutboxEntry] = field(default_factory=list)  # every outbox entry written, in order

    # -- programmes

    async def save_programme(self, programme: ProgrammeRules) -> None:
        self.programmes_by_id[programme.programme_id] = programme

    async def programme(self, programme_id: str) -> ProgrammeRules | None:
        return self.programmes_by_id.get(programme_id)

    async def mark_rounds_begun(self, programme_id: str, at: datetime) -> None:
        self.rounds_begun.setdefault(programme_id, at)

    async def rounds_begun_at(self, programme_id: str) -> datetime | None:
        return self.rounds_begun.get(programme_id)

    # -- members

    async def save_member(self, member: Member) -> None:
        kept = self.members_by_id.get(member.participant_id)
        if kept is not None:  # a profile update keeps the places she holds and her lifecycle flags
            member = replace(member, active=kept.active, open_pair=kept.open_pair, load=kept.load, done=kept.done)
        text = self.texts.get(member.participant_id, {})  # her free text, which arrives on its own
        self.members_by_id[member.participant_id] = replace(member, **text)

    async def save_member_text(self, text: dict[str, Any]) -> None:
        if text["participant_id"] in self.erased:
            return
        fields = {k: v for k, v in text.items() if k != "participant_id"}
        self.texts[text["participant_id"]] = fields
        kept = self.members_by_id.get(text["participant_id"])
        if kept is not None:
            self.members_by_id[kept.participant_id] = replace(kept, **fields)

    async def member(self, participant_id: str) -> Member | None:
        return self.members_by_id.get(participant_id)

    async def members(self, programme_id: str) -> list[Member]:
        return sorted(
            (m for m in self.members_by_id.values() if m.programme_id == programme_id and m.active),
            key=lambda m: m.participant_id,
        )

    async def published_mentors(self, programme_id: str) -> list[Member]:
        return [m for m in await self.members(programme_id) if m.is_published_mentor]

    async def set_capacity(self, participant_id: str, capacity: int) -> None:
        self._update(participant_id, mentor_capacity=capacity)

    async def deactivate(self, participant_id: str) -> None:
        self._update(participant_id, active=False)
        self.choices.pop(participant_id, None)

    async def forget(self, participant_id: str) -> None:
        self.erased.add(participant_id)
        self.members_by_id.pop(participant_id, None)
        self.choices.pop(participant_id, None)

    async def was_erased(self, participant_id: str) -> bool:
        return participant_id in self.erased

    async def mark_done(self, mentee_id: str) -> None:
        self._update(mentee_id, done=True)

    def _update(self, participant_id: str, **changes: Any) -> None:
        if participant_id in self.members_by_id:
            self.members_by_id[participant_id] = replace(self.members_by_id[participant_id], **changes)

    # -- places

    async def hold_places(self, pair: Pair) -> bool:
        mentee = self.members_by_id.get(pair.mentee_id)
        if mentee is None or not mentee.active or mentee.open_pair not in (None, pair.pair_id):
            return False
        self._update(pair.mentee_id, open_pair=pair.pair_id)
        held = self.held_by.setdefault(pair.mentor_id, set())
        if pair.pair_id in held:
            return True
        mentor = self.members_by_id.get(pair.mentor_id)
        if mentor is None or not mentor.active or mentor.load >= (mentor.mentor_capacity or 0):
            self._update(pair.mentee_id, open_pair=None)
            return False
        held.add(pair.pair_id)
        self._update(pair.mentor_id, load=mentor.load + 1)
        return True

    async def release_places(self, pair: Pair) -> None:
        mentee = self.members_by_id.get(pair.mentee_id)
        if mentee is not None and mentee.open_pair == pair.pair_id:
            self._update(pair.mentee_id, open_pair=None)
        held = self.held_by.get(pair.mentor_id, set())
        if pair.pair_id in held:
            held.discard(pair.pair_id)
            self._update(pair.mentor_id, load=self.members_by_id[pair.mentor_id].load - 1)

    # -- preferences

    async def save_preferences(self, mentee: Member, choices: tuple[str, ...], events: list[OutboxEntry]) -> None:
        self.choices[mentee.participant_id] = {
            "_id": mentee.participant_id,
            "programme_id": mentee.programme_id,
            "choices": list(choices),
            "submitted_at": utcnow(),
        }
        self.events += events

    async def preferences(self, mentee_id: str) -> dict[str, Any] | None:
        return self.choices.get(mentee_id)

    async def choices_of(self, programme_id: str) -> dict[str, tuple[str, ...]]:
        return {k: tuple(v["choices"]) for k, v in self.choices.items() if v["programme_id"] == programme_id}

    # -- pairs

    async def insert_pair(self, pair: Pair, recover_after: timedelta) -> None:
        self.pairs_by_id[pair.pair_id] = pair

    async def delete_pair(self, pair_id: str) -> None:
        if pair_id in self.pairs_by_id and self.pairs_by_id[pair_id].state == "held":
            del self.pairs_by_id[pair_id]

    async def save_pair(self, pair: Pair, expected_version: int, events: list[OutboxEntry]) -> Pair:
        if self.pairs_by_id[pair.pair_id].version != expected_version:
            raise ConcurrentUpdate(f"pair {pair.pair_id} is no longer at version {expected_version}")
        saved = replace(pair, version=expected_version + 1)
        self.pairs_by_id[pair.pair_id] = saved
        self.events += events
        return saved

    async def pair(self, pair_id: str) -> Pair | None:
        return self.pairs_by_id.get(pair_id)

    async def pairs(
        self,
        *,
        programme_id: str | None = None,
        states: tuple[str, ...] = (),
        participant_id: str | None = None,
        limit: int = 500,
    ) -> list[Pair]:
        found = [
            p
            for p in self.pairs_by_id.values()
            if programme_id in (None, p.programme_id)
            and (not states or p.state in states)
            and participant_id in (None, p.mentee_id, p.mentor_id)
        ]
        return sorted(found, key=lambda p: p.created_at, reverse=True)[:limit]

    async def open_pairs_of(self, participant_id: str) -> list[Pair]:
        return [
            p
            for p in self.pairs_by_id.values()
            if p.state in OPEN_STATES and participant_id in (p.mentee_id, p.mentor_id)
        ]

    async def exclusions(self, programme_id: str, mentee_id: str | None = None) -> set[tuple[str, str]]:
        return {
            (p.mentee_id, p.mentor_id)
            for p in self.pairs_by_id.values()
            if p.programme_id == programme_id and p.excludes_pair and mentee_id in (None, p.mentee_id)
        }

    async def mark_unplaced(self, mentee_id: str, wait: str, events: list[OutboxEntry]) -> bool:
        if (mentee_id, wait) in self.unplaced:
            return False
        self.unplaced.add((mentee_id, wait))
        self.events += events
        return True

    async def add_idea(self, idea: Idea) -> None:
        self.ideas_recorded.append(idea)

    async def ideas(self, programme_id: str) -> list[Idea]:
        return [i for i in self.ideas_recorded if i.programme_id == programme_id]

    # -- concerns

    async def add_concern(self, concern: Concern, events: list[OutboxEntry]) -> None:
        self.concerns_by_id[concern.concern_id] = concern
        self.events += events

    async def concern(self, concern_id: str) -> Concern | None:
        return self.concerns_by_id.get(concern_id)

    async def save_concern(self, concern: Concern, expected_version: int) -> None:
        if self.concerns_by_id[concern.concern_id].version != expected_version:
            raise ConcurrentUpdate(f"concern {concern.concern_id} is no longer at version {expected_version}")
        self.concerns_by_id[concern.concern_id] = replace(concern, version=expected_version + 1)

    # -- circles

    async def claim_round(self, programme_id: str, lease: timedelta) -> bool:
        if programme_id in self.rounds_running:
            return False
        self.rounds_running.add(programme_id)
        return True

    async def release_round(self, programme_id: str) -> None:
        self.rounds_running.discard(programme_id)

    async def in_circles(self, programme_id: str) -> set[str]:
        return {pid for c in self.circles_by_id.values() if c.programme_id == programme_id for pid in c.member_ids}

    async def add_circle(self, circle: MentoringCircle, events: list[OutboxEntry]) -> None:
        self.circles_by_id[circle.circle_id] = circle
        self.events += events

    async def save_circle(self, circle: MentoringCircle, expected_version: int, events: list[OutboxEntry]) -> None:
        if self.circles_by_id[circle.circle_id].version != expected_version:
            raise ConcurrentUpdate(f"circle {circle.circle_id} is no longer at version {expected_version}")
        self.circles_by_id[circle.circle_id] = replace(circle, version=expected_version + 1)
        self.events += events

    async def circle(self, circle_id: str) -> MentoringCircle | None:
        return self.circles_by_id.get(circle_id)

    async def circles(
        self,
        programme_id: str | None = None,
        *,
        institution_id: str | None = None,
        participant_id: str | None = None,
        limit: int = 500,
    ) -> list[MentoringCircle]:
        found = [
            c
            for c in self.circles_by_id.values()
            if programme_id in (None, c.programme_id)
            and (institution_id is None or any(m.institution_id == institution_id for m in c.members))
            and (participant_id is None or participant_id in c.member_ids)
        ]
        return sorted(found, key=lambda c: c.formed_at, reverse=True)[:limit]

    async def claim_due_circles(self, lease: timedelta, limit: int) -> list[MentoringCircle]:
        now = utcnow()
        return [c for c in self.circles_by_id.values() if (due := c.next_due()) is not None and due <= now][:limit]

    # -- rounds

    async def save_round(self, report: dict[str, Any]) -> None:
        self.reports.append(report)

    def event_types(self) -> list[str]:
        """The types of the events written so far, in order."""
        return [entry["event_type"] for entry in self.events]


@dataclass
class FakeSurveysStore:
    """SurveysStore's behaviour for invitations, evaluation status, departures and seeded questionnaires (no
    responses or reports)."""

    questionnaires: dict[tuple[str, str], list[Questionnaire]] = field(default_factory=dict)  # by programme, wave
    policies: dict[str, SurveyPolicy] = field(default_factory=dict)
    departed: set[str] = field(default_factory=set)
    evaluation: dict[str, dict[str, Any]] = field(default_factory=dict)  # participant -> in_evaluation?, owed
    invitations: dict[str, Invitation] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    events: list[OutboxEntry] = field(default_factory=list)

    async def seed_questionnaire(self, questionnaire: Questionnaire) -> bool:
        versions = self.questionnaires.setdefault((questionnaire.programme_id, questionnaire.wave), [])
        if any(q.version == questionnaire.version for q in versions):
            return False
        versions.append(questionnaire)
        versions.sort(key=lambda q: q.version)
        return True

    async def latest_questionnaire(self, programme_id: str, wave: str) -> Questionnaire | None:
        versions = self.questionnaires.get((programme_id, wave), [])
        return versions[-1] if versions else None

    async def policy(self, programme_id: str) -> SurveyPolicy:
        return self.policies.get(programme_id, SurveyPolicy())

    async def mark_departed(self, participant_id: str) -> None:
        self.departed.add(participant_id)

    async def has_departed(self, participant_id: str) -> bool:
        return participant_id in self.departed

    async def in_evaluation(self, participant_id: str) -> bool | None:
        return self.evaluation.get(participant_id, {}).get("in_evaluation")

    async def owe_invitation(self, participant_id: str, owed: dict[str, Any]) -> bool:
        doc = self.evaluation.setdefault(participant_id, {"owed": []})
        if "in_evaluation" in doc:
            return False
        if owed not in doc["owed"]:
            doc["owed"].append(owed)
        return True

    async def set_evaluation(self, participant_id: str, in_evaluation: bool) -> list[dict[str, Any]]:
        doc = self.evaluation.setdefault(participant_id, {"owed": []})
        doc["in_evaluation"] = in_evaluation
        return list(doc["owed"])

    async def settle_owed(self, participant_id: str, owed: list[dict[str, Any]]) -> None:
        doc = self.evaluation.get(participant_id)
        if doc is not None:
            doc["owed"] = [o for o in doc["owed"] if o not in owed]

    async def is_invited(self, programme_id: str, wave: str, role: str, participant_id: str) -> bool:
        key = (programme_id, wave, role, participant_id)
        return any((i.programme_id, i.wave, i.role, i.participant_id) == key for i in self.invitations.values())

    async def add_token(self, hashed: str, invitation_id: str) -> None:
        self.tokens[hashed] = invitation_id

    async def insert_invitation(self, invitation: Invitation, events: list[OutboxEntry]) -> bool:
        if await self.is_invited(invitation.programme_id, invitation.wave, invitation.role, invitation.participant_id):
            return False
        self.invitations[invitation.invitation_id] = invitation
        self.events += events
        return True

    async def void_open_invitations(self, participant_id: str) -> int:
        open_ones = [i for i in self.invitations.values() if i.participant_id == participant_id and i.status == "open"]
        for invitation in open_ones:
            self.invitations[invitation.invitation_id] = replace(invitation, status="voided")
        return len(open_ones)

    async def forget_participant(self, participant_id: str) -> None:
        self.evaluation.pop(participant_id, None)

    def invited(self) -> list[tuple[str, str, str, str]]:
        """(participant, wave, role, status) of every invitation, sorted."""
        return sorted((i.participant_id, i.wave, i.role, i.status) for i in self.invitations.values())


@dataclass
class FakeRegistrationStore:
    """RegistrationStore's behaviour for what registration's use cases ask of it.

    Special category answers are kept as given (encryption at rest is for the integration tests to
    check), reads are never stale (the real `recent_*` may lag by seconds), and there are no
    idempotency keys (the routes' concern, not the use cases').
    """

    background_key: bytes = b"background-token-key-for-tests-!"
    institutions_by_id: dict[str, Institution] = field(default_factory=dict)
    programmes_by_id: dict[str, Programme] = field(default_factory=dict)
    credentials_by_id: dict[str, Credential] = field(default_factory=dict)
    interests_by_id: dict[str, Interest] = field(default_factory=dict)
    participants_by_id: dict[str, Participant] = field(default_factory=dict)  # erased ones are gone from here
    erased: dict[str, dict[str, Any]] = field(default_factory=dict)  # participant id -> what erasure keeps
    page_links_by_id: dict[str, PageLink] = field(default_factory=dict)
    links_used_at: dict[str, datetime] = field(default_factory=dict)
    events: list[OutboxEntry] = field(default_factory=list)  # every outbox entry written, in order

    # -- writes, as the store's outbox makes them: the aggregate and its events together

    def _insert(
        self, by_id: dict[str, Any], kind: str, aggregate_id: str, aggregate: Any, events: list[OutboxEntry]
    ) -> None:
        """A new aggregate with its events; StateConflict for a taken id."""
        if aggregate_id in by_id:
            raise StateConflict(f"{kind}_id", "unique", f"{kind} '{aggregate_id}' exists")
        by_id[aggregate_id] = aggregate
        self.events += events

    def _save(
        self, by_id: dict[str, Any], collection: str, aggregate_id: str, aggregate: Any, events: list[OutboxEntry]
    ) -> None:
        """A changed aggregate at its next version with its events; ConcurrentUpdate if it changed meanwhile."""
        by_id[aggregate_id] = _next_version(by_id.get(aggregate_id), aggregate, collection, aggregate_id)
        self.events += events

    # -- institutions

    async def institution(self, institution_id: str) -> Institution | None:
        return self.institutions_by_id.get(institution_id)

    async def recent_institution(self, institution_id: str) -> Institution | None:
        return self.institutions_by_id.get(institution_id)

    async def institutions(self) -> list[Institution]:
        return sorted(self.institutions_by_id.values(), key=lambda i: i.name)

    async def add_institution(self, institution: Institution, events: list[OutboxEntry]) -> None:
        self._insert(self.institutions_by_id, "institution", institution.institution_id, institution, events)

    async def save_institution(self, institution: Institution, events: list[OutboxEntry]) -> None:
        self._save(self.institutions_by_id, "institutions", institution.institution_id, institution, events)

    # -- programmes

    async def programme(self, programme_id: str) -> Programme | None:
        return self.programmes_by_id.get(programme_id)

    async def recent_programme(self, programme_id: str) -> Programme | None:
        return self.programmes_by_id.get(programme_id)

    async def add_programme(self, programme: Programme, events: list[OutboxEntry]) -> None:
        self._insert(self.programmes_by_id, "programme", programme.programme_id, programme, events)

    async def save_programme(self, programme: Programme, events: list[OutboxEntry]) -> None:
        self._save(self.programmes_by_id, "programmes", programme.programme_id, programme, events)

    # -- credentials

    async def credential(self, client_id: str) -> Credential | None:
        return self.credentials_by_id.get(client_id)

    async def save_credential(self, credential: Credential) -> None:
        self.credentials_by_id[credential.client_id] = credential

    # -- interests

    async def add_interest(self, interest: Interest, events: list[OutboxEntry]) -> tuple[str, bool]:
        key = (interest.programme_id, interest.email_key)
        first = next((i for i in self.interests_by_id.values() if (i.programme_id, i.email_key) == key), None)
        if first is not None:  # her second expression of interest: the first one's id, and nothing raised
            return first.interest_id, False
        if interest.interest_id in self.interests_by_id:  # ids are random: the real store lets this through
            raise DuplicateKeyError(f"interest {interest.interest_id} exists")
        self.interests_by_id[interest.interest_id] = interest
        self.events += events
        return interest.interest_id, True

    async def interest_of(self, programme_id: str, email: str) -> dict[str, Any] | None:
        key = (programme_id, email_key(email))
        interest = next((i for i in self.interests_by_id.values() if (i.programme_id, i.email_key) == key), None)
        return None if interest is None else await self.interest(interest.interest_id)

    async def interest(self, interest_id: str) -> dict[str, Any] | None:
        interest = self.interests_by_id.get(interest_id)
        if interest is None:
            return None
        fields = {k: v for k, v in asdict(interest).items() if k != "interest_id"}
        return {"_id": interest.interest_id, **fields, "email_key": interest.email_key, "version": 1}

    # -- participants

    async def participant(self, participant_id: str) -> Participant | None:
        return self.participants_by_id.get(participant_id)

    async def participants_by_email(self, email: str) -> list[Participant]:
        return [p for p in self.participants_by_id.values() if email_key(p.email) == email_key(email)]

    async def add_participant(self, participant: Participant, events: list[OutboxEntry]) -> None:
        key = (participant.programme_id, email_key(participant.email))
        taken = any((p.programme_id, email_key(p.email)) == key for p in self.participants_by_id.values())
        if taken or participant.participant_id in self.participants_by_id.keys() | self.erased.keys():
            raise StateConflict(
                "email", "one-registration-per-programme", "this address is already registered in the programme"
            )
        self.participants_by_id[participant.participant_id] = participant
        self.events += events

    async def save_participant(self, participant: Participant, events: list[OutboxEntry]) -> None:
        self._save(self.participants_by_id, "participants", participant.participant_id, participant, events)

    async def erase_participant(self, participant: Participant, events: list[OutboxEntry]) -> None:
        pid = participant.participant_id
        stored = self.participants_by_id.get(pid)
        if stored is None or stored.version != participant.version:
            raise StateConflict("participant_id", "concurrent-update", "her record changed meanwhile; retry")
        del self.participants_by_id[pid]
        self.erased[pid] = {  # ids and status (for counts); her address no longer holds her place in the programme
            "_id": pid,
            "programme_id": stored.programme_id,
            "institution_id": stored.institution_id,
            "status": "erased",
            "erased_at": utcnow(),
            "email_key": f"erased:{pid}",
            "version": stored.version + 1,
        }
        self.events += events
        her_interest = (stored.programme_id, email_key(stored.email))  # the one she registered after, and any
        self.interests_by_id = {  # under her present address
            k: i
            for k, i in self.interests_by_id.items()
            if (i.programme_id, i.email_key) != her_interest and k != stored.interest_id
        }
        self.page_links_by_id = {k: link for k, link in self.page_links_by_id.items() if link.participant_id != pid}

    async def raw_participant(self, participant_id: str) -> dict[str, Any] | None:
        if participant_id in self.erased:
            return dict(self.erased[participant_id])
        p = self.participants_by_id.get(participant_id)
        if p is None:
            return None
        fields = {k: v for k, v in asdict(p).items() if k != "participant_id"}
        # Stored sealed: only the use cases' decrypted copy is readable.
        sealed = dict.fromkeys(p.sensitive, "sealed")
        return {"_id": p.participant_id, **fields, "email_key": email_key(p.email), "sensitive": sealed}

    # -- links to her programme's page

    async def last_page_link_at(self, participant_id: str) -> datetime | None:
        issued = [link.issued_at for link in self.page_links_by_id.values() if link.participant_id == participant_id]
        return max(issued, default=None)

    async def add_page_link(self, link: PageLink, events: list[OutboxEntry]) -> None:
        self.page_links_by_id[link.link_id] = link
        self.events += events

    async def use_page_link(self, link_id: str, now: datetime) -> PageLink | None:
        link = self.page_links_by_id.get(link_id)
        if link is None or link_id in self.links_used_at or link.expires_at <= now:
            return None
        self.links_used_at[link_id] = now
        return link

    def event_types(self) -> list[str]:
        """The types of the events written so far, in order."""
        return [entry["event_type"] for entry in self.events]


def _next_version(stored: Any, changed: Any, collection: str, aggregate_id: str) -> Any:
    """The changed aggregate at its next version; ConcurrentUpdate unless it was decided on the stored version."""
    if stored is None or stored.version != changed.version:
        raise ConcurrentUpdate(f"{collection} {aggregate_id} is no longer at version {changed.version}")
    return replace(changed, version=changed.version + 1)


@dataclass
class FakeNotificationStore:
    """NotificationStore's behaviour for what notifications' use cases ask of it, and for what the delivery
    worker records (waiting, sent, failed, purged), so a test can set the scene a use case meets.

    Documents are kept as the real store keeps them and handed out as copies, as a database would.
    """

    notifications: dict[str, dict[str, Any]] = field(default_factory=dict)  # by id
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)  # her details, or the mark of erasure/withdrawal
    programmes: dict[str, dict[str, Any]] = field(default_factory=dict)
    institution_names: dict[str, str] = field(default_factory=dict)
    proposals: dict[str, dict[str, Any]] = field(default_factory=dict)  # pair id -> open proposal, or that it closed
    digests: dict[str, dict[str, Any]] = field(default_factory=dict)
    preferences: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[OutboxEntry] = field(default_factory=list)  # every outbox entry written, in order

    # -- notifications

    async def add(
        self, notification: Notification, *, message_id: str, details_deadline: datetime, lease: timedelta
    ) -> dict[str, Any] | None:
        if notification.notification_id in self.notifications:  # a redelivered event
            return None
        doc = pending_doc(notification, message_id, details_deadline, utcnow(), lease)
        self.notifications[notification.notification_id] = doc
        return dict(doc)

    async def get(self, notification_id: str) -> dict[str, Any] | None:
        doc = self.notifications.get(notification_id)
        return dict(doc) if doc is not None else None

    async def requeue_failed(self, retried: Delivery, now: datetime) -> bool:
        doc = self.notifications.get(retried.notification_id)
        if doc is None or doc["status"] != FAILED or "purged_at" in doc:
            return False
        doc |= requeued(retried, now)
        _drop(doc, "failed_at", "waiting_for", "waiting_due")  # last_error stays, as history
        return True

    async def cancel_pending_to(self, participant_id: str, reason: str) -> int:
        hers = [
            d for d in self.notifications.values() if d.get("recipient_id") == participant_id and d["status"] == PENDING
        ]
        for doc in hers:
            doc |= {"status": CANCELLED, "cancelled_at": utcnow(), "last_error": reason}
            _drop(doc, SEND_DUE, "waiting_for", "waiting_due")
        return len(hers)

    async def wake_waiting(self, key: str) -> int:
        woken = 0
        for doc in self.notifications.values():
            # Only one still resting where its wait left it: one a worker claimed meanwhile is not taken twice.
            resting = doc.get(SEND_DUE) is not None and doc.get(SEND_DUE) == doc.get("waiting_due")
            if doc["status"] == PENDING and key in doc.get("waiting_for", []) and resting:
                doc[SEND_DUE] = utcnow()
                woken += 1
        return woken

    # -- what the delivery worker records

    async def mark_waiting(self, notification_id: str, missing: list[str], due: datetime) -> None:
        doc = self.notifications.get(notification_id)
        if doc is not None and doc["status"] == PENDING:
            doc |= {SEND_DUE: due, "waiting_due": due, "waiting_for": list(missing)}
            doc["detail_checks"] = doc.get("detail_checks", 0) + 1

    async def mark_sent(self, notification_id: str, events: list[OutboxEntry]) -> None:
        doc = self.notifications[notification_id]  # as the real store: by id alone
        doc |= {"status": SENT, "sent_at": utcnow(), "attempts": doc["attempts"] + 1}
        _drop(doc, SEND_DUE, "waiting_for", "waiting_due")
        self.events += events

    async def mark_failed(self, notification_id: str, error: str, events: list[OutboxEntry]) -> None:
        doc = self.notifications.get(notification_id)
        if doc is None or doc["status"] != PENDING:
            return
        doc |= {"status": FAILED, "last_error": error, "failed_at": utcnow(), "attempts": doc["attempts"] + 1}
        _drop(doc, SEND_DUE)
        self.events += events

    async def purge_details(self, created_before: datetime) -> int:
        purged = [
            d
            for d in self.notifications.values()
            if d["created_at"] < created_before and d["status"] in FINISHED and "purged_at" not in d
        ]
        for doc in purged:
            doc["purged_at"] = utcnow()
            _drop(doc, *PER_MESSAGE_DETAILS)
        return len(purged)

    # -- read models

    async def record_contact(self, contact: Contact, as_of: datetime) -> bool:
        doc = self.contacts.get(contact.participant_id)
        if doc is not None and (doc.get("erased") or doc.get("as_of", as_of) > as_of):
            return False  # erased, or newer details already held
        self.contacts[contact.participant_id] = (doc or {"_id": contact.participant_id}) | asdict(contact)
        self.contacts[contact.participant_id]["as_of"] = as_of
        return True

    async def erase_contact(self, participant_id: str) -> None:
        self.contacts[participant_id] = {"_id": participant_id, "erased": True, "erased_at": utcnow()}

    async def mark_withdrawn(self, participant_id: str) -> None:
        doc = self.contacts.setdefault(participant_id, {"_id": participant_id})
        doc |= {"withdrawn": True, "withdrawn_at": utcnow()}

    async def contact(self, participant_id: str) -> dict[str, Any] | None:
        doc = self.contacts.get(participant_id)
        return dict(doc) if doc is not None else None

    async def record_programme(self, programme: ProgrammeWording, as_of: datetime) -> None:
        doc = self.programmes.get(programme.programme_id)
        if doc is not None and doc.get("as_of", as_of) > as_of:
            return  # newer settings already held
        self.programmes[programme.programme_id] = (doc or {"_id": programme.programme_id}) | asdict(programme)
        self.programmes[programme.programme_id]["as_of"] = as_of

    async def record_institution(self, institution_id: str, name: str) -> None:
        self.institution_names[institution_id] = name

    # -- open proposals, for the digest

    async def open_proposal(self, proposal: OpenProposal) -> None:
        doc = self.proposals.get(proposal.pair_id)
        if doc is not None and doc.get("closed"):
            return  # a late copy does not reopen it
        fields = {k: v for k, v in asdict(proposal).items() if k not in ("pair_id", "answered")}
        kept = doc or {"_id": proposal.pair_id, "answered": list(proposal.answered)}
        self.proposals[proposal.pair_id] = kept | fields

    async def proposal_answered(self, pair_id: str, sides: list[str]) -> None:
        doc = self.proposals.get(pair_id)
        if doc is not None and not doc.get("closed"):
            doc["answered"] += [side for side in sides if side not in doc["answered"]]

    async def close_proposal(self, pair_id: str) -> None:
        self.proposals[pair_id] = {"_id": pair_id, "closed": True, "closed_at": utcnow()}

    async def close_proposals_of(self, participant_id: str) -> int:
        hers = [
            pair_id
            for pair_id, doc in self.proposals.items()
            if not doc.get("closed") and participant_id in (doc.get("mentee_id"), doc.get("mentor_id"))
        ]
        for pair_id in hers:  # closed, keeping no ids of hers
            doc = self.proposals[pair_id]
            _drop(doc, "mentee_id", "mentor_id", "programme_id", "answered")
            doc |= {"closed": True, "closed_at": utcnow()}
        return len(hers)

    async def open_proposals(self, programme_id: str) -> list[OpenProposal]:
        return [
            OpenProposal(
                pair_id=d["_id"],
                programme_id=d["programme_id"],
                mentee_id=d["mentee_id"],
                mentor_id=d["mentor_id"],
                proposed_at=d["proposed_at"],
                reply_by=d["reply_by"],
                answered=tuple(d.get("answered", [])),
            )
            for d in self.proposals.values()
            if not d.get("closed") and d.get("programme_id") == programme_id
        ]

    # -- digests

    async def save_digest(self, config: DigestConfig, due: datetime | None) -> dict[str, Any]:
        doc = self.digests.setdefault(config.programme_id, {"_id": config.programme_id})
        doc |= {
            "recipients": list(config.recipients),
            "enabled": config.enabled,
            "hour_utc": config.hour_utc,
            "updated_at": utcnow(),
        }
        if due is None:
            _drop(doc, DIGEST_DUE)
        else:
            doc[DIGEST_DUE] = due
        return dict(doc)

    async def digest_config(self, programme_id: str) -> dict[str, Any] | None:
        doc = self.digests.get(programme_id)
        return dict(doc) if doc is not None else None

    # -- preferences

    async def set_preference(self, subscriber: str, *, reminders: bool, by: str) -> dict[str, Any]:
        doc = self.preferences.setdefault(subscriber, {"_id": subscriber})
        doc |= {"reminders": reminders, "changed_at": utcnow(), "changed_by": by}
        return dict(doc)

    async def preference(self, subscriber: str) -> dict[str, Any] | None:
        doc = self.preferences.get(subscriber)
        return dict(doc) if doc is not None else None

    async def forget_preference(self, subscriber: str) -> None:
        self.preferences.pop(subscriber, None)

    def statuses(self) -> list[tuple[str | None, str, str]]:
        """(recipient, template, status) of every notification, sorted."""
        return sorted((d.get("recipient_id"), d["template"], d["status"]) for d in self.notifications.values())


def _drop(doc: dict[str, Any], *names: str) -> None:
    """$unset: remove the fields a document has of these."""
    for name in names:
        doc.pop(name, None)
