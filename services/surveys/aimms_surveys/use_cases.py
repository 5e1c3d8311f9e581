"""Surveys use cases: invite on the scheme's events, take answers by token, report, remind."""

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import structlog

from aimms_shared.contracts.registration import ProgrammeKind, Role
from aimms_shared.contracts.surveys import SurveyCompleted, Wave
from aimms_shared.errors import Missing
from aimms_shared.mongo import utcnow
from aimms_shared.outbox import on_latest, outbox_entries
from aimms_surveys.domain import invitations, reports
from aimms_surveys.domain.invitations import Invitation, Invitee, SurveyLinkUnusable, SurveyPolicy
from aimms_surveys.domain.questionnaires import (
    Questionnaire,
    QuestionnaireDraft,
    QuestionnaireTemplate,
    validate_answers,
)
from aimms_surveys.store import SurveysStore

PRODUCER = "surveys"
DEFINITIONS = Path(__file__).parent / "definitions"

log = structlog.get_logger(__name__)

Definition = TypeVar("Definition", bound=QuestionnaireDraft)


def _shipped(model: type[Definition], directory: Path) -> list[Definition]:
    return [model.model_validate(json.loads(path.read_text())) for path in sorted(directory.glob("*.json"))]


def shipped_questionnaires(directory: Path = DEFINITIONS) -> list[Questionnaire]:
    """The default definitions shipped as data files (the AIMMS baseline and six-month questionnaires)."""
    return _shipped(Questionnaire, directory)


def shipped_templates(directory: Path = DEFINITIONS / "kinds") -> list[QuestionnaireTemplate]:
    """The questionnaires each programme of a kind starts with, shipped as data files (circles' baseline and
    follow-up)."""
    return _shipped(QuestionnaireTemplate, directory)


async def seed_questionnaires(store: SurveysStore, questionnaires: list[Questionnaire]) -> None:
    """Store the shipped definitions that are not there yet; a revision made through the API is kept."""
    for questionnaire in questionnaires:
        if await store.seed_questionnaire(questionnaire):
            log.info("surveys.questionnaire_seeded", programme_id=questionnaire.programme_id, wave=questionnaire.wave)


_outbox = partial(outbox_entries, producer=PRODUCER)  # events raised here, ready for a store's outbox


