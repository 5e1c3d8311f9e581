"""Benchmark: a cohort round of the matching engine, against scoring every pair and solving full lists.

For each cohort size (mentees; half as many mentors, each with 1-3 places) a synthetic cohort is drawn from a
fixed seed: six seniority levels with mentors more senior, 15 institutions of uneven size, 2-5 of 165 research
interests each (some interests far more common than others), a fifth of people opted in to background matching,
and three distinct choices per mentee, named among the mentors senior to her (as registration requires), mostly
within her interests, skewed towards popular mentors (Zipf-like). Drawing the cohort is not timed.

Per size it prints:
  - the wall time of `match_cohort` end to end: candidate generation, lists, both rounds, proposals, quality;
  - the peak memory of the round: the most Python memory the round held at once, traced by tracemalloc in a
    second, untimed repetition (the cohort's own objects, allocated before, are not counted);
  - the quality figures of the stable and the residual round, groups summarised by their lowest and highest rate;
  - a cross-check: the `matching` package's hospital/resident algorithm, run on the engine's own lists and
    priorities, must give exactly the engine's pairs in both rounds;
  - the obvious way, timed in the same run (up to --obvious-up-to mentees): score every mentee-mentor pair with
    numpy, exactly as `score_pair` does; build full preference lists (her valid choices, then every other
    eligible mentor by score; mentors rank those mentees by the engine's priority); solve them with the
    `matching` package's core algorithm (its game object is unusable at this size). The package's solver is
    stopped after --solver-budget seconds, and then the ratio is a lower bound. The same full lists are also
    solved by the engine's deferred acceptance, to compare the pairs and to show the ratio with a fast solver.
    Above --obvious-up-to only the scoring time is estimated, from the per-pair time measured at a smaller size.

The last line is one JSON object with every figure, for tooling.

    .venv/bin/python bench/matching.py --sizes 1000 10000 100000
"""

import argparse
import itertools
import json
import random
import signal
import sys
import time
import tracemalloc
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

from aimms_matching.domain.engine import (
    DEFAULT_POLICY,
    MAX_CHOICES,
    UNMATCHED,
    CohortResult,
    Mentee,
    Mentor,
    MentorIndex,
    Policy,
    RankedLists,
    RoundOutcome,
    count_blocking_pairs,
    deferred_acceptance,
    match_cohort,
    mentor_priority_key,
    score_pair,
)
from aimms_registration.demo import SENIORITY

SENIORITY_SCALE = SENIORITY  # the demo's ladder, PhD student to professor
MENTEE_SENIORITY_WEIGHTS = (30, 30, 20, 13, 7, 0)  # nobody is more senior than a professor to mentor her
MENTOR_SENIORITY_WEIGHTS = (0, 6, 16, 26, 27, 25)
INSTITUTIONS = (
    "imperial",
    "ucl",
    "oxford",
    "cambridge",
    "kings-college-london",
    "edinburgh",
    "manchester",
    "glasgow",
    "birmingham",
    "bristol",
    "leeds",
    "newcastle",
    "liverpool",
    "sheffield",
    "cardiff",
)
BACKGROUNDS = ("ethnic-minority", "first-generation", "disability", "lgbtq")
BACKGROUND_SHARE = 0.2
RESEARCH_INTERESTS = (
    "cardiology", "oncology", "medical-education", "global-health", "health-inequalities", "genomics",
    "neuroscience", "public-health", "epidemiology", "infectious-diseases", "mental-health", "primary-care",
    "clinical-trials", "immunology", "diabetes", "stroke", "dementia", "paediatrics", "obstetrics",
    "surgery", "anaesthesia", "intensive-care", "emergency-medicine", "radiology", "medical-imaging",
    "pathology", "haematology", "nephrology", "hepatology", "gastroenterology", "respiratory-medicine",
    "rheumatology", "dermatology", "ophthalmology", "otolaryngology", "urology", "orthopaedics",
    "plastic-surgery", "vascular-surgery", "transplantation", "endocrinology", "obesity", "nutrition",
    "ageing", "geriatrics", "palliative-care", "pain", "psychiatry", "child-psychiatry", "addiction",
    "sexual-health", "hiv", "tuberculosis", "malaria", "antimicrobial-resistance", "vaccines", "virology",
    "microbiology", "parasitology", "tropical-medicine", "maternal-health", "neonatology", "reproductive-health",
    "womens-health", "mens-health", "health-economics", "health-policy", "health-services-research",
    "implementation-science", "qualitative-research", "mixed-methods", "statistics", "biostatistics",
    "machine-learning", "artificial-intelligence", "digital-health", "health-informatics", "bioinformatics",
    "data-science", "precision-medicine", "pharmacology", "pharmacogenomics", "drug-discovery",
    "clinical-pharmacology", "toxicology", "cell-biology", "molecular-biology", "stem-cells",
    "regenerative-medicine", "gene-therapy", "cancer-biology", "radiotherapy", "haemato-oncology",
    "breast-cancer", "lung-cancer", "colorectal-cancer", "prostate-cancer", "cancer-screening",
    "cardiovascular-prevention", "heart-failure", "arrhythmia", "hypertension", "atherosclerosis",
    "cardiac-imaging", "neurology", "epilepsy", "multiple-sclerosis", "parkinsons-disease",
    "motor-neurone-disease", "neurosurgery", "neurodevelopment", "autism", "learning-disability",
    "sleep-medicine", "sports-medicine", "musculoskeletal-health", "osteoporosis", "rehabilitation",
    "physiotherapy", "nursing-research", "midwifery", "allied-health", "dentistry", "oral-health",
    "occupational-health", "environmental-health", "air-pollution", "climate-and-health", "planetary-health",
    "urban-health", "social-determinants", "migrant-health", "refugee-health", "indigenous-health",
    "lgbtq-health", "disability-research", "patient-safety", "quality-improvement", "clinical-governance",
    "medical-ethics", "law-and-medicine", "history-of-medicine", "medical-humanities", "simulation-training",
    "surgical-education", "assessment", "widening-participation", "leadership", "wellbeing", "burnout",
    "equality-diversity-inclusion", "patient-involvement", "health-communication", "behavioural-science",
    "health-psychology", "systematic-reviews", "evidence-synthesis", "real-world-evidence", "cohort-studies",
    "translational-medicine", "experimental-medicine", "biomarkers", "proteomics", "metabolomics", "microbiome",
)  # fmt: skip
PLACES_PER_MENTOR = (1, 2, 3)
MENTORS_PER_MENTEE = 0.5
CHOICE_WITHIN_INTERESTS = 0.75  # otherwise she names a popular mentor from anywhere
POPULARITY_EXPONENT = 1.0  # a mentor's popularity is 1 / (rank ** exponent): Zipf-like
INTEREST_EXPONENT = 0.9  # likewise for how common an interest is
INSTITUTION_EXPONENT = 0.7

