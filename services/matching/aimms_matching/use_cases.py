"""Matching use cases: keep the read model, take mentees' choices, show the directory."""

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import structlog

from aimms_matching.domain import circles, concerns, engine, ideas, mentoring_circles, pairs, rules
from aimms_matching.domain.mentoring_circles import MentoringCircle
from aimms_matching.domain.pairs import Explanation, Pair
from aimms_matching.domain.rules import Member, ProgrammeRules
from aimms_matching.links import Action, AnswerLinks
from aimms_matching.store import MatchingStore
from aimms_shared.auth import Principal
from aimms_shared.contracts import registration as reg
from aimms_shared.contracts.matching import EndReason, MenteeUnplaced, MentorPreferencesSubmitted, Side
from aimms_shared.errors import DomainError, Missing, NotYetKnown, RuleBroken, StateConflict
from aimms_shared.events import Envelope, Event
from aimms_shared.mapping import carried_over
from aimms_shared.mongo import utcnow
from aimms_shared.outbox import OutboxEntry, on_latest, outbox_entries

PRODUCER = "matching"

log = structlog.get_logger(__name__)


async def programme_announced(store: MatchingStore, event: reg.ProgrammeOpened | reg.ProgrammeUpdated) -> None:
    """Keep a programme's rules as registration announced them."""
    await store.save_programme(carried_over(ProgrammeRules, event))


async def profile_announced(
    store: MatchingStore, event: reg.ParticipantRegistered | reg.ParticipantProfileUpdated, envelope: Envelope
) -> None:
    """Keep a participant's profile as registration announced it."""
    await store.save_member(carried_over(Member, event, joined_at=envelope.occurred_at))


async def profile_text_announced(store: MatchingStore, event: reg.ParticipantProfileText) -> None:
    """Keep the free text of her profile that mentees read (job title, offers, answers)."""
    await store.save_member_text(event.model_dump(include={"participant_id", "job_title", "offers", "answers"}))


async def capacity_changed(store: MatchingStore, event: reg.MentorCapacityChanged) -> None:
    """A mentor's new capacity (places already held stay held)."""
    await store.set_capacity(event.participant_id, event.mentor_capacity)


async def submit_preferences(
    store: MatchingStore, caller: Principal, mentee_id: str, choices: list[str]
) -> tuple[str, ...]:
    """A mentee's ranked choices (MentorPreferencesSubmitted); her portal submits them."""
    mentee = await known_mentee(store, caller, mentee_id)
    if mentee.open_pair is not None:
        raise StateConflict("mentee_id", "not-yet-matched", "her choices are fixed once a mentor has been proposed")
    programme = await store.programme(mentee.programme_id)
    if programme is None:
        raise NotYetKnown("programme_id", f"programme '{mentee.programme_id}' has not reached matching yet")
    mentors = {m.participant_id: m for m in await store.published_mentors(mentee.programme_id)}
    for position, mentor_id in enumerate(choices):
        if mentor_id not in mentors and mentor_id != mentee_id and await store.member(mentor_id) is None:
            raise NotYetKnown(f"choices.{position}", f"mentor '{mentor_id}' has not reached matching yet")
    checked = rules.check_choices(mentee, choices, mentors, programme)
    event = MentorPreferencesSubmitted(
        mentee_id=mentee_id,
        programme_id=mentee.programme_id,
        institution_id=mentee.institution_id,
        choices=list(checked),
    )
    await store.save_preferences(
        mentee, checked, outbox_entries([event], producer=PRODUCER, institution_id=mentee.institution_id)
    )
    return checked


async def known_mentee(store: MatchingStore, caller: Principal, mentee_id: str) -> Member:
    """A participant the caller may act for; one matching has not heard of yet is asked for again shortly.

    Another institution's participant gets that same answer, so a portal cannot tell that an id it holds
    is someone's at another school."""
    mentee = await store.member(mentee_id)
    if mentee is None and await store.was_erased(mentee_id):
        raise Missing("mentee_id", "own-institution", f"no participant '{mentee_id}' at your institution")
    if mentee is None or not caller.may_act_for(mentee.institution_id, mentee_id):
        raise NotYetKnown("mentee_id", f"participant '{mentee_id}' has not reached matching yet")
    return mentee


