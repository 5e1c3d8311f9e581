"""Questionnaires as data, and the rules an answer must meet; pure, no I/O.

A questionnaire is one wave (baseline or follow-up) of a programme's evaluation, in a numbered
version. It names the roles that answer it (mentee and mentor for pairs, peer and facilitator for
circles); its items and options say which of them see them, so the versions the scheme speaks of
per role are views of one definition, and their answers line up item by item in the reports (the
paper's tables put the roles side by side). A revision is a new version; a response keeps the
version it answered. A programme kind's template is the questionnaire each programme of that kind
starts with.
"""

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aimms_shared.contracts.registration import ProgrammeKind, Role
from aimms_shared.contracts.surveys import Wave
from aimms_shared.errors import DomainError, RuleBroken

# Who answers a questionnaire that names nobody: definitions were written for pairs before circles.
PAIR_ROLES: tuple[Role, ...] = ("mentee", "mentor")
WAVES: tuple[Wave, Wave] = ("baseline", "follow_up")

ItemKind = Literal[
    "single_choice", "multiple_choice", "yes_no", "agreement", "stars", "scale_10", "number", "free_text"
]
CHOICE_KINDS = ("single_choice", "multiple_choice")
# Kinds answered with a whole number, and the range each allows (a `number` item states its own).
SCALES: dict[str, tuple[int, int]] = {"agreement": (1, 5), "stars": (1, 5), "scale_10": (1, 10)}
AGREEMENT_LABELS = ("Strongly disagree", "Disagree", "Neither agree nor disagree", "Agree", "Strongly agree")
MAX_TEXT = 4000

Slug = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")


