"""What a participant does on the portal's pages, over the public APIs."""

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import jwt

from aimms_portal.apis import Absent, Apis, MatchingApi, Refused, SessionEnded, SurveysApi, Unavailable
from aimms_portal.domain import dashboard
from aimms_portal.domain.forms import Form, Submitted, answers_from, form, problems_from
from aimms_portal.domain.my_page import MyPage, choices_from, my_page
from aimms_portal.domain.proposals import Proposal, proposal


@dataclass(frozen=True)
class Answered:
    """Her answers were recorded; the link is used up."""

    wave: str
    role: str


class Questionnaires:
    """Answering a questionnaire from the link an invitation emailed."""

    def __init__(self, surveys: SurveysApi) -> None:
        self._surveys = surveys

    async def blank(self, token: str) -> Form:
        """The empty form her link stands for (LinkGone when it cannot be used)."""
        return form(await self._surveys.questionnaire(token))

    async def answer(self, token: str, submitted: Submitted) -> Answered | Form:
        """Record her answers, or the form again as she filled it, each refused answer marked."""
        view = await self._surveys.questionnaire(token)
        reply = await self._surveys.answer(token, answers_from(view, submitted))
        if isinstance(reply, Refused):
            return form(view, submitted, problems_from(view, reply.errors))
        return Answered(wave=reply["wave"], role=reply["role"])


@dataclass(frozen=True)
class Replied:
    """Her answer to a proposal was recorded."""

    accepted: bool
    started: bool  # both sides accepted: the mentoring has begun


class Proposals:
    """Accepting or declining a proposal from the link its email carried."""

    def __init__(self, matching: MatchingApi) -> None:
        self._matching = matching

    async def show(self, token: str) -> Proposal:
        """The proposal her link stands for (LinkGone when the link is not genuine)."""
        return proposal(await self._matching.proposal(token))

    async def reply(self, token: str, reason: str | None) -> Replied | tuple[Proposal, str]:
        """Record the answer the link gives, or the page again with what was wrong."""
        reply = await self._matching.answer(token, (reason or "").strip() or None)
        if isinstance(reply, Refused):
            problem = "; ".join(e.get("message", "") for e in reply.errors) or "Your answer could not be recorded."
            return await self.show(token), problem
        # A decline closes the proposal at once; an acceptance leaves it open until both accepted.
        return Replied(accepted=reply["state"] != "declined", started=reply["state"] == "mentoring")


@dataclass(frozen=True)
class Overview:
    programme: dict[str, Any]
    funnel: dashboard.Funnel
    rounds: list[dashboard.Round]
    meetings: dict[str, Any]  # per partnership that started: partnerships, mean, min, max
    ideas: dict[str, Any] | None  # ideas for change without names, where the programme collects them
    circles: list[dashboard.CircleRow] | None = None  # a circles programme's circles


@dataclass(frozen=True)
class Evaluation:
    programme: dict[str, Any]
    waves: list[dashboard.Wave]
    note: str


@dataclass(frozen=True)
class Waiting:
    programme: dict[str, Any]
    mentees: list[dashboard.WaitingMentee]
    mentors: list[dashboard.MentorOption]


@dataclass(frozen=True)
class Concerns:
    programme: dict[str, Any]
    open: list[dashboard.ConcernShown]
    paused: list[dashboard.PausedPair]


# The delivery log's statuses a coordinator acts on, in the order she reads them.
TO_WATCH = ("failed", "pending")