async def may_read_directory(store: MatchingStore, caller: Principal, programme_id: str) -> None:
    """Portals and coordinators read any programme's mentors; a participant only her own programme's."""
    if not caller.is_participant:
        return
    participant_id = caller.participant_id or ""
    member = await store.member(participant_id)
    if member is None and not await store.was_erased(participant_id):
        raise NotYetKnown("programme_id", "your registration has not reached matching yet")
    if member is None or member.programme_id != programme_id:
        raise Missing("programme_id", "own-programme", f"you take part in no programme '{programme_id}'")


async def programme_rules(store: MatchingStore, programme_id: str) -> ProgrammeRules:
    """A programme's rules, or 409 while its announcement is still on its way."""
    programme = await store.programme(programme_id)
    if programme is None:
        raise NotYetKnown("programme_id", f"programme '{programme_id}' has not reached matching yet")
    return programme


def _outbox(pair: Pair, events: list[Event]) -> list[OutboxEntry]:
    return outbox_entries(events, producer=PRODUCER, institution_id=pair.mentee_institution_id)


def _end_by_coordinators(pair: Pair) -> pairs.Change:
    """Coordinators close a pair; one that already ended stays as it is (a decision taken twice)."""
    return pairs.end(pair, "coordinators", utcnow()) if pair.is_open else (pair, [])


def _explained(proposal: engine.Proposal) -> Explanation:
    return Explanation(
        round=proposal.round,
        choice_rank=proposal.choice_rank,
        fallback_reason=proposal.fallback_reason,
        score=round(proposal.score, 4),
        components={name: round(value, 4) for name, value in proposal.components.items()},
        shared_interests=proposal.shared_interests,
        seniority_gap=proposal.seniority_gap,
    )


