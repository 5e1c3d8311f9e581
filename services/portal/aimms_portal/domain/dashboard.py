"""The coordinators' dashboard: the services' reports turned into tables and bars. Pure, no I/O.

Every figure comes from a service's report; this module only arranges it. Where surveys
suppressed a role (too few responses to be anonymous), nothing here recomputes it: totals across
roles are given only when no role is suppressed, so a total can never reveal a hidden group.
"""

from dataclasses import dataclass, field
from typing import Any

from aimms_portal.domain import words

AGREED = (4, 5)  # "agree" and "strongly agree" on the five-point agreement scale
HIGH_SCORE = 7  # "7 or above" on a 1-10 scale, as the paper summarises it


@dataclass(frozen=True)
class Bar:
    """A labelled figure and its bar's length in percent of the chart's width."""

    label: str
    value: int | float
    width: float
    note: str = ""


def bars(figures: list[tuple[str, int | float]], scale: float | None = None) -> list[Bar]:
    """Bars for figures, the longest (or `scale`, e.g. 100 for percentages) filling the width."""
    top = scale or max((value for _, value in figures), default=0) or 1
    return [Bar(label, value, round(100 * value / top, 1)) for label, value in figures]


# -- emails

EMAILS = {
    "welcome": "Welcome pack",
    "registered": "Registration confirmation",
    "match_proposed": "Proposal",
    "proposal_reminder": "Proposal reminder",
    "match_declined": "Proposal declined",
    "mentoring_started": "Introduction",
    "check_in": "Check-in",
    "term_ended": "End of the term",
    "match_extended": "Partnership extended",
    "match_ended": "Partnership ended",
    "survey_invitation": "Questionnaire invitation",
    "survey_reminder": "Questionnaire reminder",
    "page_link": "Link to her page",
    "coordinator_digest": "Coordinators' daily digest",
}


def email_name(template: str) -> str:
    """What a coordinator calls the email a template writes."""
    return EMAILS.get(template, template.replace("_", " ").capitalize())


# -- the funnel


@dataclass(frozen=True)
class Funnel:
    programme_id: str
    stages: list[Bar]
    institutions: list[dict[str, Any]]


def funnel(programme_id: str, pipeline: list[dict[str, Any]], pairs: dict[str, Any], survey: dict[str, Any]) -> Funnel:
    """Interest to follow-up for one programme, and per institution, from the three services' reports."""
    rows = [r for r in pipeline if r["programme_id"] == programme_id]
    states = pairs.get("pairs_by_state", {})
    follow_up = survey.get("waves", {}).get("follow_up", {}).get("roles", {})
    stages = bars(
        [
            ("Expressed interest, not yet registered", sum(r["interested"] for r in rows)),
            ("Registered (active)", sum(r["registered"] for r in rows)),
            ("Pairs proposed", sum(n for state, n in states.items() if state != "held")),
            ("Partnerships started", pairs.get("partnerships_started", 0)),
            ("Follow-up questionnaires answered", sum(g["responses"] for g in follow_up.values())),
        ]
    )
    by_institution = pairs.get("pairs_by_institution", {})
    institutions = [
        {
            "institution_id": r["institution_id"],
            "interested": r["interested"],
            "registered": r["registered"],
            "withdrawn": r["withdrawn"],
            "proposed": sum(n for s, n in by_institution.get(r["institution_id"], {}).items() if s != "held"),
            "mentoring": by_institution.get(r["institution_id"], {}).get("mentoring", 0),
        }
        for r in sorted(rows, key=lambda r: r["institution_id"])
    ]
    return Funnel(programme_id, stages, institutions)


# -- matching rounds


@dataclass(frozen=True)
class Round:
    ran_at: str
    summary: str  # who was waiting and what the round made of them, in a sentence
    quality: list[Bar]  # pairs: first choice %, any of three %; circles: mixed, sharing an interest, facilitated
    ranks: list[Bar] = field(default_factory=list)  # pairs only: which of her choices each mentee got
    groups: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # "institution"/"career stage" -> rows