ROUND_TARGET_SECONDS = {100_000: 10.0}
SPEED_RATIO_TARGET = {10_000: 20.0}

SCORE_CHECK_SAMPLES = 2000  # pairs whose numpy score is compared with score_pair's
MEBIBYTE = 1 << 20
Item = TypeVar("Item")


# --- the synthetic cohort ------------------------------------------------------------------------------------


def zipf_weights(count: int, exponent: float) -> list[float]:
    """Weights 1, 1/2^s, 1/3^s, ...: the first is the most popular."""
    return [1 / rank**exponent for rank in range(1, count + 1)]


class WeightedDraw(Generic[Item]):
    """Draws from a fixed population with fixed weights (cumulative weights, so each draw is a bisection)."""

    def __init__(self, population: Sequence[Item], weights: Sequence[float]) -> None:
        self.population = population
        self.cumulative = list(itertools.accumulate(weights))

    def __len__(self) -> int:
        return len(self.population)

    def draw(self, rng: random.Random) -> Item:
        return rng.choices(self.population, cum_weights=self.cumulative)[0]

    def draw_distinct(self, rng: random.Random, count: int) -> list[Item]:
        drawn: list[Item] = []
        while len(drawn) < min(count, len(self.population)):
            item = self.draw(rng)
            if item not in drawn:
                drawn.append(item)
        return drawn


@dataclass(frozen=True)
class Cohort:
    mentees: list[Mentee]
    mentors: list[Mentor]

    @property
    def places(self) -> int:
        """Free places among the mentors."""
        return sum(mentor.available for mentor in self.mentors)


def synthetic_cohort(mentee_count: int, seed: int) -> Cohort:
    """A reproducible cohort: the same size and seed give the same people, choices and ids."""
    rng = random.Random(f"{seed}:{mentee_count}")
    interests = WeightedDraw(RESEARCH_INTERESTS, zipf_weights(len(RESEARCH_INTERESTS), INTEREST_EXPONENT))
    institutions = WeightedDraw(INSTITUTIONS, zipf_weights(len(INSTITUTIONS), INSTITUTION_EXPONENT))
    levels = range(len(SENIORITY_SCALE))

    def profile() -> tuple[str, tuple[str, ...], str | None]:
        tags = tuple(interests.draw_distinct(rng, rng.randint(2, 5)))  # a tuple: set order varies between runs
        background = rng.choice(BACKGROUNDS) if rng.random() < BACKGROUND_SHARE else None
        return institutions.draw(rng), tags, background

    mentor_count = max(1, round(mentee_count * MENTORS_PER_MENTEE))
    mentors: list[Mentor] = []
    with_interest: dict[str, list[int]] = {}
    for number in range(mentor_count):
        institution, tags, background = profile()
        for tag in tags:
            with_interest.setdefault(tag, []).append(number)
        mentors.append(
            Mentor(
                participant_id=f"mentor-{number:06d}",
                institution_id=institution,
                seniority=rng.choices(levels, weights=MENTOR_SENIORITY_WEIGHTS)[0],
                interests=frozenset(tags),
                capacity=rng.choice(PLACES_PER_MENTOR),
                background=background,
            )
        )
    popularity = zipf_weights(mentor_count, POPULARITY_EXPONENT)
    rng.shuffle(popularity)  # who is popular is independent of everything else
    pools: dict[tuple[int, str | None], WeightedDraw[int]] = {}

    def senior_mentors(level: int, interest: str | None) -> WeightedDraw[int]:
        """Mentors senior to the level (with the interest, if one is given), weighted by popularity."""
        key = (level, interest)
        if key not in pools:
            candidates = with_interest.get(interest, []) if interest else range(mentor_count)
            eligible = [m for m in candidates if mentors[m].seniority > level]
            pools[key] = WeightedDraw(eligible, [popularity[m] for m in eligible])
        return pools[key]

    mentees: list[Mentee] = []
    for number in range(mentee_count):
        institution, tags, background = profile()
        level = rng.choices(levels, weights=MENTEE_SENIORITY_WEIGHTS)[0]
        anyone = senior_mentors(level, None)
        named: list[int] = []
        while len(named) < min(MAX_CHOICES, len(anyone)):
            source = senior_mentors(level, rng.choice(tags)) if rng.random() < CHOICE_WITHIN_INTERESTS else anyone
            mentor = (source or anyone).draw(rng)
            if mentor not in named:
                named.append(mentor)
        mentees.append(
            Mentee(
                participant_id=f"mentee-{number:06d}",
                institution_id=institution,
                seniority=level,
                interests=frozenset(tags),
                choices=tuple(mentors[m].participant_id for m in named),
                background=background,
            )
        )
    return Cohort(mentees, mentors)