class Matchmaker:
    """Rounds, rolling matches and every step of a pair's life, stored with the events they raise."""

    def __init__(self, store: MatchingStore, links: AnswerLinks, *, lease: timedelta) -> None:
        self._store = store
        self.links = links
        self._lease = lease
        self.circles = Circles(store, lease=lease)

    async def _programme(self, programme_id: str) -> ProgrammeRules:
        return await programme_rules(self._store, programme_id)

    # -- proposing

    async def _place(
        self, programme: ProgrammeRules, proposal: engine.Proposal, note: str | None = None
    ) -> Pair | None:
        """Hold both places and propose the pair; None when a place went to someone else meanwhile."""
        pair = Pair(
            pair_id=str(uuid.uuid4()),
            programme_id=programme.programme_id,
            mentee_id=proposal.mentee_id,
            mentor_id=proposal.mentor_id,
            mentee_institution_id=proposal.mentee_institution,
            mentor_institution_id=proposal.mentor_institution,
            explanation=replace(_explained(proposal), note=note),
            timing=programme.timing(),
            created_at=utcnow(),
        )
        await self._store.insert_pair(pair, recover_after=self._lease)
        if not await self._store.hold_places(pair):
            await self._store.delete_pair(pair.pair_id)
            return None
        return await self._propose(pair)

    async def _propose(self, held: Pair) -> Pair:
        proposed, events = pairs.propose(held, utcnow(), self.links.for_pair(held.pair_id))
        return await self._store.save_pair(proposed, held.version, _outbox(held, events))

    async def run_round(self, programme_id: str) -> dict[str, Any]:
        """A cohort round over every waiting mentee and the places still free; pairs in progress stay put.
        In a circles programme, the peers not yet in a circle are formed into circles."""
        programme = await self._programme(programme_id)
        if programme.kind == "circles":
            return await self.circles.form(programme)
        await self._store.mark_rounds_begun(programme_id, utcnow())  # before reading: choices made later roll
        members = await self._store.members(programme_id)
        mentors = [m for m in members if m.is_published_mentor]
        waiting = [m for m in members if m.is_waiting_mentee]
        choices = await self._store.choices_of(programme_id)
        exclusions = await self._store.exclusions(programme_id)
        exclusions |= rules.declared_conflicts(programme, waiting, mentors)
        # In a worker thread: a large cohort takes seconds, and on the event loop it would stall the
        # consumers' heartbeats (their sessions expire, and their partitions are handed over) and HTTP.
        result = await asyncio.to_thread(
            engine.match_cohort,
            [programme.as_mentee(m, choices.get(m.participant_id, ())) for m in waiting],
            [programme.as_mentor(m) for m in mentors],
            programme.policy(),
            exclusions,
        )
        limit = asyncio.Semaphore(8)

        async def place(proposal: engine.Proposal) -> bool:
            async with limit:
                return await self._place(programme, proposal) is not None

        placed = await asyncio.gather(*(place(p) for p in result.proposals))
        # A place taken meanwhile (a rolling match racing the round): she is matched one by one instead.
        for proposal, ok in zip(result.proposals, placed, strict=True):
            if not ok:
                await self.rematch(proposal.mentee_id)
        report = {
            "round_id": str(uuid.uuid4()),
            "programme_id": programme_id,
            "ran_at": utcnow(),
            "mentees": len(waiting),
            "mentors": len(mentors),
            "proposed": sum(placed),
            "unmatched": len(result.unmatched),
            "stable": _quality(programme, result.stable.quality),
            "residual": _quality(programme, result.residual.quality),
        }
        await self._store.save_round(report)
        log.info("matching.round", **{k: report[k] for k in ("programme_id", "mentees", "proposed", "unmatched")})
        return report

    async def rematch(self, mentee_id: str, attempts: int = 3) -> bool:
        """Match one waiting mentee against the places still free, leaving every other pair alone."""
        for _ in range(attempts):
            mentee = await self._store.member(mentee_id)
            if mentee is None or not mentee.is_waiting_mentee:
                return False
            programme = await self._programme(mentee.programme_id)
            mentors = await self._store.published_mentors(mentee.programme_id)
            choices = await self._store.preferences(mentee_id)
            exclusions = await self._store.exclusions(mentee.programme_id, mentee_id)
            exclusions |= rules.declared_conflicts(programme, [mentee], mentors)
            proposal = engine.rolling_match(
                programme.as_mentee(mentee, tuple(choices["choices"]) if choices else ()),
                [programme.as_mentor(m) for m in mentors],
                programme.policy(),
                exclusions,
            )
            if proposal is None:
                await self._unplaced(mentee)
                return False
            if await self._place(programme, proposal):
                return True
        return False

    async def _unplaced(self, mentee: Member) -> None:
        """No place fits her: the coordinators hear of it once per wait (MenteeUnplaced)."""
        [last] = await self._store.pairs(participant_id=mentee.participant_id, limit=1) or [None]
        wait = last.pair_id if last else "joined"  # a wait begins when she joins, or when a pair of hers closes
        waiting = self.links.page(f"/coordinators/programmes/{quote(mentee.programme_id, safe='')}/waiting")
        event = MenteeUnplaced(
            mentee_id=mentee.participant_id,
            programme_id=mentee.programme_id,
            institution_id=mentee.institution_id,
            waiting_url=waiting,
        )
        entries = outbox_entries([event], producer=PRODUCER, institution_id=mentee.institution_id)
        if await self._store.mark_unplaced(mentee.participant_id, wait, entries):
            log.info("matching.no_place_free", mentee_id=mentee.participant_id)

    # -- coordinators' hand

    async def waiting(self, programme_id: str) -> list[rules.Waiting]:
        """The programme's waiting mentees, longest waiting first, each with why she still waits."""
        members = await self._store.members(programme_id)
        mentee_ids = {m.participant_id for m in members if m.is_waiting_mentee}
        closed = await self._store.pairs(programme_id=programme_id, states=("declined", "ended"), limit=100_000)
        return rules.waiting_mentees(
            members,
            [p for p in closed if p.mentee_id in mentee_ids],
            await self._store.choices_of(programme_id),
            rounds_begun=await self._store.rounds_begun_at(programme_id) is not None,
        )

    async def propose_by_hand(self, programme_id: str, mentee_id: str, mentor_id: str, reason: str) -> Pair:
        """A coordinator's pair, with her reason as its explanation (MatchProposed, round `manual`)."""
        programme = await self._programme(programme_id)
        saved = await self._store.preferences(mentee_id)
        exclusions = await self._store.exclusions(programme_id, mentee_id)
        mentee, mentor = await self._store.member(mentee_id), await self._store.member(mentor_id)
        if mentee is not None and mentor is not None:
            exclusions |= rules.declared_conflicts(programme, [mentee], [mentor])
        choices = tuple(saved["choices"]) if saved else ()
        proposal = rules.manual_proposal(programme, mentee, mentor, choices, exclusions)
        placed = await self._place(programme, proposal, note=reason)
        if placed is None:
            raise StateConflict("mentor_id", "place-free", "the place was taken meanwhile; choose again")
        return placed

    # -- safeguarding

    async def raise_concern(
        self, caller: Principal, pair_id: str, side: Side | None, text: str, asks: concerns.Asks
    ) -> concerns.Concern:
        """One side's concern reaches the coordinators at once (ConcernRaised); the other side never sees it."""
        side, pair = await self._acting_side(caller, pair_id, side)
        review = self.links.page(f"/coordinators/programmes/{quote(pair.programme_id, safe='')}/concerns")
        concern, alert = concerns.raise_concern(
            pair, side, text, asks, concern_id=str(uuid.uuid4()), now=utcnow(), review_url=review
        )
        entries = outbox_entries([alert], producer=PRODUCER, institution_id=pair.institution(side))
        await self._store.add_concern(concern, entries)
        log.info("matching.concern_raised", pair_id=pair_id, concern_id=concern.concern_id, asks=asks)
        return concern

    async def _acting_side(self, caller: Principal, pair_id: str, side: Side | None) -> tuple[Side, Pair]:
        """The side the caller acts for: a participant's own, or the one her portal names."""
        if caller.is_participant:  # her own pair, on whichever side she is: read once
            pair = await self._store.pair(pair_id)
            own = next((s for s in pairs.SIDES if pair and pair.participant(s) == caller.participant_id), None)
            if pair is None or own is None:
                raise Missing("pair_id", "own-pair", f"no pair '{pair_id}' of yours")
            return own, pair
        if side is None:
            raise RuleBroken("side", "required", "say which side of the pair acts")
        return side, await self.pair_for(caller, pair_id, side)

    async def close_concern(self, concern_id: str, outcome: concerns.Outcome, note: str | None) -> concerns.Concern:
        """The coordinators' decision: no action, the pair paused, or the pair ended (MatchPaused / MatchEnded)."""
        concern = await self._store.concern(concern_id)
        if concern is None:
            raise Missing("concern_id", "existing-concern", f"no concern '{concern_id}'")
        closed = concerns.close(concern, outcome, note, utcnow())  # refused before the pair is touched
        if outcome == "paused":
            await self._change(concern.pair_id, lambda pair: pairs.pause(pair, utcnow()))
        elif outcome == "ended":
            await self._change(concern.pair_id, _end_by_coordinators)
        await self._store.save_concern(closed, concern.version)
        return closed

    async def resume(self, pair_id: str) -> Pair:
        """Coordinators resume a paused pair (MatchResumed)."""
        return await self._change(pair_id, lambda pair: pairs.resume(pair, utcnow()))

    # -- answers and the partnership

    async def _change(self, pair_id: str, decide: Callable[[Pair], pairs.Change]) -> Pair:
        """Apply a decision to the pair as it is now; retried when someone else changed it meanwhile."""

        async def attempt() -> Pair:
            pair = await self._store.pair(pair_id)
            if pair is None:
                raise Missing("pair_id", "existing-pair", f"no pair '{pair_id}'")
            changed, events = decide(pair)
            saved = await self._store.save_pair(changed, pair.version, _outbox(pair, events))
            if not saved.is_open and pair.is_open:
                await self._store.release_places(saved)
            return saved

        return await on_latest(attempt, what=f"pair {pair_id}")

    async def pair_for(self, caller: Principal, pair_id: str, side: Side | None = None) -> Pair:
        """A pair the caller may see (acting for `side`, when given)."""
        pair = await self._store.pair(pair_id)
        sides = (side,) if side else pairs.SIDES
        if pair is None or not any(caller.may_act_for(pair.institution(s), pair.participant(s)) for s in sides):
            raise Missing("pair_id", "own-institution", f"no pair '{pair_id}' for your institution")
        return pair

    async def answer(self, pair_id: str, side: Side, accept: bool, reason: str | None = None) -> Pair:
        """One side accepts or declines (MatchAccepted / MentoringStarted / MatchDeclined)."""
        return await self._change(pair_id, lambda pair: pairs.answer(pair, side, accept, utcnow(), reason))

    async def answer_by_link(self, token: str, reason: str | None = None) -> tuple[Pair, bool]:
        """An answer from an email link; the token says which pair, side and answer."""
        pair_id, side, action = self.links.read(token)
        return await self.answer(pair_id, side, action == "accept", reason), action == "accept"

    async def proposal_by_link(self, token: str) -> tuple[Pair, Side, Action, Member | None, str]:
        """The pair an answer link names, as it is now, the other side as matching knows her, and what the
        programme calls its giving side (mentor, sponsor or ally)."""
        pair_id, side, action = self.links.read(token)
        pair = await self._store.pair(pair_id)
        if pair is None:
            # A held pair is deleted when a side leaves before it was proposed; its links go nowhere.
            raise Missing("token", "existing-pair", "this proposal was withdrawn; your coordinator will be in touch")
        other = await self._store.member(pair.participant("mentor" if side == "mentee" else "mentee"))
        programme = await self._store.programme(pair.programme_id)
        return pair, side, action, other, programme.giver if programme else "mentor"

    async def record_meeting(
        self, caller: Principal, pair_id: str, side: Side | None, held_on: date, notes: str | None
    ) -> Pair:
        """A meeting of the partnership (MeetingRecorded); the first ends the trial."""
        acting, _ = await self._acting_side(caller, pair_id, side)
        meeting_id = str(uuid.uuid4())
        return await self._change(
            pair_id, lambda pair: pairs.record_meeting(pair, acting, held_on, notes, utcnow(), meeting_id)
        )

    async def record_idea(self, caller: Principal, pair_id: str, side: Side | None, text: str) -> None:
        """An idea for change from a partnership, kept without the pair's or anyone's id."""
        _, pair = await self._acting_side(caller, pair_id, side)
        programme = await self._programme(pair.programme_id)
        token = self.links.pair_token(pair.pair_id)
        await self._store.add_idea(
            ideas.record(pair, text, programme_asks=programme.ideas_for_change, pair_token=token, now=utcnow())
        )

    async def end(self, pair_id: str, side: Side, reason: EndReason) -> Pair:
        """Either side ends the partnership: in the trial, abandoned, or completed early."""
        return await self._change(pair_id, lambda pair: pairs.end(pair, reason, utcnow(), side))

    async def decide_term(self, pair_id: str, side: Side, extend: bool) -> Pair:
        """At the term's end: extend (both must) or conclude."""
        return await self._change(pair_id, lambda pair: pairs.decide_term(pair, side, extend, utcnow()))

    async def participant_left(self, participant_id: str, *, erased: bool) -> None:
        """Withdrawn or erased: never offered or matched again, her pairs closed; erased, nothing of her kept."""
        await self._store.deactivate(participant_id)
        await self._close_pairs_of(participant_id)
        await self.circles.member_left(participant_id)
        if erased:
            await self._store.forget(participant_id)

    async def choices_made(self, programme_id: str, mentee_id: str, made_at: datetime) -> None:
        """Her choices after the first round began: she is matched at once (earlier ones are the round's)."""
        begun_at = await self._store.rounds_begun_at(programme_id)
        if begun_at is not None and made_at > begun_at:
            await self.rematch(mentee_id)

    async def _close_pairs_of(self, participant_id: str) -> None:
        """She left: her proposals are cancelled and partnerships ended; the other side is re-matched."""
        for pair in await self._store.open_pairs_of(participant_id):
            if pair.state == "held":
                await self._store.release_places(pair)
                await self._store.delete_pair(pair.pair_id)
            else:
                side: Side = "mentee" if pair.mentee_id == participant_id else "mentor"
                await self._change(pair.pair_id, lambda p, side=side: pairs.end(p, "withdrawn", utcnow(), side))

    async def settle(self, pair_id: str) -> None:
        """After a pair closed (its own event, consumed here): places free, and the mentee matched anew if owed."""
        pair = await self._store.pair(pair_id)
        if pair is None or pair.is_open:
            return
        await self._store.release_places(pair)
        if pair.end_reason in ("completed", "abandoned"):
            await self._store.mark_done(pair.mentee_id)
        elif await self._store.rounds_begun_at(pair.programme_id):
            await self.rematch(pair.mentee_id)

    # -- the scheduler's steps

    async def run_due(self, limit: int = 50) -> int:
        """Do every step that is due: reminders, expiries, follow-ups, term ends, unfinished holds; circles'
        follow-ups."""
        circles_due = await self.circles.run_due(limit)
        due = await self._store.claim_due_pairs(self._lease, limit)
        for pair in due:
            if pair.state == "held":
                await self._recover(pair)
                continue
            links = self.links.for_pair(pair.pair_id)
            try:
                await self._change(pair.pair_id, lambda p, links=links: pairs.tick(p, utcnow(), links))
            except DomainError as exc:  # a state the clock cannot move on: logged, never retried in a loop
                log.warning("matching.tick_refused", pair_id=pair.pair_id, error=str(exc))
        return len(due) + circles_due

    async def _recover(self, held: Pair) -> None:
        """A holder died between holding places and proposing: finish if both places are held, else undo."""
        if await self._store.hold_places(held):
            await self._propose(held)
        else:
            await self._store.release_places(held)
            await self._store.delete_pair(held.pair_id)