RANKS = {"choice_1": "First choice", "choice_2": "Second choice", "choice_3": "Third choice"}
RANKS |= {"fallback": "Proposed by score", "unmatched": "Not matched"}


def rounds(reports: list[dict[str, Any]]) -> list[Round]:
    """Each round's quality, newest first: a pairs round from matching's stable round (the residual adds its
    count), a circles round from the circles it formed."""
    ordered = sorted(reports, key=lambda r: r["ran_at"], reverse=True)
    return [_circles_round(r) if r.get("kind") == "circles" else _pairs_round(r) for r in ordered]


def _pairs_round(report: dict[str, Any]) -> Round:
    stable = report["stable"]
    ranks = dict(stable.get("rank_profile", {}))
    ranks["unmatched"] = report["unmatched"]
    groups = {
        name: [
            {
                "group": group,
                "mentees": figures["mentees"],
                "matched": figures["matched"],
                "match_rate": _percent(figures["match_rate"]),
                "first_choice_rate": _percent(figures["first_choice_rate"]),
            }
            for group, figures in stable.get(key, {}).items()
        ]
        for name, key in (("institution", "by_institution"), ("career stage", "by_seniority"))
    }
    blocking = stable["blocking_pairs"] + report["residual"]["blocking_pairs"]
    return Round(
        ran_at=_minute(report["ran_at"]),
        summary=f"{words.counted(report['mentees'], 'mentee')} waiting, {words.counted(report['mentors'], 'mentor')}: "
        f"{words.counted(report['proposed'], 'pair')} proposed, {report['unmatched']} not matched; "
        f"blocking pairs: {blocking}.",
        quality=bars(
            [
                ("Matched to her first choice", _percent(stable["first_choice_rate"])),
                ("Matched to one of her three", _percent(stable["any_choice_rate"])),
            ],
            scale=100,
        ),
        ranks=bars([(label, ranks.get(key, 0)) for key, label in RANKS.items()]),
        groups=groups,
    )


def _circles_round(report: dict[str, Any]) -> Round:
    quality = report["stable"]
    summary = (
        f"{words.counted(report['mentees'], 'peer')} waiting, {words.counted(report['mentors'], 'facilitator')}: "
        f"{words.counted(report['circles'], 'circle')} formed, {report['proposed']} placed, "
        f"{report['unmatched']} not placed"
    )
    if report["circles"]:
        alone = words.counted(quality["members_alone_of_their_group"], "member")
        summary += f"; circles of {quality['size_min']} to {quality['size_max']}, {alone} alone of their group"
    measures = [
        ("Circles mixing institutions", "institutions_mixed_rate"),
        ("Members sharing an interest in their circle", "sharing_an_interest_rate"),
        ("Circles with a facilitator", "facilitated_rate"),
    ]
    return Round(
        ran_at=_minute(report["ran_at"]),
        summary=summary + ".",
        quality=bars([(label, _percent(quality.get(key, 0))) for label, key in measures], scale=100),
    )


@dataclass(frozen=True)
class CircleRow:
    """A circle as coordinators follow it: its size, mix and dates (the members' names are in registration)."""

    formed: str
    members: str  # "5 peers and a facilitator", "6 peers, no facilitator"
    institutions: str
    stages: str
    interests: str
    left: int
    follow_up: str


def circles(found: list[dict[str, Any]]) -> list[CircleRow]:
    """A circles programme's circles, as matching lists them (newest first)."""
    rows = []
    for circle in found:
        rows.append(
            CircleRow(
                formed=words.day(circle["formed_at"]) or "",
                members=words.circle_members(circle["members"], unfacilitated=", no facilitator"),
                institutions=", ".join(sorted({m["institution_id"] for m in circle["members"]})),
                stages=words.stage_span(circle["stages"]),
                interests=words.listed(circle["shared_interests"]) or "None in common",
                left=len(circle["left"]),
                follow_up=words.day(circle["follow_up_at"]) or "",
            )
        )
    return rows