# --- the engine's round --------------------------------------------------------------------------------------


def timed_round(cohort: Cohort, policy: Policy, repeat: int) -> tuple[CohortResult, list[float]]:
    """The result of match_cohort and the wall time of each of `repeat` runs."""
    seconds: list[float] = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = match_cohort(cohort.mentees, cohort.mentors, policy)
        seconds.append(time.perf_counter() - started)
    return result, seconds


def traced_peak_bytes(cohort: Cohort, policy: Policy) -> int:
    """Most Python memory allocated at once during one more (untimed) run of match_cohort."""
    tracemalloc.start()
    try:
        match_cohort(cohort.mentees, cohort.mentors, policy)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def group_extremes(groups: dict[str, dict], label: Callable[[str], str]) -> dict[str, dict]:
    """Lowest and highest match rate and first-choice rate among the groups, with the group they belong to."""
    extremes: dict[str, dict] = {}
    for rate in ("match_rate", "first_choice_rate"):
        ranked = sorted(groups, key=lambda key: (groups[key][rate], key))
        if ranked:
            low, high = ranked[0], ranked[-1]
            extremes[rate] = {
                "min": groups[low][rate],
                "min_group": label(low),
                "max": groups[high][rate],
                "max_group": label(high),
            }
    return extremes


def round_figures(outcome: RoundOutcome) -> dict:
    """The round's quality report, with the lowest and highest rate by institution and by seniority."""
    figures = outcome.quality.as_dict()
    figures["institution_extremes"] = group_extremes(figures["by_institution"], str)
    figures["seniority_extremes"] = group_extremes(figures["by_seniority"], lambda key: SENIORITY_SCALE[int(key)])
    return figures


def assignment_of(outcomes: Sequence[RoundOutcome], mentees: Sequence[Mentee], mentors: Sequence[Mentor]) -> list[int]:
    """Each mentee's mentor position (mentees and mentors in id order) over the given rounds, or UNMATCHED."""
    mentee_position = {m.participant_id: i for i, m in enumerate(mentees)}
    mentor_position = {m.participant_id: i for i, m in enumerate(mentors)}
    assigned = [UNMATCHED] * len(mentees)
    for outcome in outcomes:
        for proposal in outcome.proposals:
            assigned[mentee_position[proposal.mentee_id]] = mentor_position[proposal.mentor_id]
    return assigned


def stranded_mentees(cohort: Cohort, result: CohortResult, policy: Policy) -> int:
    """Mentees neither round placed although a mentor senior enough for them still has a free place."""
    taken: dict[str, int] = {}
    for proposal in result.proposals:
        taken[proposal.mentor_id] = taken.get(proposal.mentor_id, 0) + 1
    levels_with_places = {m.seniority for m in cohort.mentors if m.available > taken.get(m.participant_id, 0)}
    unmatched = set(result.unmatched)
    direction = 1 if policy.mentor_more_senior else -1
    return sum(
        1
        for mentee in cohort.mentees
        if mentee.participant_id in unmatched
        and any((level - mentee.seniority) * direction >= 1 for level in levels_with_places)
    )


# --- the `matching` package ----------------------------------------------------------------------------------


def matching_package() -> tuple[type, type, Callable]:
    """The `matching` package's resident and hospital classes and its core hospital/resident algorithm.

    This script is named matching.py and Python puts its directory first on the import path, where `import
    matching` would find the script itself; so that directory leaves the path before the package is imported.
    """
    script_directory = Path(__file__).resolve().parent
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != script_directory]
    from matching import Player
    from matching.algorithms.hospital_resident import hospital_resident
    from matching.players import Hospital

    return Player, Hospital, hospital_resident


class OutOfTime(Exception):
    """The solver used up its time budget."""