class Circles:
    """Mentoring circles: formed from the peers not yet in one, members leaving, the follow-up."""

    def __init__(self, store: MatchingStore, *, lease: timedelta) -> None:
        self._store = store
        self._lease = lease

    async def form(self, programme: ProgrammeRules) -> dict[str, Any]:
        """Every peer not yet in a circle into one of 4-8, with a free facilitator where there is one."""
        if not await self._store.claim_round(programme.programme_id, self._lease):
            raise StateConflict("programme_id", "one-round-at-a-time", "a round of this programme is running")
        try:
            return await self._form(programme)
        finally:
            await self._store.release_round(programme.programme_id)

    async def _form(self, programme: ProgrammeRules) -> dict[str, Any]:
        taken = await self._store.in_circles(programme.programme_id)
        free = {
            m.participant_id: m
            for m in await self._store.members(programme.programme_id)
            if m.participant_id not in taken
        }
        peers = [mentoring_circles.as_peer(programme, m) for m in free.values() if "peer" in m.roles]
        facilitators = [
            circles.Facilitator(m.participant_id, m.institution_id, frozenset(m.research_interests))
            for m in free.values()
            if "facilitator" in m.roles
        ]
        result = await asyncio.to_thread(circles.form_circles, peers, facilitators)
        now = utcnow()
        for circle in result.circles:
            formed, events = mentoring_circles.formed(str(uuid.uuid4()), programme, circle, result, free, now)
            await self._store.add_circle(formed, _circle_outbox(events))
        report = {
            "round_id": str(uuid.uuid4()),
            "programme_id": programme.programme_id,
            "ran_at": now,
            "kind": "circles",
            "mentees": len(peers),
            "mentors": len(facilitators),
            "proposed": len(peers) - len(result.unplaced),
            "unmatched": len(result.unplaced),
            "circles": len(result.circles),
            "stable": dict(result.quality),
            "residual": {},
        }
        await self._store.save_round(report)
        log.info("matching.circles", programme_id=programme.programme_id, peers=len(peers), circles=len(result.circles))
        return report

    async def circle_for(self, caller: Principal, circle_id: str) -> MentoringCircle:
        """A circle its reader may see: coordinators, a member, or the portal of a member's institution
        (anyone else is told it does not exist, as for an absent one)."""
        circle = await self._store.circle(circle_id)
        if circle is None or not any(caller.may_act_for(m.institution_id, m.participant_id) for m in circle.members):
            raise Missing("circle_id", "existing-circle", f"no circle '{circle_id}'")
        return circle

    async def member_left(self, participant_id: str) -> None:
        """She withdrew or was erased: each circle she is in goes on without her."""
        for circle in await self._store.circles(participant_id=participant_id):
            await self._change(circle.circle_id, lambda c: mentoring_circles.leave(c, participant_id))

    async def run_due(self, limit: int) -> int:
        """Circles at their follow-up point: their members are asked how it went."""
        due = await self._store.claim_due_circles(self._lease, limit)
        for circle in due:
            await self._change(circle.circle_id, lambda c: mentoring_circles.tick(c, utcnow()))
        return len(due)

    async def _change(
        self, circle_id: str, decide: Callable[[MentoringCircle], mentoring_circles.Change]
    ) -> MentoringCircle:
        """A decision on the circle as it is now; retried when someone else changed it meanwhile."""

        async def attempt() -> MentoringCircle:
            circle = await self._store.circle(circle_id)
            if circle is None:
                raise Missing("circle_id", "existing-circle", f"no circle '{circle_id}'")
            changed, events = decide(circle)
            await self._store.save_circle(changed, circle.version, _circle_outbox(events))
            return replace(changed, version=circle.version + 1)

        return await on_latest(attempt, what=f"circle {circle_id}")


def _circle_outbox(events: list[Event]) -> list[OutboxEntry]:
    # A circle spans institutions; its envelope names none (each member's institution is in the event).
    return outbox_entries(events, producer=PRODUCER)


def _quality(programme: ProgrammeRules, quality: engine.RoundQuality) -> dict[str, Any]:
    """The engine's report, with seniority levels named as the programme names them."""
    report = quality.as_dict()
    report["by_seniority"] = {
        programme.seniority_scale[int(level)]: rates for level, rates in report["by_seniority"].items()
    }
    return report
