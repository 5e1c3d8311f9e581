"""The evaluation's tables, computed from anonymous responses; pure, no I/O.

Per wave and role: invitations sent, responses and the response rate; per item, counts and
percentages per option (the shape of the paper's Tables 1-3, roles side by side: mentee and mentor,
or peer and facilitator, as the questionnaire names them), yes/no splits with their explanations,
and mean, median and distribution for scales. Any role's breakdown with fewer respondents than the
programme's threshold is suppressed whole, so nobody can be singled out.
Free text is listed in alphabetical order, never in submission order and without metadata.
"""

import csv
import io
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aimms_shared.contracts.registration import Role
from aimms_shared.contracts.surveys import Wave
from aimms_surveys.domain.questionnaires import (
    AGREEMENT_LABELS,
    CHOICE_KINDS,
    WAVES,
    Answer,
    Item,
    Questionnaire,
)


@dataclass(frozen=True)
class Response:
    """A stored response as the report sees it: no date, no identity."""

    wave: Wave
    role: Role
    version: int
    answers: Mapping[str, Answer]


@dataclass(frozen=True)
class Group:
    """How many were asked and answered in one wave and role."""

    invited: int = 0
    responses: list[Response] = field(default_factory=list)


def _pct(count: int, total: int) -> float | None:
    return round(100 * count / total, 1) if total else None


def _texts(answers: Iterable[Answer]) -> list[str]:
    return sorted((a["text"] for a in answers if a.get("text")), key=str.casefold)


def item_statistics(item: Item, role: Role, answers: Sequence[Answer]) -> dict[str, Any]:
    """One item's figures for one role, from the answers given to it."""
    stats: dict[str, Any] = {"answered": len(answers)}
    if item.kind in CHOICE_KINDS:
        counts = Counter(v for a in answers for v in (a["value"] if isinstance(a["value"], list) else [a["value"]]))
        stats["options"] = [
            {"id": o.id, "label": o.label, "count": counts[o.id], "percent": _pct(counts[o.id], len(answers))}
            for o in item.options_for(role)
        ]
        if item.comment or any(o.other for o in item.options):
            stats["texts"] = _texts(answers)
    elif item.kind == "yes_no":
        for label, value in (("yes", True), ("no", False)):
            given = [a for a in answers if a["value"] is value]
            stats[label] = {"count": len(given), "percent": _pct(len(given), len(answers))}
            if item.comment:
                stats[label]["texts"] = _texts(given)
    elif item.kind == "free_text":
        values = sorted((a["value"] for a in answers), key=str.casefold)
        # Special category data is listed once per distinct value, so repeats cannot be counted.
        stats["texts"] = sorted(set(values), key=str.casefold) if item.sensitive else values
    else:
        values = [a["value"] for a in answers]
        low, high = item.scale()  # type: ignore[misc] - every remaining kind is numeric
        counts = Counter(values)
        stats["mean"] = round(statistics.fmean(values), 2) if values else None
        stats["median"] = statistics.median(values) if values else None
        if item.kind == "number":
            stats["min"], stats["max"] = (min(values), max(values)) if values else (None, None)
            points = sorted(counts)
        else:
            points = list(range(low, high + 1))
        stats["distribution"] = [
            {"value": v, "count": counts[v], "percent": _pct(counts[v], len(values))}
            | ({"label": AGREEMENT_LABELS[v - 1]} if item.kind == "agreement" else {})
            for v in points
        ]
        if item.comment:
            stats["texts"] = _texts(answers)
    return stats


def _items_in_order(versions: Sequence[Questionnaire]) -> list[Item]:
    """Every item any version asked, as the newest version words and orders it, older ones after."""
    seen: dict[str, Item] = {}
    for questionnaire in sorted(versions, key=lambda q: -q.version):
        for item in questionnaire.items:
            seen.setdefault(item.id, item)
    return list(seen.values())