@dataclass
class PackageRun:
    setup_seconds: float
    solve_seconds: float | None  # None: stopped at the budget
    assigned: list[int] | None  # mentor position per mentee position, UNMATCHED if none


def solve_with_package(
    mentee_lists: Sequence[Sequence[int]],
    mentor_lists: Iterator[tuple[int, Sequence[int]]],
    capacities: Sequence[int],
    budget_seconds: float = 0,
) -> PackageRun:
    """Resident-optimal hospital/resident matching by the `matching` package, on lists given by position.

    Its game object deep-copies players (recursion limit) and checks inputs quadratically, so its core algorithm
    runs on players built here. A budget of 0 means no limit.
    """
    player_class, hospital_class, hospital_resident = matching_package()
    started = time.perf_counter()
    residents = [player_class(mentee) for mentee in range(len(mentee_lists))]
    hospitals = [hospital_class(mentor, capacity) for mentor, capacity in enumerate(capacities)]
    for resident, mentors in zip(residents, mentee_lists, strict=True):
        resident.set_prefs([hospitals[mentor] for mentor in mentors])
    ranking = []
    for mentor, mentees in mentor_lists:
        hospitals[mentor].set_prefs([residents[mentee] for mentee in mentees])
        ranking.append(hospitals[mentor])
    setup_seconds = time.perf_counter() - started

    def stop(signum: int, frame: object) -> None:
        raise OutOfTime

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, budget_seconds)
    started = time.perf_counter()
    try:
        solved = hospital_resident([r for r in residents if r.prefs], ranking, optimal="resident")
    except OutOfTime:
        return PackageRun(setup_seconds, None, None)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    solve_seconds = time.perf_counter() - started
    assigned = [UNMATCHED] * len(mentee_lists)
    for hospital, matched in solved.items():
        for resident in matched:
            assigned[resident.name] = hospital.name
    return PackageRun(setup_seconds, solve_seconds, assigned)


def mentor_lists_of(lists: RankedLists) -> Iterator[tuple[int, list[int]]]:
    """Each listed mentor's mentees by the engine's priority (named rank, score, id), from the engine's lists."""
    keyed: dict[int, list[tuple[tuple[int, float, int], int]]] = {}
    for mentee, entries in enumerate(lists.entries):
        for place, mentor in enumerate(entries):
            keyed.setdefault(mentor, []).append((lists.priority_key(mentee, place), mentee))
    for mentor, ranked in keyed.items():
        yield mentor, [mentee for _, mentee in sorted(ranked)]


def package_agrees_with_engine(outcome: RoundOutcome, engine_assigned: Sequence[int]) -> dict:
    """Solve the round's own lists with the package and compare its pairs with the engine's."""
    run = solve_with_package(outcome.lists.entries, mentor_lists_of(outcome.lists), outcome.capacities)
    return {
        "same_pairs": run.assigned == list(engine_assigned),
        "seconds": run.setup_seconds + (run.solve_seconds or 0),
    }


def round_assignment(outcome: RoundOutcome) -> list[int]:
    """The round's mentor position per mentee of the round (positions as in its lists)."""
    assigned = [UNMATCHED] * len(outcome.lists.mentees)
    position = outcome.lists.index.position
    for proposal in outcome.proposals:
        assigned[outcome.lists.position_of(proposal.mentee_id)] = position[proposal.mentor_id]
    return assigned


# --- the obvious way -----------------------------------------------------------------------------------------


