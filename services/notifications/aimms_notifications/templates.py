"""Message templates (Jinja2 files): a subject, a plain-text and an HTML body per message."""

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


@dataclass(frozen=True)
class RenderedMessage:
    """A message ready to send."""

    subject: str
    text: str
    html: str


class Templates:
    """Renders `<name>.subject.txt`, `<name>.txt` and `<name>.html`; a missing variable is an error."""

    def __init__(self) -> None:
        self._env = Environment(
            loader=PackageLoader("aimms_notifications", "templates"),
            undefined=StrictUndefined,
            autoescape=select_autoescape(["html"]),
            keep_trailing_newline=True,
        )

    def render(self, template: str, context: dict[str, Any]) -> RenderedMessage:
        """Render one message (raises jinja2.UndefinedError if the context lacks a variable)."""
        return RenderedMessage(
            subject=self._env.get_template(f"{template}.subject.txt").render(context).strip(),
            text=self._env.get_template(f"{template}.txt").render(context),
            html=self._env.get_template(f"{template}.html").render(context),
        )