class Option(BaseModel):
    """One answer a choice item offers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Slug
    label: str = Field(min_length=1, max_length=300)
    roles: tuple[Role, ...] | None = Field(
        default=None, min_length=1, description="Who is offered this option; none named: everyone asked the item."
    )
    other: bool = Field(default=False, description="Choosing it invites a free-text 'please specify'.")

    def offered_to(self, role: Role) -> bool:
        """Whether a role asked the item is offered this option."""
        return self.roles is None or role in self.roles


class Item(BaseModel):
    """One question."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Slug
    kind: ItemKind
    text: str = Field(min_length=1, max_length=1000)
    required: bool = False
    roles: tuple[Role, ...] | None = Field(
        default=None, min_length=1, description="Who is asked this item; none named: everyone who answers."
    )
    options: tuple[Option, ...] = ()
    comment: str | None = Field(
        default=None, max_length=300, description="Prompt of an optional free-text part (explanation, 'other')."
    )
    min: int | None = Field(default=None, description="Smallest whole number accepted (number items).")
    max: int | None = Field(default=None, description="Largest whole number accepted (number items).")
    sensitive: bool = Field(default=False, description="Special category data (ethnicity): never shown per answer.")

    @model_validator(mode="after")
    def _fits_kind(self) -> "Item":
        if self.kind in CHOICE_KINDS:
            ids = [o.id for o in self.options]
            if len(ids) < 2 or len(set(ids)) != len(ids):
                raise ValueError(f"item {self.id}: a choice item needs at least two options with distinct ids")
            if sum(o.other for o in self.options) > 1:
                raise ValueError(f"item {self.id}: at most one 'other' option")
        elif self.options:
            raise ValueError(f"item {self.id}: only choice items have options")
        if (self.min is not None or self.max is not None) and self.kind != "number":
            raise ValueError(f"item {self.id}: only number items state min and max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"item {self.id}: min is above max")
        return self

    def asks(self, role: Role) -> bool:
        """Whether a role that answers the questionnaire is asked this item."""
        return self.roles is None or role in self.roles

    def options_for(self, role: Role) -> tuple[Option, ...]:
        """The options this role is offered."""
        return tuple(o for o in self.options if o.offered_to(role))

    def scale(self) -> tuple[int, int] | None:
        """The whole numbers a numeric item accepts, or None for other kinds."""
        if self.kind == "number":
            return (0 if self.min is None else self.min, 100_000 if self.max is None else self.max)
        return SCALES.get(self.kind)


class QuestionnaireDraft(BaseModel):
    """A questionnaire as an administrator writes it (the store numbers the version)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str = Field(min_length=1, max_length=300)
    introduction: str = Field(default="", max_length=4000)
    roles: tuple[Role, ...] = Field(
        default=PAIR_ROLES, min_length=1, description="Who answers it, in the order reports set them side by side."
    )
    items: tuple[Item, ...] = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _distinct_items(self) -> "QuestionnaireDraft":
        ids = [i.id for i in self.items]
        if len(set(ids)) != len(ids):
            raise ValueError("item ids must be distinct")
        if len(set(self.roles)) != len(self.roles):
            raise ValueError("roles must be distinct")
        named = {r for i in self.items for r in (i.roles or ())} | {
            r for i in self.items for o in i.options for r in (o.roles or ())
        }
        if strangers := sorted(named - set(self.roles)):  # an item for them would never be asked
            raise ValueError(f"items name roles that do not answer this questionnaire: {', '.join(strangers)}")
        for role in self.roles:
            for item in self.items:
                if item.asks(role) and item.kind in CHOICE_KINDS and len(item.options_for(role)) < 2:
                    raise ValueError(f"item {item.id} offers the {role} fewer than two options")
        return self

    def check_revises(self, current: "QuestionnaireDraft") -> None:
        """Refuse to change who answers a wave by leaving `roles` out: a circle's revision that named none would
        be answered by mentee and mentor, and its peers asked nothing."""
        if "roles" not in self.model_fields_set and self.roles != current.roles:
            raise RuleBroken(
                "roles",
                "roles-named",
                f"this wave is answered by {', '.join(current.roles)}: name the roles that answer the revision",
            )


class Questionnaire(QuestionnaireDraft):
    """One version of a programme's questionnaire for one wave."""

    programme_id: str
    wave: Wave
    version: int = Field(ge=1)

    def sensitive_items(self) -> frozenset[str]:
        """Ids of the items whose answers are special category data (encrypted at rest)."""
        return frozenset(i.id for i in self.items if i.sensitive)

    def items_for(self, role: Role) -> tuple[Item, ...]:
        """The items this role is asked, in order (none when the role does not answer this questionnaire)."""
        return tuple(i for i in self.items if i.asks(role)) if role in self.roles else ()

    def view_for(self, role: Role) -> dict[str, Any]:
        """What a respondent in `role` is shown: her items with her options only."""
        items = []
        for item in self.items_for(role):
            shown = item.model_dump(mode="json", exclude={"roles", "options", "sensitive"}, exclude_none=True)
            if item.kind in CHOICE_KINDS:
                shown["options"] = [o.model_dump(mode="json", exclude={"roles"}) for o in item.options_for(role)]
            if item.kind == "agreement":
                shown["labels"] = list(AGREEMENT_LABELS)
            if (scale := item.scale()) is not None:
                shown["min"], shown["max"] = scale
            items.append(shown)
        return {
            "programme_id": self.programme_id,
            "wave": self.wave,
            "role": role,
            "version": self.version,
            "title": self.title,
            "introduction": self.introduction,
            "items": items,
        }


class QuestionnaireTemplate(QuestionnaireDraft):
    """A wave's questionnaire for every programme of one kind, so a new programme needs no definition of its own."""

    kind: ProgrammeKind
    wave: Wave

    def for_programme(self, programme_id: str) -> Questionnaire:
        """Version 1 of the programme's questionnaire for this wave; its coordinators may revise it."""
        return Questionnaire(**self.model_dump(exclude={"kind"}), programme_id=programme_id, version=1)


class AnswersRejected(DomainError):
    """An answer does not fit its item; `field` names the first, `errors` every one."""

    code = "answers-rejected"
    title = "An answer does not fit its question"

    def __init__(self, errors: list[dict[str, str]]) -> None:
        first = errors[0]
        super().__init__(
            "; ".join(f"{e['field']}: {e['message']}" for e in errors),
            field=first["field"],
            rule=first["rule"],
            errors=errors,
        )


# An answer as stored: the value, and the optional free text beside it.
Answer = dict[str, Any]


def validate_answers(questionnaire: Questionnaire, role: Role, submitted: Mapping[str, Any]) -> dict[str, Answer]:
    """The answers normalised to `{item_id: {"value": ..., "text": ...}}`, or AnswersRejected naming each item.

    An item's answer is either its bare value or `{"value": ..., "text": "..."}`; an item left out
    (or answered null) is unanswered. A response is taken whole or not at all.
    """
    errors: list[dict[str, str]] = []

    def refuse(item_id: str, rule: str, message: str) -> None:
        errors.append({"field": f"answers.{item_id}", "rule": rule, "message": message})

    known = {item.id for item in questionnaire.items}
    asked = {item.id for item in questionnaire.items_for(role)}
    for item_id in submitted:
        if item_id not in known:
            refuse(item_id, "known-item", "this questionnaire has no such item")
        elif item_id not in asked and submitted[item_id] is not None:
            refuse(item_id, "asked-of-role", f"this item is not asked of a {role}")

    answers: dict[str, Answer] = {}
    for item in questionnaire.items_for(role):
        raw = submitted.get(item.id)
        value, text = (raw.get("value"), raw.get("text")) if isinstance(raw, dict) else (raw, None)
        if isinstance(raw, dict) and set(raw) - {"value", "text"}:
            refuse(item.id, "answer-shape", "an answer is a value, or an object with 'value' and 'text' only")
            continue
        if isinstance(text, str):
            text = text.strip() or None
        if isinstance(value, str):
            value = value.strip()
        if value is None or value in ([], ""):
            if item.required:
                refuse(item.id, "required", "this item must be answered")
            elif text is not None:
                refuse(item.id, "text-with-answer", "free text is accepted only with an answer")
            continue
        problem = _check(item, role, value, text)
        if problem is not None:
            refuse(item.id, *problem)
            continue
        if isinstance(value, list):  # options in the questionnaire's order, each once
            value = [o.id for o in item.options if o.id in value]
        answer: Answer = {"value": value}
        if text is not None:
            answer["text"] = text
        answers[item.id] = answer
    if errors:
        raise AnswersRejected(errors)
    return answers


def _check(item: Item, role: Role, value: Any, text: Any) -> tuple[str, str] | None:
    """What is wrong with one answer, as (rule, message), or None."""
    if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT):
        return "text", f"free text is a string of at most {MAX_TEXT} characters"
    if item.kind == "free_text":
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            return "free-text", f"a text of at most {MAX_TEXT} characters"
        if text is not None:
            return "no-comment", "this item takes its text as the value"
        return None
    if text is not None and item.comment is None and not any(o.other for o in item.options):
        return "no-comment", "this item takes no free text"
    if item.kind in CHOICE_KINDS:
        offered = {o.id for o in item.options_for(role)}
        chosen = [value] if item.kind == "single_choice" else value
        if item.kind == "single_choice" and not isinstance(value, str):
            return "single-choice", "one option id"
        if item.kind == "multiple_choice" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return "multiple-choice", "a list of option ids"
        if not_offered := [v for v in chosen if v not in offered]:
            return "offered-option", f"not an option offered here: {', '.join(map(str, not_offered))}"
        other = next((o.id for o in item.options if o.other), None)
        if text is not None and other is not None and other not in chosen:
            return "other-text", f"free text is accepted with the option '{other}'"
        return None
    if item.kind == "yes_no":
        return None if isinstance(value, bool) else ("yes-no", "true (yes) or false (no)")
    low, high = item.scale()  # type: ignore[misc] - every remaining kind is numeric
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return "in-range", f"a whole number from {low} to {high}"
    return None
