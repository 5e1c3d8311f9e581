"""The matching engine: pure functions from mentors, mentees and a programme's policy to explained proposals.

No I/O here: callers load participants and exclusions, and store or announce the proposals.
"""

from aimms_matching.domain.engine.candidates import (
    MentorIndex,
    RankedLists,
    build_ranked_lists,
    mentor_priorities,
    mentor_priority_key,
)
from aimms_matching.domain.engine.cohort import (
    CohortResult,
    Exclusions,
    RoundOutcome,
    explain,
    fallback_reason,
    match_cohort,
    proposal_of,
    rolling_match,
)
from aimms_matching.domain.engine.deferred_acceptance import UNMATCHED, deferred_acceptance
from aimms_matching.domain.engine.model import (
    DEFAULT_POLICY,
    MAX_CHOICES,
    NO_EXCLUSIONS,
    FallbackReason,
    ListEntry,
    Mentee,
    Mentor,
    Policy,
    PreferenceList,
    Proposal,
    Round,
    SkippedChoice,
    SkipReason,
    Weights,
)
from aimms_matching.domain.engine.quality import GroupRates, RoundQuality, assess_round, count_blocking_pairs
from aimms_matching.domain.engine.scoring import PairScore, interest_overlap, score_pair, seniority_fit, seniority_gap

__all__ = [
    "DEFAULT_POLICY",
    "MAX_CHOICES",
    "NO_EXCLUSIONS",
    "UNMATCHED",
    "CohortResult",
    "Exclusions",
    "FallbackReason",
    "GroupRates",
    "ListEntry",
    "Mentee",
    "MentorIndex",
    "Mentor",
    "PairScore",
    "Policy",
    "PreferenceList",
    "Proposal",
    "RankedLists",
    "Round",
    "RoundOutcome",
    "RoundQuality",
    "SkipReason",
    "SkippedChoice",
    "Weights",
    "assess_round",
    "build_ranked_lists",
    "count_blocking_pairs",
    "deferred_acceptance",
    "explain",
    "proposal_of",
    "fallback_reason",
    "interest_overlap",
    "match_cohort",
    "mentor_priorities",
    "mentor_priority_key",
    "rolling_match",
    "score_pair",
    "seniority_fit",
    "seniority_gap",
]
