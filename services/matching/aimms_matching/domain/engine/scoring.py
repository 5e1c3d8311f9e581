"""How well a mentor suits a mentee: seniority fit, shared interests, other institution, shared background and
career pathway."""

from dataclasses import dataclass

from aimms_matching.domain.engine.model import Mentee, Mentor, Policy


@dataclass(frozen=True, slots=True)
class PairScore:
    """A pair's weighted score, its unweighted components and what they rest on."""

    score: float
    components: dict[str, float]
    shared_interests: tuple[str, ...]
    seniority_gap: int


def seniority_gap(mentee_seniority: int, mentor_seniority: int, mentor_more_senior: bool) -> int:
    """Levels by which the mentor outranks the mentee in the programme's direction (inverted for reverse mentoring)."""
    gap = mentor_seniority - mentee_seniority
    return gap if mentor_more_senior else -gap


def seniority_fit(gap: int, preferred_gap: int) -> float:
    """1 at the preferred gap, falling off with distance from it."""
    return 1.0 / (1 + abs(gap - preferred_gap))


def interest_overlap(shared: int, mentee_tags: int, mentor_tags: int) -> float:
    """Jaccard overlap from the counts: shared tags over all distinct tags (0 when neither has any)."""
    return shared / (mentee_tags + mentor_tags - shared) if shared else 0.0


def score_pair(mentee: Mentee, mentor: Mentor, policy: Policy, named: bool = False) -> PairScore | None:
    """The pair's score and its explanation, or None when seniority rules the mentor out as a fallback.

    A mentor she named is scored whatever the seniority (its fit is then 0), unless the programme
    lets her name only mentors the seniority rule allows.
    """
    gap = seniority_gap(mentee.seniority, mentor.seniority, policy.mentor_more_senior)
    if gap < 1 and (not named or policy.choices_by_seniority):
        return None
    shared = mentee.interests & mentor.interests
    components = {
        "seniority": seniority_fit(gap, policy.preferred_gap) if gap >= 1 else 0.0,
        "interests": interest_overlap(len(shared), len(mentee.interests), len(mentor.interests)),
        "other_institution": 1.0 if mentee.institution_id != mentor.institution_id else 0.0,
        "background": 1.0 if mentee.background is not None and mentee.background == mentor.background else 0.0,
        "pathway": 1.0 if mentee.pathway is not None and mentee.pathway == mentor.pathway else 0.0,
    }
    w = policy.weights
    # The same order of additions as the candidate scorer, so list scores and explanations agree to the bit.
    score = (
        w.seniority * components["seniority"]
        + w.interests * components["interests"]
        + w.other_institution * components["other_institution"]
        + w.background * components["background"]
        + w.pathway * components["pathway"]
    )
    return PairScore(score, components, tuple(sorted(shared)), gap)