class PairScores:
    """Every mentee-mentor score at once (numpy), computed as `score_pair` does; -inf where he may not mentor her.

    Mentees and mentors are in id order, as the engine orders them, so equal scores break ties the same way.
    """

    def __init__(self, mentees: Sequence[Mentee], mentors: Sequence[Mentor], policy: Policy) -> None:
        self.mentees = sorted(mentees, key=lambda m: m.participant_id)
        self.mentors = sorted(mentors, key=lambda m: m.participant_id)
        self.policy = policy
        people = [*self.mentees, *self.mentors]
        tag_column = {tag: i for i, tag in enumerate(sorted({tag for p in people for tag in p.interests}))}
        institution_code = {name: i for i, name in enumerate(sorted({p.institution_id for p in people}))}
        background_code = {name: i for i, name in enumerate(sorted({p.background for p in people if p.background}))}

        def tag_matrix(group: Sequence[Mentee | Mentor]) -> np.ndarray:
            matrix = np.zeros((len(group), len(tag_column)), dtype=np.float32)  # small counts: exact in float32
            for row, person in enumerate(group):
                matrix[row, [tag_column[tag] for tag in person.interests]] = 1
            return matrix

        self.mentee_tags, self.mentor_tags = tag_matrix(self.mentees), tag_matrix(self.mentors)
        self.mentee_tag_count = np.array([len(m.interests) for m in self.mentees], dtype=np.float64)
        self.mentor_tag_count = np.array([len(m.interests) for m in self.mentors], dtype=np.float64)
        self.mentee_institution = np.array([institution_code[m.institution_id] for m in self.mentees])
        self.mentor_institution = np.array([institution_code[m.institution_id] for m in self.mentors])
        # No background is never shared: mentees without one get a code that no mentor has.
        self.mentee_background = np.array([background_code.get(m.background, -1) for m in self.mentees])
        self.mentor_background = np.array([background_code.get(m.background, -2) for m in self.mentors])
        self.mentee_level = np.array([m.seniority for m in self.mentees])
        self.mentor_level = np.array([m.seniority for m in self.mentors])
        self.mentor_full = np.array([m.available <= 0 for m in self.mentors], dtype=bool)
        levels = 1 + max((p.seniority for p in people), default=0)
        self.weighted_fit = np.full((levels, levels), -np.inf)  # by mentee level, mentor level; -inf: ineligible
        for mentee_level, mentor_level in itertools.product(range(levels), repeat=2):
            gap = mentor_level - mentee_level if policy.mentor_more_senior else mentee_level - mentor_level
            if gap >= 1:
                fit = 1.0 / (1 + abs(gap - policy.preferred_gap))
                self.weighted_fit[mentee_level, mentor_level] = policy.weights.seniority * fit

    @property
    def pairs(self) -> int:
        return len(self.mentees) * len(self.mentors)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Scores of the mentees start..stop against every mentor."""
        weights = self.policy.weights
        shared = (self.mentee_tags[start:stop] @ self.mentor_tags.T).astype(np.float64)
        distinct = self.mentee_tag_count[start:stop, None] + self.mentor_tag_count[None, :] - shared
        overlap = np.divide(shared, distinct, out=np.zeros_like(shared), where=shared > 0)
        other_institution = self.mentee_institution[start:stop, None] != self.mentor_institution[None, :]
        shared_background = self.mentee_background[start:stop, None] == self.mentor_background[None, :]
        # The same order of additions as score_pair, so the scores agree to the bit.
        scores = self.weighted_fit[self.mentee_level[start:stop, None], self.mentor_level[None, :]]
        scores = scores + weights.interests * overlap
        scores = scores + weights.other_institution * other_institution.astype(np.float64)
        scores = scores + weights.background * shared_background.astype(np.float64)
        scores[:, self.mentor_full] = -np.inf
        return scores

    def all(self, rows_at_once: int = 1000) -> np.ndarray:
        """The whole mentee x mentor matrix."""
        count = len(self.mentees)
        return np.vstack(
            [self.rows(start, min(start + rows_at_once, count)) for start in range(0, count, rows_at_once)]
        )

    def disagreements_with_score_pair(self, scores: np.ndarray, samples: int, rng: random.Random) -> int:
        """How many sampled pairs score differently here than by the engine's score_pair (there should be none)."""
        wrong = 0
        for _ in range(samples):
            mentee, mentor = rng.randrange(len(self.mentees)), rng.randrange(len(self.mentors))
            pair = score_pair(self.mentees[mentee], self.mentors[mentor], self.policy)
            expected = -np.inf if pair is None or self.mentor_full[mentor] else pair.score
            wrong += bool(scores[mentee, mentor] != expected)
        return wrong


def full_mentee_lists(pair_scores: PairScores, scores: np.ndarray, rows_at_once: int = 1000) -> RankedLists:
    """Her valid choices in her order, then every other eligible mentor by score (ties by id), as RankedLists."""
    mentor_position = {m.participant_id: i for i, m in enumerate(pair_scores.mentors)}
    entries: list[array] = []
    list_scores: list[array] = []
    choice_ranks: list[bytes] = []
    for start in range(0, len(pair_scores.mentees), rows_at_once):
        block = scores[start : start + rows_at_once]
        by_score = np.argsort(-block, axis=1, kind="stable")  # -inf (ineligible) last; equal scores by id
        eligible_counts = np.isfinite(block).sum(axis=1)
        for row, her in enumerate(pair_scores.mentees[start : start + rows_at_once]):
            valid: list[int] = []
            ranks: list[int] = []
            for rank, mentor_id in enumerate(her.choices, start=1):
                mentor = mentor_position.get(mentor_id)
                if mentor is not None and mentor not in valid and np.isfinite(block[row, mentor]):
                    valid.append(mentor)
                    ranks.append(rank)
            others = by_score[row, : eligible_counts[row]]
            mentors = np.concatenate([np.array(valid, dtype=np.intp), others[~np.isin(others, valid)]])
            entries.append(array("i", mentors.astype(np.int32).tobytes()))
            list_scores.append(array("d", block[row, mentors].tobytes()))
            choice_ranks.append(bytes(ranks))
    return RankedLists(
        mentees=tuple(pair_scores.mentees),
        index=MentorIndex(pair_scores.mentors, postings=False),
        entries=tuple(entries),
        scores=tuple(list_scores),
        choice_ranks=tuple(choice_ranks),
        skipped=((),) * len(entries),
    )