def _roles_in_order(versions: Sequence[Questionnaire]) -> list[Role]:
    """Every role any version asks, as the newest version orders them, older ones after."""
    return list(dict.fromkeys(role for q in sorted(versions, key=lambda q: -q.version) for role in q.roles))


def wave_report(versions: Sequence[Questionnaire], groups: Mapping[Role, Group], min_cell_size: int) -> dict[str, Any]:
    """One wave's tables: the roles side by side, small groups suppressed."""
    order = _roles_in_order(versions)
    roles: dict[str, Any] = {}
    shown: dict[Role, list[Response]] = {}
    for role in order:
        group = groups.get(role, Group())
        n = len(group.responses)
        suppressed = n < min_cell_size
        roles[role] = {
            "invited": group.invited,
            "responses": n,
            "response_rate": _pct(n, group.invited),
            "suppressed": suppressed,
        }
        if not suppressed:
            shown[role] = group.responses
    items = []
    for item in _items_in_order(versions):
        per_role: dict[str, Any] = {}
        for role in filter(item.asks, order):
            if role not in shown:
                per_role[role] = {"suppressed": True}
                continue
            answers = [r.answers[item.id] for r in shown[role] if item.id in r.answers]
            per_role[role] = item_statistics(item, role, answers)
        items.append({"id": item.id, "kind": item.kind, "text": item.text, "roles": per_role})
    return {"roles": roles, "items": items}


def programme_report(
    programme_id: str,
    versions: Mapping[Wave, Sequence[Questionnaire]],
    invited: Mapping[tuple[Wave, Role], int],
    responses: Iterable[Response],
    min_cell_size: int,
) -> dict[str, Any]:
    """Every wave's tables for a programme."""
    by_group: dict[tuple[Wave, Role], list[Response]] = {}
    for response in responses:
        by_group.setdefault((response.wave, response.role), []).append(response)
    waves = {}
    for wave in WAVES:
        if not versions.get(wave):
            continue
        groups = {
            role: Group(invited.get((wave, role), 0), by_group.get((wave, role), []))
            for role in _roles_in_order(versions[wave])
        }
        waves[wave] = wave_report(versions[wave], groups, min_cell_size)
    return {
        "programme_id": programme_id,
        "min_cell_size": min_cell_size,
        "note": f"A role's answers are shown only where at least {min_cell_size} responded.",
        "waves": waves,
    }


CSV_COLUMNS = ("wave", "role", "item_id", "question", "measure", "option", "label", "value")


def report_csv(report: Mapping[str, Any]) -> str:
    """The report as one long table for researchers: figures only, free text left out."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for wave, tables in report["waves"].items():
        for role, group in tables["roles"].items():
            for measure in ("invited", "responses", "response_rate"):
                writer.writerow((wave, role, "", "", measure, "", "", _cell(group[measure])))
        for item in tables["items"]:
            for role, stats in item["roles"].items():
                row = (wave, role, item["id"], item["text"])
                if stats.get("suppressed"):
                    writer.writerow((*row, "suppressed", "", "", ""))
                    continue
                writer.writerow((*row, "answered", "", "", stats["answered"]))
                for option in stats.get("options", ()):
                    writer.writerow((*row, "count", option["id"], option["label"], option["count"]))
                    writer.writerow((*row, "percent", option["id"], option["label"], _cell(option["percent"])))
                for answer in ("yes", "no"):
                    if answer in stats:
                        writer.writerow((*row, "count", answer, answer.title(), stats[answer]["count"]))
                        writer.writerow((*row, "percent", answer, answer.title(), _cell(stats[answer]["percent"])))
                for measure in ("mean", "median"):
                    if measure in stats:
                        writer.writerow((*row, measure, "", "", _cell(stats[measure])))
                for point in stats.get("distribution", ()):
                    writer.writerow((*row, "count", point["value"], point.get("label", ""), point["count"]))
    return out.getvalue()


def _cell(value: Any) -> Any:
    return "" if value is None else value
