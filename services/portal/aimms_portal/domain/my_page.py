"""A participant's own page, in her words: where she stands, her dates, the mentors she may choose, her circle.

Pure: no I/O. Registration gives her record, her programme and the published mentors' names;
matching gives her pairs and circles, the directory's places left and her choices. Matching knows no
names, so a partner is named only where her profile is published (a mentor); the introduction email
names everyone.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aimms_portal.domain.words import circle_members, day, label, listed, stage_span, with_article
from aimms_shared.contracts.registration import giver_of
from aimms_shared.durations import in_words

MAX_CHOICES = 3
OPEN_STATES = ("held", "proposed", "mentoring")
STAGES = {
    "held": "A proposal is being prepared",
    "proposed": "Proposed, waiting for both answers (the links are in your email)",
    "mentoring": "Mentoring",
    "declined": "Declined",
    "ended": "Ended",
}
# After she withdrew, matching ends her open pairs as soon as it hears of it.
WITHDRAWN_STAGE = "Ending, as you withdrew"
PAUSED_STAGE = "Paused by the scheme's coordinators, who will be in touch"


@dataclass(frozen=True)
class Mentor:
    """A published mentor as a mentee chooses among them."""

    participant_id: str
    name: str
    job_title: str
    seniority: str
    institution: str
    interests: str
    offers: str | None
    places: str  # "1 of 2 places free", "Full"
    full: bool
    answers: list[tuple[str, str]] = field(default_factory=list)  # (the programme's question, her answer)


@dataclass(frozen=True)
class Partnership:
    """One of her proposals or partnerships, with its dates."""

    pair_id: str
    side: str  # hers: "mentee" or "mentor"
    with_whom: str
    stage: str
    dates: list[tuple[str, str]]  # (label, day)
    is_open: bool
    meetings: list[tuple[str, str | None]] = field(default_factory=list)  # (day, the pair's notes)
    may_record: bool = False  # a partnership going on: she records its meetings
    in_trial: bool = False  # no meeting recorded yet and within the trial window: she may end it as a trial


@dataclass(frozen=True)
class Circle:
    """A circle she is in: who is in it by school and stage, why they are together, its dates (the
    introduction email names everyone and gives their addresses)."""

    circle_id: str
    her_role: str  # "Peer", "Facilitator"
    members: str  # "5 peers and a facilitator"
    schools: str
    stages: str
    interests: str
    dates: list[tuple[str, str]]  # (label, day)


@dataclass(frozen=True)
class MyPage:
    participant_id: str
    name: str
    programme_name: str
    roles: str
    active: bool
    withdrawn_on: str | None
    term: str | None
    partnerships: list[Partnership]
    may_choose: bool  # a mentee not yet proposed to anyone: her top three can still change
    mentors: list[Mentor]
    choices: list[str]  # mentors' ids, best first; "" where a place in the three is empty
    ideas_for_change: bool = False  # the programme asks pairs for ideas for change (reverse mentoring)
    giver: str = "mentor"  # who gives the programme's support: mentor, sponsor or ally
    in_circles: bool = False  # a circles programme: she meets in a circle, not a pair
    circles: list[Circle] = field(default_factory=list)

    @property
    def a_giver(self) -> str:
        """'a mentor', 'an ally': as the page's sentences need her."""
        return with_article(self.giver)


def my_page(
    participant: dict[str, Any],
    programme: dict[str, Any] | None,
    pairs: list[dict[str, Any]],
    profiles: list[dict[str, Any]],
    directory: list[dict[str, Any]],
    choices: list[str],
    schools: dict[str, str],
    meetings: dict[str, list[dict[str, Any]]] | None = None,
    now: datetime | None = None,
    circles: list[dict[str, Any]] | None = None,
) -> MyPage:
    """Her page, from registration's and matching's answers."""
    pid, active = participant["participant_id"], participant["status"] == "active"
    names = {p["participant_id"]: p["name"] for p in profiles}
    is_mentee = "mentee" in participant["roles"]
    mentees_pairs = [p for p in pairs if p["mentee_id"] == pid]
    questions = {q["question_id"]: q["text"] for q in (programme or {}).get("profile_questions", ())}
    giver = giver_of((programme or {}).get("roles_offered", ()))
    return MyPage(
        participant_id=pid,
        name=participant["name"],
        programme_name=programme["name"] if programme else participant["programme_id"],
        roles=" and ".join(with_article(role) for role in sorted(participant["roles"], reverse=True)),
        active=active,
        withdrawn_on=day(participant.get("withdrawn_at")),
        term=in_words(programme["term"]) if programme else None,
        partnerships=[
            _partnership(pid, pair, names, active, (meetings or {}).get(pair["pair_id"], []), now, giver)
            for pair in pairs
        ],
        may_choose=active and is_mentee and not any(p["state"] in OPEN_STATES for p in mentees_pairs),
        mentors=[_mentor(entry, names, schools, questions) for entry in directory if entry["participant_id"] != pid],
        choices=(list(choices) + [""] * MAX_CHOICES)[:MAX_CHOICES],
        ideas_for_change=bool(programme and programme.get("ideas_for_change")),
        giver=giver,
        in_circles=(programme or {}).get("kind") == "circles",
        circles=[_circle(pid, circle, schools) for circle in circles or ()],
    )


