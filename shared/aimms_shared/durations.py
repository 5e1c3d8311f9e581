"""ISO 8601 durations (P6M, P14D, PT30S) as programmes state them, added to dates the calendar way.

Months and years are calendar units: six months after 31 August is 28 (or 29) February, not
a fixed number of days. Tests give programmes durations in seconds, so no clock is ever faked.
"""

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_PATTERN = re.compile(
    r"^P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


@dataclass(frozen=True)
class Duration:
    """A parsed duration: calendar months, plus an exact time span."""

    months: int
    span: timedelta

    def after(self, start: datetime) -> datetime:
        """The moment this long after `start`; a month end is clamped (31 Jan + P1M = 28/29 Feb)."""
        month_index = start.month - 1 + self.months
        year, month = start.year + month_index // 12, month_index % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        return start.replace(year=year, month=month, day=day) + self.span


def is_duration(text: str) -> bool:
    """Whether `text` is an ISO 8601 duration with at least one component."""
    return _PATTERN.match(text) is not None


def parse(text: str) -> Duration:
    """The duration `text` states; ValueError when it is not ISO 8601."""
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f"'{text}' is not an ISO 8601 duration such as P6M, P14D or PT30S")
    n = {name: int(value or 0) for name, value in match.groupdict().items()}
    span = timedelta(weeks=n["weeks"], days=n["days"], hours=n["hours"], minutes=n["minutes"], seconds=n["seconds"])
    return Duration(months=12 * n["years"] + n["months"], span=span)


def after(start: datetime, text: str) -> datetime:
    """`start` plus the ISO 8601 duration `text`."""
    return parse(text).after(start)


def in_words(text: str) -> str:
    """As people say it: 'P6M' -> '6 months', 'P1Y6M' -> '1 year and 6 months', 'P14D' -> '2 weeks'."""
    d = parse(text)
    years, months = divmod(d.months, 12)
    days, seconds = d.span.days, d.span.seconds
    weeks, days = (days // 7, 0) if days and days % 7 == 0 else (0, days)
    units = [
        (years, "year"),
        (months, "month"),
        (weeks, "week"),
        (days, "day"),
        (seconds // 3600, "hour"),
        (seconds % 3600 // 60, "minute"),
        (seconds % 60, "second"),
    ]
    parts = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in units if n]
    return " and ".join([", ".join(parts[:-1]), parts[-1]]) if len(parts) > 1 else parts[0]
