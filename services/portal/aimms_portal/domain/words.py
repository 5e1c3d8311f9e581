"""How the pages say what the APIs give as data: dates, slugs and labels. Pure."""

from datetime import datetime
from typing import Any


def day(value: str | None) -> str | None:
    """An ISO timestamp as a day in words ('3 April 2025'); None stays None."""
    if not value:
        return None
    return datetime.fromisoformat(value).strftime("%-d %B %Y")


def label(slug: str) -> str:
    """A stored value ('senior_lecturer', 'non-clinical') as a label ('Senior lecturer')."""
    return slug.replace("_", " ").capitalize()


def listed(slugs: list[str]) -> str:
    """Interests are kept as slugs ("global-health"); shown as words."""
    return ", ".join(slug.replace("-", " ") for slug in slugs)


def counted(n: int, noun: str) -> str:
    """'1 peer', '5 peers'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def circle_members(members: list[dict[str, Any]], unfacilitated: str = "") -> str:
    """A circle's members by role: '5 peers and a facilitator'; `unfacilitated` follows the peers without one."""
    peers = counted(sum(m["role"] == "peer" for m in members), "peer")
    return peers + (" and a facilitator" if any(m["role"] == "facilitator" for m in members) else unfacilitated)


def stage_span(stages: list[str]) -> str:
    """A circle's lowest and highest career stage: 'Lecturer to Professor', or one stage where both are alike."""
    low, high = stages
    return low if low == high else f"{low} to {high}"


def with_article(word: str) -> str:
    """'a mentor', 'an ally'."""
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"
