"""In-memory stand-ins for the services' stores, so use cases are tested fast and without I/O.

Each fake keeps the same promises as the store it replaces (what a test can observe through the
use cases), not its queries: a place held is held once, a stale version is refused, events are
kept beside the state they were written with.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from aimms_matching.domain.concerns import Concern
from aimms_matching.domain.ideas import Idea
from aimms_matching.domain.pairs import OPEN_STATES, Pair
from aimms_matching.domain.rules import Member, ProgrammeRules
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
    held_by: dict[str, set[str]] = field(default_factory=dict)  # mentor id -> pair ids holding her places
    erased: set[str] = field(default_factory=set)
    choices: dict[str, dict[str, Any]] = field(default_factory=dict)
    pairs_by_id: dict[str, Pair] = field(default_factory=dict)
    reports: list[dict[str, Any]] = field(default_factory=list)
    concerns_by_id: dict[str, Concern] = field(default_factory=dict)
    unplaced: set[tuple[str, str]] = field(default_factory=set)  # (mentee, wait) already announced
    ideas_recorded: list[Idea] = field(default_factory=list)
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
        self.members_by_id[member.participant_id] = member

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

    # -- rounds

    async def save_round(self, report: dict[str, Any]) -> None:
        self.reports.append(report)

    def event_types(self) -> list[str]:
        """The types of the events written so far, in order."""
        return [entry["event_type"] for entry in self.events]


@dataclass
class FakeSurveysStore:
    """SurveysStore's behaviour for invitations, evaluation status and departures (no responses or reports)."""

    questionnaires: dict[tuple[str, str], list[Questionnaire]] = field(default_factory=dict)  # by programme, wave
    policies: dict[str, SurveyPolicy] = field(default_factory=dict)
    departed: set[str] = field(default_factory=set)
    evaluation: dict[str, dict[str, Any]] = field(default_factory=dict)  # participant -> in_evaluation?, owed
    invitations: dict[str, Invitation] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    events: list[OutboxEntry] = field(default_factory=list)

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
