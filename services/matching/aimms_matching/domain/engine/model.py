"""The engine's inputs and outputs: mentors, mentees, the programme's policy, proposals and preference lists."""

from dataclasses import dataclass, field
from typing import Literal

MAX_CHOICES = 3

Round = Literal["stable", "residual", "rolling", "manual"]  # manual: a coordinator proposed the pair by hand
FallbackReason = Literal["choices-full", "choices-declined", "no-choices", "choices-ineligible"]
# Why a named choice was left off her list; "full" also covers a choice that filled up during the round.
SkipReason = Literal["unknown", "self", "duplicate", "excluded", "ineligible", "full"]


@dataclass(frozen=True, slots=True)
class Mentor:
    """A mentor as the engine sees her: seniority index (0 = most junior), tags, capacity and load already held."""

    participant_id: str
    institution_id: str
    seniority: int
    interests: frozenset[str]
    capacity: int
    load: int = 0
    background: str | None = None  # an opaque token, equal for a shared background; None: not to be compared
    pathway: str | None = None

    def __post_init__(self) -> None:
        if self.capacity < 0 or self.load < 0:
            raise ValueError(f"mentor {self.participant_id}: capacity and load cannot be negative")

    @property
    def available(self) -> int:
        """Places left for this round: capacity less active matches and pending proposals."""
        return max(self.capacity - self.load, 0)


@dataclass(frozen=True, slots=True)
class Mentee:
    """A mentee as the engine sees her, with up to three mentor choices, best first."""

    participant_id: str
    institution_id: str
    seniority: int
    interests: frozenset[str]
    choices: tuple[str, ...] = ()
    background: str | None = None
    pathway: str | None = None

    def __post_init__(self) -> None:
        if len(self.choices) > MAX_CHOICES:
            raise ValueError(f"mentee {self.participant_id}: at most {MAX_CHOICES} choices")


@dataclass(frozen=True, slots=True)
class Weights:
    """How much each score component counts."""

    seniority: float = 1.0
    interests: float = 1.0
    other_institution: float = 0.5
    background: float = 0.5
    pathway: float = 0.25


@dataclass(frozen=True, slots=True)
class Policy:
    """A programme's matching settings."""

    mentor_more_senior: bool = True  # False = reverse mentoring: the mentee is the more senior one
    preferred_gap: int = 1
    weights: Weights = field(default_factory=Weights)
    fallback_candidates: int = 20
    residual_candidates: int = 60
    # False (the scheme's way): she may name any mentor; seniority only guides the fallbacks.
    choices_by_seniority: bool = False


DEFAULT_POLICY = Policy()
NO_EXCLUSIONS: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True, slots=True)
class Proposal:
    """A proposed pair with everything needed to explain it to the pair and to coordinators."""

    mentee_id: str
    mentor_id: str
    round: Round
    choice_rank: int | None  # 1..3 = her n-th named choice; None = a fallback by score
    fallback_reason: FallbackReason | None
    score: float
    components: dict[str, float]  # unweighted components, each in [0, 1]
    shared_interests: tuple[str, ...]
    seniority_gap: int
    mentee_institution: str
    mentor_institution: str


@dataclass(frozen=True, slots=True)
class SkippedChoice:
    """A named choice left off her list, and why."""

    mentor_id: str
    choice_rank: int
    reason: SkipReason


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One mentor on a mentee's preference list."""

    mentor_id: str
    score: float
    choice_rank: int | None


@dataclass(frozen=True, slots=True)
class PreferenceList:
    """A mentee's ranked mentors (valid choices first, then fallbacks by score) and the choices skipped."""

    mentee_id: str
    entries: tuple[ListEntry, ...]
    skipped: tuple[SkippedChoice, ...]