class Coordinators:
    """What a coordinator reads and does on the dashboard, with her own access token."""

    def __init__(self, apis: Apis) -> None:
        self._apis = apis

    async def sign_in(self, client_id: str, client_secret: str) -> tuple[str, int]:
        return await self._apis.sign_in(client_id, client_secret)

    async def programmes(self, token: str) -> list[dict[str, Any]]:
        return sorted(await self._apis.get("registration", "/programmes", token), key=lambda p: p["name"])

    async def overview(self, token: str, programme_id: str) -> Overview:
        """The funnel from interest to follow-up, and every matching round's quality."""
        programme, pipeline, pairs, survey, reports = await asyncio.gather(
            self._programme(token, programme_id),
            self._apis.get("registration", "/reports/pipeline", token, programme_id=programme_id),
            self._apis.get("matching", "/reports/matching", token, programme_id=programme_id),
            self._apis.get("surveys", f"/reports/{quote(programme_id, safe='')}", token),
            self._apis.get("matching", f"/programmes/{quote(programme_id, safe='')}/rounds", token),
        )
        funnel = dashboard.funnel(programme_id, pipeline, pairs, survey)
        ideas, circles = None, None
        if programme.get("ideas_for_change"):
            ideas = await self._apis.get("matching", f"/programmes/{quote(programme_id, safe='')}/ideas", token)
        if programme.get("kind") == "circles":
            found = await self._apis.get("matching", "/circles", token, programme_id=programme_id)
            circles = dashboard.circles(found)
        return Overview(programme, funnel, dashboard.rounds(reports), pairs.get("meetings") or {}, ideas, circles)

    async def evaluation(self, token: str, programme_id: str) -> Evaluation:
        """The evaluation's tables, roles side by side."""
        programme, report = await asyncio.gather(
            self._programme(token, programme_id),
            self._apis.get("surveys", f"/reports/{quote(programme_id, safe='')}", token),
        )
        return Evaluation(programme, dashboard.survey_tables(report), report.get("note", ""))

    async def evaluation_csv(self, token: str, programme_id: str) -> str:
        return await self._apis.text("surveys", f"/reports/{quote(programme_id, safe='')}/csv", token)

    async def deliveries(self, token: str, programme_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The programme's emails not sent: failed first, then those still pending."""
        programme, log = await asyncio.gather(
            self._programme(token, programme_id),
            self._apis.get("notifications", "/deliveries", token, programme_id=programme_id),
        )
        watched = sorted((d for d in log if d["status"] in TO_WATCH), key=lambda d: TO_WATCH.index(d["status"]))
        recipients = await asyncio.gather(*(self._recipient(token, d.get("recipient_id")) for d in watched))
        shown = [
            d | {"email": dashboard.email_name(d["template"]), "recipient": recipient}
            for d, recipient in zip(watched, recipients, strict=True)
        ]
        return programme, shown

    async def _recipient(self, token: str, participant_id: str | None) -> str:
        """Who an email is for, as registration names her (notifications keeps ids only in its log)."""
        if participant_id is None:
            return "Coordinators"
        try:
            person = await self._apis.get("registration", f"/participants/{quote(participant_id, safe='')}", token)
        except Absent:
            return "Erased participant"
        return f"{person['name']} <{person['email']}>"

    async def retry(self, token: str, notification_id: str) -> str | None:
        """Send a failed email again; None when queued, else why not."""
        outcome = await self._apis.post("notifications", f"/deliveries/{quote(notification_id, safe='')}/retry", token)
        return _why(outcome, "The email could not be queued again.")

    async def waiting(self, token: str, programme_id: str) -> Waiting:
        """Mentees still waiting, with why, and the mentors with a place free to propose by hand."""
        pid = quote(programme_id, safe="")
        programme, rows, people, directory, institutions = await asyncio.gather(
            self._programme(token, programme_id),
            self._apis.get("matching", f"/programmes/{pid}/waiting", token),
            self._apis.get("registration", "/participants", token, programme_id=programme_id),
            self._apis.get("matching", "/directory", token, programme_id=programme_id),
            self._apis.get("registration", "/institutions", token),
        )
        schools = {i["institution_id"]: i["name"] for i in institutions}
        mentees, mentors = dashboard.waiting(rows, {p["participant_id"]: p for p in people}, directory, schools)
        return Waiting(programme, mentees, mentors)

    async def propose(self, token: str, programme_id: str, mentee_id: str, mentor_id: str, reason: str) -> str | None:
        """Propose a pair by hand; None when proposed, else why not."""
        body = {"mentee_id": mentee_id, "mentor_id": mentor_id, "reason": reason}
        outcome = await self._apis.post(
            "matching", f"/programmes/{quote(programme_id, safe='')}/proposals", token, body
        )
        return _why(outcome, "The pair could not be proposed.")

    async def concerns(self, token: str, programme_id: str) -> Concerns:
        """Open concerns with who raised them about whom, and the pairs paused meanwhile."""
        pid = quote(programme_id, safe="")
        programme, raised, people, pairs = await asyncio.gather(
            self._programme(token, programme_id),
            self._apis.get("matching", f"/programmes/{pid}/concerns", token),
            self._apis.get("registration", "/participants", token, programme_id=programme_id),
            self._apis.get("matching", "/pairs", token, programme_id=programme_id),
        )
        names = {p["participant_id"]: p["name"] for p in people}
        shown, paused = dashboard.concerns(raised, {p["pair_id"]: p for p in pairs}, names)
        return Concerns(programme, shown, paused)

    async def close_concern(self, token: str, concern_id: str, outcome: str, note: str | None) -> str | None:
        """Record the coordinators' decision (pausing or ending the pair with it); None, or why not."""
        body = {"outcome": outcome, "note": note}
        done = await self._apis.post("matching", f"/concerns/{quote(concern_id, safe='')}/outcome", token, body)
        return _why(done, "The decision could not be recorded.")

    async def resume(self, token: str, pair_id: str) -> str | None:
        done = await self._apis.post("matching", f"/pairs/{quote(pair_id, safe='')}/resume", token)
        return _why(done, "The pair could not be resumed.")

    async def _programme(self, token: str, programme_id: str) -> dict[str, Any]:
        return await self._apis.get("registration", f"/programmes/{quote(programme_id, safe='')}", token)


class MyProgramme:
    """What a participant reads and does on her own page, with the token her emailed link gave her."""

    def __init__(self, apis: Apis) -> None:
        self._apis = apis

    async def ask_for_link(self, email: str) -> str | None:
        """Registration emails her a link if the address is registered; None, or why the address was refused."""
        refused = await self._apis.ask_for_page_link(email)
        return "Enter your email address, like name@university.ac.uk." if refused else None

    async def open(self, secret: str) -> tuple[str, int]:
        """Her link used up for a session (LinkGone when it is used or expired)."""
        return await self._apis.open_page(secret)

    async def page(self, token: str) -> MyPage:
        """Her record, her programme, her pairs and circles and, for a mentee, the mentors she may choose."""
        pid = participant_of(token)
        participant = await self._apis.get("registration", f"/participants/{quote(pid, safe='')}", token)
        programme_id = participant["programme_id"]
        programme, profiles, institutions, pairs, circles = await asyncio.gather(
            self._apis.get("registration", f"/programmes/{quote(programme_id, safe='')}", token),
            self._apis.get("registration", "/mentor-profiles", token, programme_id=programme_id),
            self._apis.get("registration", "/institutions", token),
            self._apis.get("matching", "/pairs", token),
            self._apis.get("matching", "/circles", token),
        )
        directory, choices = [], []
        if "mentee" in participant["roles"]:
            directory, choices = await self._choosing(token, pid, programme_id)
        schools = {i["institution_id"]: i["name"] for i in institutions}
        going_on = [p["pair_id"] for p in pairs if p["state"] == "mentoring"]
        logs = await asyncio.gather(
            *(self._apis.get("matching", f"/pairs/{quote(pair_id, safe='')}/meetings", token) for pair_id in going_on)
        )
        meetings = dict(zip(going_on, logs, strict=True))
        return my_page(
            participant, programme, pairs, profiles, directory, choices, schools, meetings, datetime.now(UTC), circles
        )

    async def _choosing(self, token: str, pid: str, programme_id: str) -> tuple[list[Any], list[str]]:
        try:
            directory, saved = await asyncio.gather(
                self._apis.get("matching", "/directory", token, programme_id=programme_id),
                self._apis.get("matching", f"/mentees/{quote(pid, safe='')}/preferences", token),
            )
        except Unavailable:  # matching has not heard of her yet (moments after registering), or is down
            return [], []
        return directory, saved["choices"]

    async def choose(self, token: str, submitted: list[str]) -> str | None:
        """Save her top three; None, or why they were refused."""
        pid = participant_of(token)
        path = f"/mentees/{quote(pid, safe='')}/preferences"
        outcome = await self._apis.put("matching", path, token, {"choices": choices_from(submitted)})
        return _why(outcome, "Your choices could not be saved.")

    async def withdraw(self, token: str, reason: str | None) -> str | None:
        """She leaves the programme; None, or why not."""
        path = f"/participants/{quote(participant_of(token), safe='')}/withdrawal"
        outcome = await self._apis.post("registration", path, token, {"reason": reason})
        return _why(outcome, "Your withdrawal could not be recorded.")

    async def raise_concern(self, token: str, pair_id: str, text: str, asks: str) -> str | None:
        """Her concern about one of her pairs, to the coordinators alone; None, or why it was refused."""
        body = {"text": text, "asks": asks}
        outcome = await self._apis.post("matching", f"/pairs/{quote(pair_id, safe='')}/concerns", token, body)
        return _why(outcome, "Your concern could not be sent.")

    async def record_meeting(self, token: str, pair_id: str, held_on: str, notes: str | None) -> str | None:
        """A meeting of her partnership; None, or why it was refused."""
        body = {"held_on": held_on, "notes": notes}
        outcome = await self._apis.post("matching", f"/pairs/{quote(pair_id, safe='')}/meetings", token, body)
        return _why(outcome, "The meeting could not be recorded.")

    async def record_idea(self, token: str, pair_id: str, text: str) -> str | None:
        """An idea for change from her partnership; None, or why it was refused."""
        outcome = await self._apis.post("matching", f"/pairs/{quote(pair_id, safe='')}/ideas", token, {"text": text})
        return _why(outcome, "Your idea could not be recorded.")

    async def end_after_trial(self, token: str, pair_id: str, side: str) -> str | None:
        """She ends the partnership as the trial allows; None, or why not."""
        body = {"side": side, "reason": "trial"}
        outcome = await self._apis.post("matching", f"/pairs/{quote(pair_id, safe='')}/end", token, body)
        return _why(outcome, "The partnership could not be ended.")

    async def export(self, token: str) -> str:
        """Everything registration holds about her, as JSON (subject access)."""
        path = f"/participants/{quote(participant_of(token), safe='')}/export"
        return await self._apis.text("registration", path, token)


def participant_of(token: str) -> str:
    """Whose token it is. Read, not verified: the portal only builds paths with it, and every API
    verifies the token and refuses a path that is not hers."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise SessionEnded("the session cookie holds no token") from exc
    return str(claims.get("participant_id") or "")


def _why(outcome: Any, fallback: str) -> str | None:
    if isinstance(outcome, Refused):
        return "; ".join(e.get("message", "") for e in outcome.errors) or fallback
    return None


# What each field of the join form asks for, in the words a refused answer is told again.
JOIN_FIELDS = {
    "name": "Enter your full name.",
    "email": "Enter your work email address, like name@university.ac.uk.",
    "workplace": "Enter the university or employer you work for.",
}


class Joining:
    """Interest in a programme open to non-members, from the scheme's own page (no portal, no account)."""

    def __init__(self, apis: Apis) -> None:
        self._apis = apis

    async def programme(self, programme_id: str) -> dict[str, Any]:
        """What the page says of the programme (Absent unless it is open to non-members)."""
        return await self._apis.public_programme(programme_id)

    async def join(self, programme_id: str, name: str, email: str, workplace: str) -> dict[str, str]:
        """Her interest recorded (the welcome email follows); otherwise each problem by field."""
        refused = await self._apis.express_interest_openly(
            programme_id, {"name": name, "email": email, "workplace": workplace}
        )
        if refused is None:
            return {}
        problems = {}
        for error in refused.errors:
            field = error.get("field", "").removeprefix("body.")
            problems[field if field in JOIN_FIELDS else "form"] = JOIN_FIELDS.get(field) or error.get("message", "")
        return problems
