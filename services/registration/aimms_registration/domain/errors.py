"""How registration's rules refuse: each names the field and the rule it breaks."""

from aimms_shared.errors import Conflict, DomainError, NotFound


class RuleBroken(DomainError):
    """A value breaks a rule of the scheme (422)."""

    code = "rule-broken"
    title = "The request breaks a rule of the scheme"

    def __init__(self, field: str, rule: str, detail: str) -> None:
        super().__init__(detail, field=field, rule=rule)


class Missing(NotFound):
    """Something the request names does not exist (404)."""

    code = "not-found"

    def __init__(self, field: str, rule: str, detail: str) -> None:
        super().__init__(detail, field=field, rule=rule)


class StateConflict(Conflict):
    """The request conflicts with the current state (409)."""

    def __init__(self, field: str, rule: str, detail: str) -> None:
        super().__init__(detail, field=field, rule=rule)
