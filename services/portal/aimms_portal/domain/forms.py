"""A questionnaire (as surveys shows it to one role) as an HTML form, and a submitted form as answers.

Pure: no I/O. The surveys API stays the one judge of answers; this module only translates, so a
value it cannot read (a number typed as words) goes through as typed and comes back as that
item's problem, worded by surveys.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

# A submitted form: each name with every value sent under it (checkboxes send several).
Submitted = Mapping[str, Sequence[str]]
Control = Literal["radio", "checkbox", "number", "textarea"]

CONTROLS: dict[str, Control] = {
    "single_choice": "radio",
    "yes_no": "radio",
    "agreement": "radio",
    "stars": "radio",
    "scale_10": "radio",
    "multiple_choice": "checkbox",
    "number": "number",
    "free_text": "textarea",
}
# The suffix of the free-text part's name; item ids are slugs without dots, so it never clashes.
TEXT = ".text"


@dataclass(frozen=True)
class Choice:
    """One radio button or checkbox."""

    value: str
    label: str
    checked: bool = False
    other: bool = False


@dataclass(frozen=True)
class Field:
    """One question as a form control, with what was entered and what was wrong with it."""

    id: str
    text: str
    required: bool
    control: Control
    choices: tuple[Choice, ...] = ()
    value: str = ""
    text_label: str | None = None  # the optional free-text part: "please specify", an explanation
    text_value: str = ""
    low: int | None = None
    high: int | None = None
    problem: str | None = None

    @property
    def grouped(self) -> bool:
        """Radio buttons and checkboxes are a group, with the question as its legend."""
        return self.control in ("radio", "checkbox")


@dataclass(frozen=True)
class Form:
    """The whole questionnaire page."""

    title: str
    introduction: str
    fields: tuple[Field, ...]
    problems: tuple[tuple[str, str], ...] = ()  # (field id, message), in the order of the page


def form(
    view: Mapping[str, Any], submitted: Submitted | None = None, problems: Mapping[str, str] | None = None
) -> Form:
    """The form for a questionnaire view, filled with what was submitted, with each item's problem."""
    submitted, problems = submitted or {}, problems or {}
    fields = tuple(_field(item, submitted, problems.get(item["id"])) for item in view["items"])
    return Form(
        title=view["title"],
        introduction=view.get("introduction", ""),
        fields=fields,
        problems=tuple((f.id, f.problem) for f in fields if f.problem),
    )


def _field(item: Mapping[str, Any], submitted: Submitted, problem: str | None) -> Field:
    item_id, kind = item["id"], item["kind"]
    sent = list(submitted.get(item_id, ()))
    low, high = item.get("min"), item.get("max")
    options = [(o["id"], o["label"], o.get("other", False)) for o in item.get("options", ())]
    if kind == "yes_no":
        options = [("yes", "Yes", False), ("no", "No", False)]
    elif kind == "agreement":
        options = [(str(n), label, False) for n, label in enumerate(item["labels"], start=1)]
    elif kind == "stars":
        options = [(str(n), f"{n} star" + ("s" if n > 1 else ""), False) for n in range(low, high + 1)]
    elif kind == "scale_10":
        options = [(str(n), str(n), False) for n in range(low, high + 1)]
    other = next((label for _, label, is_other in options if is_other), None)
    text_label = item.get("comment") or (f"If you chose “{other}”, please say more" if other else None)
    return Field(
        id=item_id,
        text=item["text"],
        required=item.get("required", False),
        control=CONTROLS[kind],
        choices=tuple(Choice(value, label, value in sent, is_other) for value, label, is_other in options),
        value=sent[0] if sent and kind in ("number", "free_text") else "",
        text_label=None if kind == "free_text" else text_label,
        text_value=next(iter(submitted.get(item_id + TEXT, ())), ""),
        low=low if kind == "number" else None,
        high=high if kind == "number" else None,
        problem=problem,
    )


def answers_from(view: Mapping[str, Any], submitted: Submitted) -> dict[str, Any]:
    """The answers a submitted form gives, in the surveys API's shape; items left blank are left out."""
    answers: dict[str, Any] = {}
    for item in view["items"]:
        item_id, kind = item["id"], item["kind"]
        sent = [v for v in submitted.get(item_id, ()) if v.strip()]
        text = next(iter(submitted.get(item_id + TEXT, ())), "").strip()
        value: Any = None
        if kind == "multiple_choice":
            value = sent or None
        elif sent:
            value = _value(kind, sent[0])
        if text:
            answers[item_id] = {"value": value, "text": text}
        elif value is not None:
            answers[item_id] = value
    return answers


def _value(kind: str, raw: str) -> Any:
    """One control's value as the API takes it; what cannot be read goes through as typed."""
    if kind == "yes_no":
        return {"yes": True, "no": False}.get(raw, raw)
    if kind in ("agreement", "stars", "scale_10", "number"):
        try:
            return int(raw.strip())
        except ValueError:
            return raw
    return raw


def problems_from(view: Mapping[str, Any], errors: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """The surveys API's refusals (`answers.<item>`) by item id, the first for each, worded for a participant."""
    items = {item["id"]: item for item in view["items"]}
    problems: dict[str, str] = {}
    for error in errors:
        item_id = error.get("field", "").removeprefix("answers.")
        if item_id not in problems:
            problems[item_id] = _worded(items.get(item_id, {}), error.get("rule", ""), error.get("message", ""))
    return problems


def _worded(item: Mapping[str, Any], rule: str, message: str) -> str:
    other = next((o["label"] for o in item.get("options", ()) if o.get("other")), None)
    if rule == "required":
        return "Answer this question"
    if rule == "other-text" and other:
        return f"You wrote a few words for “{other}”: tick “{other}” as well, or clear the text"
    if rule == "text-with-answer":
        return "Choose an answer as well as writing in the box, or clear the box"
    if rule == "in-range":
        return f"Enter {message}" if message.startswith("a whole number") else message
    return message[:1].upper() + message[1:] if message else "This answer was not accepted"