def choices_from(submitted: list[str]) -> list[str]:
    """Her top three as the form sent them: blanks dropped, order kept, each mentor once."""
    chosen: list[str] = []
    for mentor_id in submitted[:MAX_CHOICES]:
        if mentor_id and mentor_id not in chosen:
            chosen.append(mentor_id)
    return chosen


def _mentor(entry: dict[str, Any], names: dict[str, str], schools: dict[str, str], questions: dict[str, str]) -> Mentor:
    remaining, capacity = entry["remaining_capacity"], entry["capacity"]
    return Mentor(
        participant_id=entry["participant_id"],
        name=names.get(entry["participant_id"], entry["job_title"]),
        job_title=entry["job_title"],
        seniority=label(entry["seniority"]),
        institution=schools.get(entry["institution_id"], entry["institution_id"]),
        interests=listed(entry["research_interests"]) or "None given",
        offers=entry.get("offers"),
        places="Full" if entry["full"] else f"{remaining} of {capacity} place{'s' if capacity != 1 else ''} free",
        full=entry["full"],
        answers=[(questions[q], text) for q, text in entry.get("answers", {}).items() if q in questions],
    )


def _circle(pid: str, circle: dict[str, Any], schools: dict[str, str]) -> Circle:
    members = circle["members"]
    her = next((m["role"] for m in members if m["participant_id"] == pid), "peer")
    return Circle(
        circle_id=circle["circle_id"],
        her_role=her.capitalize(),
        members=circle_members(members),
        schools=", ".join(sorted({schools.get(m["institution_id"], m["institution_id"]) for m in members})),
        stages=stage_span(circle["stages"]),
        interests=listed(circle["shared_interests"]) or "None in common yet",
        dates=[
            (name, shown)
            for name, value in (("Formed", circle["formed_at"]), ("Follow-up questionnaire", circle["follow_up_at"]))
            if (shown := day(value))
        ],
    )


def _partnership(
    pid: str,
    pair: dict[str, Any],
    names: dict[str, str],
    active: bool,
    meetings: list[dict[str, Any]],
    now: datetime | None,
    giver: str,
) -> Partnership:
    as_mentee = pair["mentee_id"] == pid
    if as_mentee:
        mentor = names.get(pair["mentor_id"])
        with_whom = f"Your {giver}, {mentor}" if mentor else f"Your {giver}"
    else:
        with_whom = "Your mentee"
    state = pair["state"]
    rows = [
        ("Proposed", pair.get("proposed_at")),
        ("Answer by", pair.get("reply_by") if state == "proposed" else None),
        ("Started", pair.get("started_at")),
        (
            "Trial ended, at your first meeting" if meetings else "First meeting, the trial, by",
            pair.get("trial_ends_at") if state == "mentoring" else None,
        ),
        ("Follow-up questionnaire", pair.get("follow_up_at") if state == "mentoring" else None),
        ("Term ends", pair.get("term_ends_at") if state == "mentoring" else None),
        ("Extend or conclude by", pair.get("term_reply_by") if state == "mentoring" else None),
        ("Ended", pair.get("ended_at")),
    ]
    is_open = state in OPEN_STATES
    stage = STAGES.get(state, state.capitalize())
    if is_open and not active:
        stage = WITHDRAWN_STAGE
    elif is_open and pair.get("paused_at"):
        stage = PAUSED_STAGE
    going_on = state == "mentoring" and active and not pair.get("paused_at")
    trial_open = now is not None and pair.get("trial_ends_at") and datetime.fromisoformat(pair["trial_ends_at"]) > now
    return Partnership(
        pair_id=pair["pair_id"],
        side="mentee" if as_mentee else "mentor",
        meetings=[(day(m["held_on"]) or m["held_on"], m.get("notes")) for m in meetings],
        may_record=going_on,
        in_trial=bool(going_on and not meetings and trial_open),
        with_whom=with_whom,
        stage=stage,
        dates=[(name, shown) for name, value in rows if (shown := day(value))],
        is_open=is_open,
    )