def full_mentor_lists(
    pair_scores: PairScores, scores: np.ndarray, lists: RankedLists, columns_at_once: int = 500
) -> list[tuple[int, np.ndarray]]:
    """Each mentor's eligible mentees by the engine's priority: those who named him by rank, then all by score."""
    named_by: dict[int, list[tuple[int, int]]] = {}
    for mentee, ranks in enumerate(lists.choice_ranks):
        for place, rank in enumerate(ranks):
            named_by.setdefault(lists.entries[mentee][place], []).append((mentee, rank))
    mentee_ids = [m.participant_id for m in pair_scores.mentees]
    ranked: list[tuple[int, np.ndarray]] = []
    for start in range(0, len(pair_scores.mentors), columns_at_once):
        block = np.ascontiguousarray(scores[:, start : start + columns_at_once].T)
        by_score = np.argsort(-block, axis=1, kind="stable")  # equal scores by mentee id
        eligible_counts = np.isfinite(block).sum(axis=1)
        for column in range(block.shape[0]):
            mentor = start + column
            named = [
                mentee
                for mentee, _ in sorted(
                    named_by.get(mentor, []),
                    key=lambda named: mentor_priority_key(named[1], block[column, named[0]], mentee_ids[named[0]]),
                )
            ]
            others = by_score[column, : eligible_counts[column]]
            mentees = np.concatenate([np.array(named, dtype=np.intp), others[~np.isin(others, named)]])
            if len(mentees):
                ranked.append((mentor, mentees))
    return ranked


def rank_profile(lists: RankedLists, assigned: Sequence[int]) -> dict[str, int]:
    """How many got their 1st, 2nd, 3rd choice, a fallback, or nobody."""
    profile = dict.fromkeys(("choice_1", "choice_2", "choice_3", "fallback", "unmatched"), 0)
    for mentee, mentor in enumerate(assigned):
        if mentor == UNMATCHED:
            profile["unmatched"] += 1
            continue
        place = lists.entries[mentee].index(mentor)
        rank = lists.choice_rank(mentee, place)
        profile["fallback" if rank is None else f"choice_{rank}"] += 1
    return profile


def obvious_way(
    cohort: Cohort, policy: Policy, result: CohortResult, engine_seconds: float, solver_budget: float, seed: int
) -> dict:
    """Time scoring every pair, full lists and the package's solver; compare the pairs with the engine's."""
    started = time.perf_counter()
    pair_scores = PairScores(cohort.mentees, cohort.mentors, policy)
    scores = pair_scores.all()
    scoring_seconds = time.perf_counter() - started
    disagreements = pair_scores.disagreements_with_score_pair(scores, SCORE_CHECK_SAMPLES, random.Random(seed))

    started = time.perf_counter()
    lists = full_mentee_lists(pair_scores, scores)
    mentee_lists_seconds = time.perf_counter() - started
    started = time.perf_counter()
    mentor_lists = full_mentor_lists(pair_scores, scores, lists)
    mentor_lists_seconds = time.perf_counter() - started
    del scores
    capacities = lists.index.available

    package = solve_with_package(lists.entries, iter(mentor_lists), capacities, solver_budget)
    del mentor_lists
    started = time.perf_counter()
    full_assigned = deferred_acceptance(lists, capacities)
    deferred_acceptance_seconds = time.perf_counter() - started

    lists_seconds = scoring_seconds + mentee_lists_seconds + mentor_lists_seconds
    package_seconds = lists_seconds + package.setup_seconds + (package.solve_seconds or solver_budget)
    fast_seconds = scoring_seconds + mentee_lists_seconds + deferred_acceptance_seconds
    engine_assigned = assignment_of((result.stable, result.residual), lists.mentees, pair_scores.mentors)
    return {
        "pairs_scored": pair_scores.pairs,
        "score_pair_disagreements": disagreements,
        "score_pair_samples": SCORE_CHECK_SAMPLES,
        "mean_list_length": sum(map(len, lists.entries)) / max(len(lists.entries), 1),
        "seconds": {
            "scoring": scoring_seconds,
            "mentee_lists": mentee_lists_seconds,
            "mentor_lists": mentor_lists_seconds,
            "package_setup": package.setup_seconds,
            "package_solve": package.solve_seconds,
            "total": package_seconds,
            "deferred_acceptance": deferred_acceptance_seconds,
            "total_with_deferred_acceptance": fast_seconds,
        },
        "package_finished": package.solve_seconds is not None,
        "solver_budget_seconds": solver_budget,
        "speed_ratio": package_seconds / engine_seconds,
        "speed_ratio_is_lower_bound": package.solve_seconds is None,
        "speed_ratio_scoring_and_lists_only": lists_seconds / engine_seconds,
        "speed_ratio_with_deferred_acceptance": fast_seconds / engine_seconds,
        "package_equals_deferred_acceptance": None if package.assigned is None else package.assigned == full_assigned,
        "full_lists": {
            "matched": sum(mentor != UNMATCHED for mentor in full_assigned),
            "rank_profile": rank_profile(lists, full_assigned),
            "blocking_pairs": count_blocking_pairs(lists, capacities, full_assigned),
        },
        "engine_under_full_lists": {
            "matched_stable_round": result.stable.quality.matched,
            "matched_both_rounds": sum(mentor != UNMATCHED for mentor in engine_assigned),
            "same_mentor_as_full_lists": sum(a == b for a, b in zip(engine_assigned, full_assigned, strict=True)),
            "blocking_pairs": count_blocking_pairs(lists, capacities, engine_assigned),
        },
    }


# --- one size, and the report --------------------------------------------------------------------------------