def _minute(ran_at: str) -> str:
    return ran_at[:16].replace("T", " ")


def _percent(rate: float) -> float:
    return round(100 * rate, 1)


# -- the evaluation's tables


@dataclass(frozen=True)
class Row:
    """One line of an item's table: a label and, per role, a figure and its bar (None: suppressed)."""

    label: str
    cells: dict[str, Bar | None]
    total: Bar | None = None
    summary: bool = False  # a derived line ("agreed or strongly agreed"), set apart


@dataclass(frozen=True)
class Table:
    item_id: str
    question: str
    kind: str
    roles: list[str]
    rows: list[Row]
    statistics: dict[str, dict[str, Any]] = field(default_factory=dict)  # role -> mean, median...
    texts: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Wave:
    wave: str
    roles: dict[str, dict[str, Any]]
    tables: list[Table]


def survey_tables(report: dict[str, Any]) -> list[Wave]:
    """The paper's Tables 1-3 shape: per item, its options down, roles across, a total where allowed."""
    return [
        Wave(wave, tables["roles"], [_table(item, tables["roles"]) for item in tables["items"]])
        for wave, tables in report.get("waves", {}).items()
    ]


def _table(item: dict[str, Any], groups: dict[str, Any]) -> Table:
    roles = [role for role in groups if role in item["roles"]]
    shown = {role: item["roles"][role] for role in roles if not item["roles"][role].get("suppressed")}
    with_total = len(shown) == len(roles) and len(roles) > 1
    lines = _lines(item["kind"], shown)
    rows = []
    for line, counts, summary in lines:
        cells: dict[str, Bar | None] = {
            role: _share(counts.get(role, 0), shown[role]["answered"]) if role in shown else None for role in roles
        }
        total = None
        if with_total:
            total = _share(sum(counts.values()), sum(stats["answered"] for stats in shown.values()))
        rows.append(Row(line, cells, total, summary))
    statistics = {
        role: {k: stats[k] for k in ("answered", "mean", "median", "min", "max") if stats.get(k) is not None}
        for role, stats in shown.items()
    }
    texts = {role: _texts(stats) for role, stats in shown.items() if _texts(stats)}
    return Table(item["id"], item["text"], item["kind"], roles, rows, statistics, texts)


def _lines(kind: str, shown: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, int], bool]]:
    """(label, count per role, is a summary) for each line of an item's table."""
    if not shown:
        return []
    first = next(iter(shown.values()))
    if "options" in first:
        labels = [(o["id"], o["label"]) for o in first["options"]]
        counts = {role: {o["id"]: o["count"] for o in stats["options"]} for role, stats in shown.items()}
        return [(label, {r: counts[r].get(key, 0) for r in shown}, False) for key, label in labels]
    if "yes" in first:
        return [(answer.title(), {r: s[answer]["count"] for r, s in shown.items()}, False) for answer in ("yes", "no")]
    if "distribution" in first and kind != "number":
        points = [(p["value"], p.get("label") or str(p["value"])) for p in first["distribution"]]
        counts = {role: {p["value"]: p["count"] for p in stats["distribution"]} for role, stats in shown.items()}
        lines = [(label, {r: counts[r].get(value, 0) for r in shown}, False) for value, label in points]
        if kind == "agreement":
            agreed = {r: sum(counts[r].get(v, 0) for v in AGREED) for r in shown}
            lines.append(("Agreed or strongly agreed", agreed, True))
        if kind == "scale_10":
            high = {r: sum(n for v, n in counts[r].items() if v >= HIGH_SCORE) for r in shown}
            lines.append((f"{HIGH_SCORE} or above", high, True))
        return lines
    return []


def _share(count: int, answered: int) -> Bar:
    percent = round(100 * count / answered, 1) if answered else 0.0
    return Bar(str(count), count, percent, note=f"{percent:g}%")


