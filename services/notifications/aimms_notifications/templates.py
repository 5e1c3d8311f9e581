"""Message templates (Jinja2 files): a subject, a plain-text and an HTML body per message.

Each part is looked up from the most specific override to the packaged default, so a programme or
an institution changes its wording, name, signature or links by adding files, not code:

    <template_dir>/programmes/<programme_id>/institutions/<institution_id>/<name>
    <template_dir>/institutions/<institution_id>/<name>
    <template_dir>/programmes/<programme_id>/<name>
    <template_dir>/<name>            (then the same four paths among the packaged templates)

Templates include shared parts through `pick("_signature.txt")`, which applies the same search.
"""

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    Template,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context

from aimms_shared.cache import REFERENCE_SECONDS

# Context key holding the search prefixes of the message being rendered.
_PREFIXES = "template_prefixes"
_ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}


def _uk_time() -> tzinfo:
    try:
        return ZoneInfo("Europe/London")
    except ZoneInfoNotFoundError:  # a slim image without time zone data: say UTC rather than fail
        return UTC


UK = _uk_time()


def day(value: datetime) -> str:
    """'Friday 14 March 2025' (UK calendar)."""
    local = value.astimezone(UK)
    return f"{local:%A} {local.day} {local:%B %Y}"


def moment(value: datetime) -> str:
    """'17:00 on Friday 14 March 2025 (UK time)'."""
    local = value.astimezone(UK)
    return f"{local:%H:%M} on {day(value)} ({'UK time' if UK is not UTC else 'UTC'})"


def ordinal(n: int) -> str:
    """1 -> 'first', 2 -> 'second' …"""
    return _ORDINALS.get(n, f"{n}th")


def join_and(items: Iterable[str]) -> str:
    """['a', 'b', 'c'] -> 'a, b and c'."""
    items = list(items)
    return " and ".join([", ".join(items[:-1]), items[-1]]) if len(items) > 1 else "".join(items)


@dataclass(frozen=True)
class RenderedMessage:
    """A message ready to send."""

    subject: str
    text: str
    html: str


def search_prefixes(programme_id: str | None, institution_id: str | None) -> list[str]:
    """Where to look for a template, most specific first."""
    prefixes = []
    if programme_id and institution_id:
        prefixes.append(f"programmes/{programme_id}/institutions/{institution_id}/")
    if institution_id:
        prefixes.append(f"institutions/{institution_id}/")
    if programme_id:
        prefixes.append(f"programmes/{programme_id}/")
    return [*prefixes, ""]


class Templates:
    """Renders `<name>.subject.txt`, `<name>.txt` and `<name>.html`; a missing variable is an error."""

    def __init__(self, override_dir: str | None = None) -> None:
        loaders = [PackageLoader("aimms_notifications", "templates")]
        if override_dir:
            loaders.insert(0, FileSystemLoader(override_dir))
        self._env = Environment(
            loader=ChoiceLoader(loaders),
            undefined=StrictUndefined,
            autoescape=select_autoescape(["html"]),
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.globals["pick"] = self._pick
        self._chosen: dict[tuple[str, ...], tuple[float, Template]] = {}
        self._env.filters |= {"day": day, "moment": moment, "ordinal": ordinal, "join_and": join_and}

    @pass_context
    def _pick(self, context: Context, name: str) -> Template:
        return self._choose(tuple(prefix + name for prefix in context.get(_PREFIXES, [""])))

    def _choose(self, names: tuple[str, ...]) -> Template:
        """The first of `names` that exists. Looking costs a file check per name that does not, for every
        message; what was chosen is reused for REFERENCE_SECONDS, within which an added override is used."""
        now = time.monotonic()
        kept = self._chosen.get(names)
        if kept is not None and kept[0] > now:
            return kept[1]
        template = self._env.select_template(names)
        self._chosen[names] = (now + REFERENCE_SECONDS, template)
        return template

    def render(
        self,
        template: str,
        context: dict[str, Any],
        *,
        programme_id: str | None = None,
        institution_id: str | None = None,
    ) -> RenderedMessage:
        """Render one message (raises a jinja2.TemplateError, e.g. UndefinedError, if it cannot)."""
        prefixes = search_prefixes(programme_id, institution_id)
        values = context | {_PREFIXES: prefixes}

        def part(suffix: str) -> str:
            return self._choose(tuple(f"{p}{template}{suffix}" for p in prefixes)).render(values)

        return RenderedMessage(subject=" ".join(part(".subject.txt").split()), text=part(".txt"), html=part(".html"))