def measure(size: int, args: argparse.Namespace, largest_scoring: dict | None) -> dict:
    policy = DEFAULT_POLICY
    started = time.perf_counter()
    cohort = synthetic_cohort(size, args.seed)
    drawing_seconds = time.perf_counter() - started
    result, round_seconds = timed_round(cohort, policy, args.repeat)
    engine_seconds = min(round_seconds)
    figures: dict = {
        "mentees": len(cohort.mentees),
        "mentors": len(cohort.mentors),
        "places": cohort.places,
        "cohort_drawing_seconds": drawing_seconds,
        "round_seconds": engine_seconds,
        "round_seconds_each_run": round_seconds,
        "round_target_seconds": ROUND_TARGET_SECONDS.get(size),
        "peak_traced_bytes": traced_peak_bytes(cohort, policy),
        "stable": round_figures(result.stable),
        "residual": round_figures(result.residual),
        "matched_both_rounds": result.stable.quality.matched + result.residual.quality.matched,
        "places_left": cohort.places - len(result.proposals),
        "unmatched_with_eligible_places_left": stranded_mentees(cohort, result, policy),
        "package_on_engine_lists": {
            outcome.round: package_agrees_with_engine(outcome, round_assignment(outcome))
            for outcome in (result.stable, result.residual)
        },
        "speed_ratio_target": SPEED_RATIO_TARGET.get(size),
    }
    if size <= args.obvious_up_to:
        figures["obvious_way"] = obvious_way(cohort, policy, result, engine_seconds, args.solver_budget, args.seed)
    elif largest_scoring:
        per_pair = largest_scoring["seconds"] / largest_scoring["pairs"]
        estimate = per_pair * len(cohort.mentees) * len(cohort.mentors)
        figures["obvious_way"] = {
            "skipped": True,
            "estimated_scoring_seconds": estimate,
            "estimated_from_mentees": largest_scoring["mentees"],
            "speed_ratio_at_least": estimate / engine_seconds,
        }
    else:
        figures["obvious_way"] = {"skipped": True}
    return figures


def percent(part: float, whole: float = 1.0) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def extremes(rate: str, groups: str) -> Callable[[dict], str]:
    """The lowest and highest rate among a round's groups, with the groups."""

    def text(figures: dict) -> str:
        e = figures[groups].get(rate)
        return f"{percent(e['min'])} {e['min_group']} .. {percent(e['max'])} {e['max_group']}" if e else "-"

    return text


ROUND_ROWS: tuple[tuple[str, Callable[[dict], str]], ...] = (
    ("mentees", lambda q: f"{q['mentees']:,}"),
    ("matched", lambda q: f"{q['matched']:,} ({percent(q['matched'], q['mentees'])})"),
    ("1st choice", lambda q: percent(q["first_choice_rate"])),
    ("any of her three", lambda q: percent(q["any_choice_rate"])),
    ("1st / 2nd / 3rd / fallback / none", lambda q: " / ".join(f"{n:,}" for n in q["rank_profile"].values())),
    ("fallback reasons", lambda q: ", ".join(f"{k} {n:,}" for k, n in q["fallback_reasons"].items()) or "none"),
    ("blocking pairs (must be 0)", lambda q: f"{q['blocking_pairs']:,}"),
    ("requests naming top-10% mentors", lambda q: percent(q["top_decile_choice_share"])),
    ("matched by institution, min .. max", extremes("match_rate", "institution_extremes")),
    ("1st choice by institution", extremes("first_choice_rate", "institution_extremes")),
    ("matched by seniority", extremes("match_rate", "seniority_extremes")),
    ("1st choice by seniority", extremes("first_choice_rate", "seniority_extremes")),
)


def print_size(figures: dict) -> None:
    mentees, seconds, target = figures["mentees"], figures["round_seconds"], figures["round_target_seconds"]
    print(f"\n== {mentees:,} mentees, {figures['mentors']:,} mentors with {figures['places']:,} places")
    print(f"cohort drawn in {figures['cohort_drawing_seconds']:.2f} s (not timed below)")
    verdict = f"  [target < {target:.0f} s: {'met' if seconds < target else 'MISSED'}]" if target else ""
    runs = ", ".join(f"{s:.2f}" for s in figures["round_seconds_each_run"])
    print(f"engine round, match_cohort end to end: {seconds:.2f} s (runs: {runs}){verdict}")
    peak = figures["peak_traced_bytes"] / MEBIBYTE
    print(f"peak Python memory of the round (tracemalloc, separate run): {peak:.1f} MiB")
    print(f"  {'':<36} {'stable round':<50} residual round")
    for label, text in ROUND_ROWS:
        print(f"  {label:<36} {text(figures['stable']):<50} {text(figures['residual'])}")
    matched, left = figures["matched_both_rounds"], figures["places_left"]
    print(f"both rounds: {matched:,} of {mentees:,} matched ({percent(matched, mentees)}), {left:,} places left")
    stranded = figures["unmatched_with_eligible_places_left"]
    print(f"  unmatched although a mentor senior enough for her still has a free place: {stranded:,}")
    check = figures["package_on_engine_lists"]
    print(
        "cross-check, the `matching` package on the engine's own lists gives the engine's pairs: "
        + ", ".join(f"{name} {'yes' if c['same_pairs'] else 'NO'} ({c['seconds']:.1f} s)" for name, c in check.items())
    )
    print_obvious_way(figures)


