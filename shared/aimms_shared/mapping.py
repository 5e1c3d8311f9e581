"""Building one record from others whose fields share its names (an event into a read model, a domain
object into a response), so no field list is written out twice."""

import dataclasses
from typing import Any, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


def picked(source: object, *names: str) -> dict[str, Any]:
    """The named attributes of `source`, by name: the ids an aggregate's events all carry."""
    return {name: getattr(source, name) for name in names}


def carried_over(target: type[T], *sources: object, **overrides: Any) -> T:
    """A `target` dataclass or pydantic model from the like-named attributes of the first of `sources` that
    has each, plus `overrides`; fields no source has keep their defaults.

    A dataclass gets lists as tuples; a model validates nested domain objects by their attributes too.
    """
    is_model = issubclass(target, BaseModel)
    names = target.model_fields.keys() if is_model else {f.name for f in dataclasses.fields(target)}  # type: ignore[arg-type,attr-defined]
    values = {}
    for name in names - overrides.keys():
        source = next((s for s in sources if hasattr(s, name)), None)
        if source is not None:
            value = getattr(source, name)
            values[name] = tuple(value) if isinstance(value, list) and not is_model else value
    if is_model:
        return target.model_validate(values | overrides, from_attributes=True)  # type: ignore[attr-defined,no-any-return]
    return target(**values, **overrides)