class Surveys:
    """Invitations, answers and reports, stored with the events they raise."""

    def __init__(
        self,
        store: SurveysStore,
        *,
        public_url: str,
        lease: timedelta,
        templates: Sequence[QuestionnaireTemplate],
    ) -> None:
        self._store = store
        self._public_url = public_url
        self._lease = lease
        self._templates = templates

    # -- coordinators' settings

    async def programme_announced(self, programme_id: str, kind: ProgrammeKind) -> None:
        """ProgrammeOpened/Updated: a programme without questionnaires of its own gets its kind's, so a circles
        programme is evaluated with no definition written for it (a coordinator's revision is kept)."""
        of_its_kind = [t.for_programme(programme_id) for t in self._templates if t.kind == kind]
        await seed_questionnaires(self._store, of_its_kind)

    async def revise_questionnaire(self, programme_id: str, wave: Wave, draft: QuestionnaireDraft) -> Questionnaire:
        """A new version of a wave's questionnaire; invitations issued from now on get it."""
        current = await self._store.latest_questionnaire(programme_id, wave)
        if current is not None:
            draft.check_revises(current)
        return await self._store.add_questionnaire(programme_id, wave, draft)

    async def set_policy(self, programme_id: str, policy: SurveyPolicy) -> SurveyPolicy:
        """Replace the programme's survey policy (invitations already issued keep their timing)."""
        await self._store.save_policy(programme_id, policy)
        return policy

    # -- invitations

    async def invite(
        self, participant_id: str, programme_id: str, wave: Wave, role: Role, institution_id: str | None = None
    ) -> bool:
        """Ask her to answer this wave in this role, once per programme (SurveyInvitationIssued)."""
        if await self._store.is_invited(programme_id, wave, role, participant_id):
            return False
        if await self._store.has_departed(participant_id):
            return False
        if not await self._in_evaluation(participant_id, programme_id, wave, role, institution_id):
            return False
        questionnaire = await self._store.latest_questionnaire(programme_id, wave)
        if questionnaire is None:
            log.info("surveys.no_questionnaire", programme_id=programme_id, wave=wave)
            return False
        if role not in questionnaire.roles:  # a link to a form with nothing for her to answer helps nobody
            log.info("surveys.role_not_asked", programme_id=programme_id, wave=wave, role=role)
            return False
        policy = await self._store.policy(programme_id)
        token = invitations.new_token()
        invitation, event = invitations.issue(
            invitation_id=str(uuid.uuid4()),
            participant_id=participant_id,
            programme_id=programme_id,
            institution_id=institution_id,
            wave=wave,
            role=role,
            questionnaire_version=questionnaire.version,
            policy=policy,
            now=utcnow(),
            token=token,
            public_url=self._public_url,
        )
        await self._store.add_token(token[1], invitation.invitation_id)
        if not await self._store.insert_invitation(invitation, _outbox([event], institution_id)):
            return False
        log.info("surveys.invited", invitation_id=invitation.invitation_id, wave=wave, role=role)
        return True

    async def _in_evaluation(
        self, participant_id: str, programme_id: str, wave: Wave, role: Role, institution_id: str | None
    ) -> bool:
        """Only those who consented to the evaluation (and were not excluded) are asked; where registration's word
        on her has not arrived yet, the invitation is kept for it."""
        included = await self._store.in_evaluation(participant_id)
        if included is None:
            owed = {"programme_id": programme_id, "wave": wave, "role": role, "institution_id": institution_id}
            if await self._store.owe_invitation(participant_id, owed):
                log.info("surveys.invitation_owed", programme_id=programme_id, wave=wave, role=role)
                return False
            included = await self._store.in_evaluation(participant_id)
        return bool(included)

    async def evaluation_changed(self, participant_id: str, in_evaluation: bool) -> None:
        """Registration's word on whether she is in the evaluation: owed invitations go out, or hers stop working."""
        owed = await self._store.set_evaluation(participant_id, in_evaluation)
        if in_evaluation:
            for o in owed:  # invite is idempotent, so a redelivery after a crash here issues nothing twice
                await self.invite(participant_id, o["programme_id"], o["wave"], o["role"], o["institution_id"])
        else:
            await self._store.void_open_invitations(participant_id)
        await self._store.settle_owed(participant_id, owed)

    async def mentoring_reached(self, programme_id: str, invitees: Iterable[Invitee], *, trigger: str) -> None:
        """A pair started or a circle formed (MentoringStarted, CircleFormed: the baseline, if the programme sends
        it then), or either reached its follow-up point (SixMonthsElapsed, CircleFollowUpDue: the follow-up)."""
        policy = await self._store.policy(programme_id)
        if trigger == "mentoring_started" and policy.baseline_on != "mentoring_started":
            return
        if trigger == "follow_up" and not policy.follow_up:
            return
        wave: Wave = "follow_up" if trigger == "follow_up" else "baseline"
        for invitee in invitees:
            await self.invite(invitee.participant_id, programme_id, wave, invitee.role, invitee.institution_id)

    async def circle_reached(self, programme_id: str, members: Iterable[Invitee], *, trigger: str) -> None:
        """CircleFormed or CircleFollowUpDue: each member is asked as a pair's sides are, in her role. A circle says
        its programme is a circles programme, so the circle questionnaires are adopted here too: the programme's
        ProgrammeOpened is on another topic, may be read after the circle, or be gone with the topic's retention."""
        await self.programme_announced(programme_id, "circles")
        await self.mentoring_reached(programme_id, members, trigger=trigger)

    async def registered(
        self, participant_id: str, programme_id: str, roles: list[Role], institution_id: str, *, in_evaluation: bool
    ) -> None:
        """ParticipantRegistered: whether she is in the evaluation; the baseline, for programmes that send it now."""
        await self.evaluation_changed(participant_id, in_evaluation)
        if (await self._store.policy(programme_id)).baseline_on != "registration":
            return
        for role in roles:
            await self.invite(participant_id, programme_id, "baseline", role, institution_id)

    async def participant_left(self, participant_id: str, *, erased: bool) -> None:
        """Withdrawn or erased: her open invitations stop working, and she is never asked again."""
        await self._store.mark_departed(participant_id)
        voided = await self._store.void_open_invitations(participant_id)
        if erased:
            await self._store.forget_participant(participant_id)
        log.info("surveys.participant_left", voided=voided, erased=erased)

    # -- answering

    async def _answerable(self, token: str) -> tuple[Invitation, Questionnaire]:
        invitation = await self._store.invitation_by_token(invitations.token_hash(token))
        if invitation is None:
            raise SurveyLinkUnusable()
        invitation.check_answerable(utcnow())
        questionnaire = await self._store.questionnaire(
            invitation.programme_id, invitation.wave, invitation.questionnaire_version
        )
        if questionnaire is None:  # a definition is never deleted; treat a gap like any unusable link
            raise SurveyLinkUnusable()
        return invitation, questionnaire

    async def questionnaire_for(self, token: str) -> dict[str, Any]:
        """The questionnaire her link stands for, as her role sees it."""
        invitation, questionnaire = await self._answerable(token)
        return questionnaire.view_for(invitation.role) | {"expires_at": invitation.expires_at}

    async def submit(self, token: str, answers: Mapping[str, Any]) -> dict[str, Any]:
        """Record her answers anonymously and use up the link: all of it, once, or nothing."""
        invitation, questionnaire = await self._answerable(token)
        valid = validate_answers(questionnaire, invitation.role, answers)
        now = utcnow()
        if not await self._store.use_invitation(invitation.invitation_id, now):
            raise SurveyLinkUnusable()
        completed = SurveyCompleted(
            programme_id=invitation.programme_id,
            wave=invitation.wave,
            role=invitation.role,
            questionnaire_version=questionnaire.version,
        )
        try:
            await self._store.insert_response(
                invitation.programme_id,
                invitation.wave,
                invitation.role,
                questionnaire.version,
                now.date().isoformat(),
                valid,
                questionnaire.sensitive_items(),
                _outbox([completed]),
            )
        except BaseException:
            await self._store.reopen_invitation(invitation.invitation_id)
            raise
        # Logged without the invitation: a log line must not join a response to a person either.
        log.info("surveys.response_recorded", programme_id=invitation.programme_id, wave=invitation.wave)
        return {"recorded": True, "wave": invitation.wave, "role": invitation.role}

    # -- reports

    async def report(self, programme_id: str) -> dict[str, Any]:
        """The programme's evaluation tables, small groups suppressed."""
        questionnaires = await self._store.questionnaires(programme_id)
        if not questionnaires:
            raise Missing("programme_id", "has-questionnaires", f"programme '{programme_id}' has no questionnaires")
        versions: dict[Wave, list[Questionnaire]] = {}
        for questionnaire in questionnaires:
            versions.setdefault(questionnaire.wave, []).append(questionnaire)
        policy = await self._store.policy(programme_id)
        return reports.programme_report(
            programme_id,
            versions,
            await self._store.invitation_counts(programme_id),
            await self._store.responses(programme_id),
            policy.min_cell_size,
        )

    # -- the scheduler

    async def run_due(self, limit: int = 50) -> int:
        """Send the reminders that are due and expire what ran out."""
        due = await self._store.claim_due_invitations(self._lease, limit)
        for invitation in due:
            await self._tick(invitation.invitation_id)
        return len(due)

    async def _tick(self, invitation_id: str) -> None:
        async def attempt() -> None:
            invitation = await self._store.invitation(invitation_id)
            if invitation is None:
                return
            token = invitations.new_token()
            changed, events = invitations.tick(invitation, utcnow(), token, self._public_url)
            if events:
                await self._store.add_token(token[1], invitation_id)
            await self._store.save_invitation(changed, invitation.version, _outbox(events, invitation.institution_id))

        await on_latest(attempt, what=f"invitation {invitation_id}")