def print_obvious_way(figures: dict) -> None:
    obvious, target = figures["obvious_way"], figures["speed_ratio_target"]
    if obvious.get("skipped"):
        if "estimated_scoring_seconds" in obvious:
            print(
                f"obvious way: skipped, too slow. ESTIMATED time to score every pair alone: "
                f"{obvious['estimated_scoring_seconds']:.1f} s (per-pair time measured at "
                f"{obvious['estimated_from_mentees']:,} mentees), so ESTIMATED at least "
                f"{obvious['speed_ratio_at_least']:.1f}x the engine's round before any list is built or solved"
            )
        else:
            print("obvious way: skipped")
        return
    s = obvious["seconds"]
    print("obvious way: score every pair, full preference lists, the `matching` package's solver")
    print(
        f"  score {obvious['pairs_scored']:,} pairs with numpy: {s['scoring']:.2f} s; disagreements with score_pair on "
        f"{obvious['score_pair_samples']:,} sampled pairs: {obvious['score_pair_disagreements']}"
    )
    print(
        f"  full lists: mentees' {s['mentee_lists']:.2f} s (on average {obvious['mean_list_length']:,.0f} mentors "
        f"each), mentors' {s['mentor_lists']:.2f} s"
    )
    if obvious["package_finished"]:
        print(f"  package: players {s['package_setup']:.2f} s, solve {s['package_solve']:.2f} s")
    else:
        print(
            f"  package: players {s['package_setup']:.2f} s, solve stopped unfinished at the "
            f"{obvious['solver_budget_seconds']:.0f} s budget"
        )
    bound = ">= " if obvious["speed_ratio_is_lower_bound"] else ""
    verdict = ""
    if target:
        verdict = f"  [target >= {target:.0f}x: {'met' if obvious['speed_ratio'] >= target else 'MISSED'}]"
    print(
        f"  total {bound}{s['total']:.1f} s = {bound}{obvious['speed_ratio']:.0f}x the engine's round{verdict}; "
        f"scoring and lists alone {obvious['speed_ratio_scoring_and_lists_only']:.1f}x"
    )
    print(
        f"  with the engine's deferred acceptance as solver instead: {s['deferred_acceptance']:.2f} s to solve, "
        f"{s['total_with_deferred_acceptance']:.1f} s in all = {obvious['speed_ratio_with_deferred_acceptance']:.1f}x"
    )
    agrees = obvious["package_equals_deferred_acceptance"]
    print(
        "  package and deferred acceptance give the same pairs on the full lists: "
        + ("not known (package unfinished)" if agrees is None else ("yes" if agrees else "NO"))
    )
    full, engine = obvious["full_lists"], obvious["engine_under_full_lists"]
    profile = " / ".join(f"{count:,}" for count in full["rank_profile"].values())
    print(
        f"  full-list stable matching: {full['matched']:,} matched, 1st / 2nd / 3rd / fallback / none {profile}, "
        f"blocking pairs {full['blocking_pairs']}"
    )
    print(
        f"  engine (truncated lists, then residual round) vs full lists: matched {engine['matched_stable_round']:,} "
        f"in the stable round and {engine['matched_both_rounds']:,} in both, against {full['matched']:,} "
        f"({'same' if engine['matched_both_rounds'] == full['matched'] else 'differs'}); same mentor for "
        f"{percent(engine['same_mentor_as_full_lists'], figures['mentees'])} of mentees; the engine's pairs of both "
        f"rounds have {engine['blocking_pairs']:,} blocking pairs under the full lists"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000], help="mentees per cohort")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--repeat", type=int, default=1, help="timed runs of the round per size; the fastest counts")
    parser.add_argument(
        "--obvious-up-to", type=int, default=10_000, help="largest size at which to run the obvious way"
    )
    parser.add_argument(
        "--solver-budget", type=float, default=300, help="seconds before the package's solver is stopped (0: none)"
    )
    args = parser.parse_args()
    print(f"matching benchmark, seed {args.seed}, Python {sys.version.split()[0]}, numpy {np.__version__}")
    targets = [f"round of {n:,} mentees under {t:.0f} s" for n, t in ROUND_TARGET_SECONDS.items()]
    targets += [f"obvious way at least {r:.0f}x slower at {n:,}" for n, r in SPEED_RATIO_TARGET.items()]
    print(f"targets: {'; '.join(targets)}")
    results = []
    largest_scoring = None
    for size in sorted(args.sizes):
        figures = measure(size, args, largest_scoring)
        print_size(figures)
        obvious = figures["obvious_way"]
        if not obvious.get("skipped"):
            largest_scoring = {
                "mentees": size,
                "pairs": obvious["pairs_scored"],
                "seconds": obvious["seconds"]["scoring"],
            }
        results.append(figures)
    print(json.dumps({"benchmark": "matching", "seed": args.seed, "sizes": results}, separators=(",", ":")))


if __name__ == "__main__":
    main()
