"""Building one record from another whose fields share its names (an event into a read model, a domain
object into a response), so no field list is written out twice."""

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def carried_over(target: type[T], source: object, **overrides: Any) -> T:
    """A `target` dataclass from the like-named attributes of `source` (lists become tuples), plus `overrides`;
    fields `source` lacks keep their defaults."""
    names = {f.name for f in dataclasses.fields(target)} - overrides.keys()  # type: ignore[arg-type]
    values = {name: getattr(source, name) for name in names if hasattr(source, name)}
    return target(**{name: tuple(v) if isinstance(v, list) else v for name, v in values.items()}, **overrides)