def _texts(stats: dict[str, Any]) -> list[str]:
    texts = list(stats.get("texts", []))
    for answer in ("yes", "no"):
        texts += stats.get(answer, {}).get("texts", [])
    return texts


@dataclass(frozen=True)
class WaitingMentee:
    """A mentee still waiting for a proposal, as coordinators read her."""

    mentee_id: str
    name: str
    school: str
    seniority: str
    interests: str
    joined: str | None
    why: str
    choices: list[str]  # her named mentors' names, best first


@dataclass(frozen=True)
class MentorOption:
    """A mentor with a place free, as a coordinator picks one."""

    mentor_id: str
    label: str


def waiting(
    rows: list[dict[str, Any]],
    people: dict[str, dict[str, Any]],
    directory: list[dict[str, Any]],
    schools: dict[str, str],
) -> tuple[list[WaitingMentee], list[MentorOption]]:
    """Matching's waiting list named from registration, and the mentors a coordinator may propose."""

    def name(participant_id: str) -> str:
        return people.get(participant_id, {}).get("name", "Someone no longer registered")

    mentees = [
        WaitingMentee(
            mentee_id=row["participant_id"],
            name=name(row["participant_id"]),
            school=schools.get(row["institution_id"], row["institution_id"]),
            seniority=words.label(row["seniority"]),
            interests=words.listed(row["research_interests"]) or "None given",
            joined=words.day(row.get("joined_at")),
            why=row["explanation"],
            choices=[name(choice) for choice in row["choices"]],
        )
        for row in rows
    ]
    options = [
        MentorOption(
            mentor_id=entry["participant_id"],
            label=f"{name(entry['participant_id'])}, {words.label(entry['seniority'])}, "
            f"{schools.get(entry['institution_id'], entry['institution_id'])}: "
            f"{entry['remaining_capacity']} of {entry['capacity']} free",
        )
        for entry in sorted(directory, key=lambda e: name(e["participant_id"]))
        if not entry["full"]
    ]
    return mentees, options


ASKS = {"advice": "Advice", "pause": "Pause the pair", "end": "End the pair"}


@dataclass(frozen=True)
class ConcernShown:
    """An open concern, as coordinators read it."""

    concern_id: str
    raised_by: str  # "Dr Amina Okafor (the mentee)"
    about: str  # "her mentor, Prof Grace Mensah"
    text: str
    asks: str
    raised_on: str | None
    pair_state: str


@dataclass(frozen=True)
class PausedPair:
    pair_id: str
    mentee: str
    mentor: str
    paused_on: str | None


def concerns(
    raised: list[dict[str, Any]], pairs: dict[str, dict[str, Any]], names: dict[str, str]
) -> tuple[list[ConcernShown], list[PausedPair]]:
    """The open concerns named from registration, and the programme's paused pairs."""

    def name(participant_id: str) -> str:
        return names.get(participant_id, "someone no longer registered")

    shown = []
    for c in raised:
        pair = pairs.get(c["pair_id"], {})
        other_side = "mentor" if c["raised_by"] == "mentee" else "mentee"
        other = pair.get(f"{other_side}_id", "")
        state = pair.get("state", "unknown")
        shown.append(
            ConcernShown(
                concern_id=c["concern_id"],
                raised_by=f"{name(c['participant_id'])} (the {c['raised_by']})",
                about=f"their {other_side}, {name(other)}",
                text=c["text"],
                asks=ASKS.get(c["asks"], c["asks"]),
                raised_on=words.day(c["raised_at"]),
                pair_state="paused" if pair.get("paused_at") else state,
            )
        )
    paused = [
        PausedPair(p["pair_id"], name(p["mentee_id"]), name(p["mentor_id"]), words.day(p["paused_at"]))
        for p in pairs.values()
        if p.get("paused_at") and p["state"] in ("proposed", "mentoring")
    ]
    return shown, paused
