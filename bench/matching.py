"""Benchmark: a cohort round of the matching engine, against a min-cost flow, scoring every pair and full lists.

For each cohort size (mentees; half as many mentors, each with 1-3 places) a synthetic cohort is drawn from a
fixed seed: six seniority levels with mentors more senior, 15 institutions of uneven size, 2-5 of 165 research
interests each (some interests far more common than others), a fifth of people opted in to background matching,
and three distinct choices per mentee, named among the mentors senior to her (as registration requires), mostly
within her interests, skewed towards popular mentors (Zipf-like). Drawing the cohort is not timed.

Per size it prints:
  - the wall time of `match_cohort` end to end: candidate generation, lists, both rounds, proposals, quality (the
    fastest of --repeat runs);
  - the peak memory of the round: the most memory the round held at once as tracemalloc traces it (Python
    objects and numpy's arrays), in a second, untimed repetition (the cohort's own objects are not counted);
  - the quality figures of the stable and the residual round, groups summarised by their lowest and highest rate;
  - a cross-check: the `matching` package's hospital/resident algorithm, run on the engine's own stable-round
    lists and priorities, must give exactly the engine's stable-round pairs (the residual round maximises the
    number placed instead, so it is not a stable matching of its lists);
  - engine vs min-cost flow, side by side: OR-Tools' SimpleMinCostFlow places as many mentees as its edges allow
    and, among those assignments, the highest total of the engine's scores. Its edges are every eligible pair up
    to --flow-all-edges-up-to mentees; above that (every pair is billions of edges at 100k), each mentee's valid
    named choices and her --flow-top best-scoring eligible mentors. Beside both, the maximum possible: a maximum
    flow over every eligible pair (OR-Tools SimpleMaxFlow, exact), which no assignment can beat;
  - the obvious way, timed in the same run (up to --obvious-up-to mentees): score every mentee-mentor pair with
    numpy, exactly as `score_pair` does; build full preference lists (her valid choices, then every other
    eligible mentor by score; mentors rank those mentees by the engine's priority); solve them with the
    `matching` package's core algorithm (its game object is unusable at this size). The package's solver is
    stopped after --solver-budget seconds, and then the ratio is a lower bound. The same full lists are also
    solved by the engine's deferred acceptance, to compare the pairs and to show the ratio with a fast solver.
    Above --obvious-up-to only the scoring time is estimated, from the per-pair time measured at a smaller size.

Then, per --peak-at size (1,000,000 by default), in a fresh process: the round's time, its traced peak (as above)
and the process's resident set before the round and its peak during it (VmRSS, VmHWM).

The last line is one JSON object with every figure, for tooling.

    .venv/bin/python bench/matching.py --sizes 1000 10000 100000
"""

import argparse
import gc
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

# Before numpy loads BLAS: the min-cost flow's edge choosing multiplies small blocks, one per core, and BLAS's own
# threads on top of those only contend (three times slower, measured).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from ortools import __version__ as ortools_version  # noqa: E402
from ortools.graph.python import max_flow  # noqa: E402
from ortools.graph.python import min_cost_flow as min_cost_flow_module  # noqa: E402

from aimms_matching.domain.engine import (  # noqa: E402
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
from aimms_matching.domain.engine.candidates import NOT_NAMED, ListBuilder, MenteeArrays  # noqa: E402
from aimms_registration.demo import SENIORITY  # noqa: E402

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

ROUND_TARGET_SECONDS = {100_000: 3.0}
SPEED_RATIO_TARGET = {10_000: 20.0}

SCORE_CHECK_SAMPLES = 2000  # pairs whose numpy score is compared with score_pair's
MEBIBYTE = 1 << 20
COST_SCALE = 1_000_000  # the min-cost flow's integer costs: millionths of a score
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
    """Most memory allocated at once during one more (untimed) run of match_cohort, as tracemalloc traces it:
    Python objects and numpy's arrays (numpy reports its buffers to tracemalloc); the cohort's own objects,
    allocated before, are not counted."""
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


def mentee_lists_of(lists: RankedLists) -> list[list[int]]:
    """Each mentee's list as mentor positions, best first."""
    return [entries.tolist() for entries in np.split(lists.mentors, lists.starts[1:-1])]


def mentor_lists_of(lists: RankedLists) -> Iterator[tuple[int, list[int]]]:
    """Each listed mentor's mentees by the engine's priority (named rank, score, id), from the engine's lists."""
    owners = lists.owners()
    keys = lists.priorities(np.arange(len(owners)), owners)
    order = np.lexsort((keys, lists.mentors))
    mentors, mentees = lists.mentors[order], owners[order]
    bounds = np.flatnonzero(np.diff(mentors)) + 1
    for mentor, ranked in zip(mentors[np.r_[0, bounds]].tolist(), np.split(mentees, bounds), strict=True):
        if len(ranked):
            yield mentor, ranked.tolist()


def package_agrees_with_engine(outcome: RoundOutcome, engine_assigned: Sequence[int]) -> dict:
    """Solve the round's own lists with the package and compare its pairs with the engine's."""
    lists = outcome.lists
    run = solve_with_package(mentee_lists_of(lists), mentor_lists_of(lists), outcome.capacities)
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


def valid_choices(mentees: Sequence[Mentee], position: dict[str, int], eligible: Callable[[int, int], bool]):
    """Each mentee's valid named choices (position, rank) in her order: known, distinct, eligible."""
    for row, her in enumerate(mentees):
        valid: list[tuple[int, int]] = []
        for rank, mentor_id in enumerate(her.choices, start=1):
            mentor = position.get(mentor_id)
            if mentor is not None and all(mentor != m for m, _ in valid) and eligible(row, mentor):
                valid.append((mentor, rank))
        yield valid


def full_mentee_lists(pair_scores: PairScores, scores: np.ndarray, rows_at_once: int = 1000) -> RankedLists:
    """Her valid choices in her order, then every other eligible mentor by score (ties by id), as RankedLists."""
    mentor_position = {m.participant_id: i for i, m in enumerate(pair_scores.mentors)}
    choices = list(valid_choices(pair_scores.mentees, mentor_position, lambda i, m: np.isfinite(scores[i, m])))
    entries: list[np.ndarray] = []
    ranks: list[np.ndarray] = []
    for start in range(0, len(pair_scores.mentees), rows_at_once):
        block = scores[start : start + rows_at_once]
        by_score = np.argsort(-block, axis=1, kind="stable")  # -inf (ineligible) last; equal scores by id
        eligible_counts = np.isfinite(block).sum(axis=1)
        for row in range(len(block)):
            valid = np.array([mentor for mentor, _ in choices[start + row]], dtype=np.int64)
            others = by_score[row, : eligible_counts[row]]
            entries.append(np.concatenate([valid, others[~np.isin(others, valid)]]))
            named = np.array([rank for _, rank in choices[start + row]], dtype=np.int8)
            ranks.append(np.concatenate([named, np.full(len(entries[-1]) - len(valid), NOT_NAMED, dtype=np.int8)]))
    lengths = np.array([len(e) for e in entries], dtype=np.int64)
    mentors = np.concatenate(entries) if entries else np.zeros(0, dtype=np.int64)
    owners = np.repeat(np.arange(len(entries)), lengths)
    return RankedLists.of(
        tuple(pair_scores.mentees),
        MentorIndex(pair_scores.mentors, postings=False),
        np.concatenate(([0], np.cumsum(lengths))).astype(np.int64),
        mentors,
        scores[owners, mentors],
        np.concatenate(ranks) if ranks else np.zeros(0, dtype=np.int8),
        ((),) * len(entries),
    )


def full_mentor_lists(
    pair_scores: PairScores, scores: np.ndarray, lists: RankedLists, columns_at_once: int = 500
) -> list[tuple[int, np.ndarray]]:
    """Each mentor's eligible mentees by the engine's priority: those who named him by rank, then all by score."""
    named_by: dict[int, list[tuple[int, int]]] = {}
    owners = lists.owners()
    for entry in np.flatnonzero(lists.ranks != NOT_NAMED).tolist():
        named_by.setdefault(int(lists.mentors[entry]), []).append((int(owners[entry]), int(lists.ranks[entry])))
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
    assigned = np.asarray(assigned, dtype=np.int64)
    places = lists.places_of(assigned)
    matched = np.flatnonzero(assigned >= 0)
    ranks = lists.ranks[lists.starts[matched] + places[matched]]
    profile = {f"choice_{rank}": int(np.count_nonzero(ranks == rank)) for rank in (1, 2, 3)}
    profile["fallback"] = int(np.count_nonzero(ranks == NOT_NAMED))
    profile["unmatched"] = len(assigned) - len(matched)
    return profile


def obvious_way(
    cohort: Cohort, policy: Policy, result: CohortResult, engine_seconds: float, solver_budget: float, seed: int
) -> tuple[dict, PairScores, np.ndarray]:
    """Time scoring every pair, full lists and the package's solver; compare the pairs with the engine's.
    Also returns every pair's score, for the min-cost flow over every eligible edge."""
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
    capacities = lists.index.available

    package = solve_with_package(mentee_lists_of(lists), iter(mentor_lists), capacities, solver_budget)
    del mentor_lists
    started = time.perf_counter()
    full_assigned = deferred_acceptance(lists, capacities)
    deferred_acceptance_seconds = time.perf_counter() - started

    lists_seconds = scoring_seconds + mentee_lists_seconds + mentor_lists_seconds
    package_seconds = lists_seconds + package.setup_seconds + (package.solve_seconds or solver_budget)
    fast_seconds = scoring_seconds + mentee_lists_seconds + deferred_acceptance_seconds
    engine_assigned = assignment_of((result.stable, result.residual), lists.mentees, pair_scores.mentors)
    figures = {
        "pairs_scored": pair_scores.pairs,
        "score_pair_disagreements": disagreements,
        "score_pair_samples": SCORE_CHECK_SAMPLES,
        "mean_list_length": float(np.mean(lists.lengths)) if len(lists.lengths) else 0.0,
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
    return figures, pair_scores, scores


# --- the min-cost flow and the maximum possible ---------------------------------------------------------------


def pairs_by_position(cohort: Cohort) -> tuple[list[Mentee], list[Mentor], dict[str, int]]:
    """Mentees and mentors in id order (the engine's positions), and each mentor's position by id."""
    mentees = sorted(cohort.mentees, key=lambda m: m.participant_id)
    mentors = sorted(cohort.mentors, key=lambda m: m.participant_id)
    return mentees, mentors, {m.participant_id: i for i, m in enumerate(mentors)}


def eligible_level(policy: Policy, mentee_level: int, mentor_level: int) -> bool:
    """The fallback rule: the mentor more senior in the programme's direction."""
    gap = mentor_level - mentee_level
    return (gap if policy.mentor_more_senior else -gap) >= 1


def maximum_possible(cohort: Cohort, policy: Policy) -> dict:
    """The most mentees any assignment can place: a maximum flow over every eligible (mentee, mentor place) pair.

    The fallback rule depends on seniority levels alone, so each mentee reaches every eligible mentor through a hub
    of her level instead of an edge per pair; named choices are edges of their own. Exact for this cohort, which
    has no exclusions and nobody who is both mentee and mentor (checked).
    """
    mentees, mentors, position = pairs_by_position(cohort)
    assert not {m.participant_id for m in mentees} & set(position), "someone is both mentee and mentor"
    started = time.perf_counter()
    flow = max_flow.SimpleMaxFlow()
    source, sink, mentee_base = 0, 1, 2
    mentor_base = mentee_base + len(mentees)
    hub_base = mentor_base + len(mentors)
    levels = sorted({m.seniority for m in mentees})
    hub = {level: hub_base + i for i, level in enumerate(levels)}
    tails: list[int] = []
    heads: list[int] = []
    capacities: list[int] = []
    for row, her in enumerate(mentees):
        tails += [source, mentee_base + row]
        heads += [mentee_base + row, hub[her.seniority]]
        capacities += [1, 1]
    for row, valid in enumerate(named_choices(cohort)):  # a named choice need not pass the seniority rule
        for mentor, _ in valid:
            tails.append(mentee_base + row)
            heads.append(mentor_base + mentor)
            capacities.append(1)
    for column, him in enumerate(mentors):
        if him.available <= 0:
            continue
        tails.append(mentor_base + column)
        heads.append(sink)
        capacities.append(him.available)
        for level in levels:
            if eligible_level(policy, level, him.seniority):
                tails.append(hub[level])
                heads.append(mentor_base + column)
                capacities.append(him.available)
    flow.add_arcs_with_capacity(np.array(tails), np.array(heads), np.array(capacities))
    status = flow.solve(source, sink)
    return {
        "matched": int(flow.optimal_flow()) if status == flow.OPTIMAL else None,
        "seconds": time.perf_counter() - started,
        "method": "OR-Tools SimpleMaxFlow over every eligible pair (level hubs for the seniority rule)",
    }


def named_choices(cohort: Cohort) -> list[list[tuple[int, int]]]:
    """Each mentee's valid named choices (mentor position, rank) by mentee position: known, distinct, with a place."""
    mentees, mentors, position = pairs_by_position(cohort)
    free = [m.available > 0 for m in mentors]
    return list(valid_choices(mentees, position, lambda row, mentor: free[mentor]))


class _TopScorer:
    """Chooses, for blocks of mentees of one level, the `take` best-scoring of `columns` (eligible mentors)."""

    def __init__(self, tables: dict, policy: Policy, level: int, columns: np.ndarray, take: int, width: int) -> None:
        w = policy.weights
        gaps = tables["mentor_level"][columns] - level
        gaps = gaps if policy.mentor_more_senior else -gaps
        self.tables, self.columns, self.take, self.width = tables, columns, take, width
        self.fit = (w.seniority / (1 + np.abs(gaps - policy.preferred_gap))).astype(np.float32)
        self.tags_t = np.ascontiguousarray(tables["mentor_tags"][columns].T)
        self.count = tables["mentor_count"][columns]
        self.institution = tables["mentor_institution"][columns]
        self.background = tables["mentor_background"][columns]
        self.weights = (np.float32(w.interests), np.float32(w.other_institution), np.float32(w.background))
        self.buffers = threading.local()

    def best_of(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mentee row, mentor position) of each row's `take` best, scored in place in this thread's buffers."""
        t, buffers = self.tables, self.buffers
        if not hasattr(buffers, "scores"):
            buffers.scores = np.empty((self.width, len(self.columns)), dtype=np.float32)
            buffers.spare = np.empty_like(buffers.scores)
            buffers.flags = np.empty(buffers.scores.shape, dtype=bool)
        interests, other_institution, background = self.weights
        n = len(rows)
        shared, spare, flag = buffers.scores[:n], buffers.spare[:n], buffers.flags[:n]
        np.matmul(t["mentee_tags"][rows], self.tags_t, out=shared)
        np.add(t["mentee_count"][rows, None], self.count, out=spare)
        np.subtract(spare, shared, out=spare)
        np.maximum(spare, 1, out=spare)
        np.divide(shared, spare, out=shared)  # the overlap
        np.multiply(shared, interests, out=shared)
        np.add(shared, self.fit, out=shared)
        np.not_equal(t["mentee_institution"][rows, None], self.institution, out=flag)
        np.add(shared, other_institution, out=shared, where=flag)
        if np.any(t["mentee_background"][rows] >= 0):
            np.equal(t["mentee_background"][rows, None], self.background, out=flag)
            np.add(shared, background, out=shared, where=flag)
        np.negative(shared, out=shared)
        if self.take < len(self.columns):
            chosen = self.columns[np.argpartition(shared, self.take - 1, axis=1)[:, : self.take]]
        else:
            chosen = np.broadcast_to(self.columns, (n, len(self.columns)))
        return np.repeat(rows, chosen.shape[1]), chosen.ravel()


def top_scored(cohort: Cohort, policy: Policy, count: int, rows_at_once: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Each mentee's `count` best-scoring eligible mentors with a place (mentee rows, mentor positions, in id order).

    Every eligible pair is scored, in float32 (shared tags as a matrix product), in place, in blocks of rows small
    enough to stay in memory the allocator reuses, one block per core at a time (numpy lets go of the GIL). This
    only chooses the edges; their costs are then computed exactly by the engine. Scores closer than float32 tells
    apart may swap at the edge of the `count`.
    """
    mentees, mentors, _ = pairs_by_position(cohort)
    people = [*mentees, *mentors]
    tag_column = {tag: i for i, tag in enumerate(sorted({tag for p in people for tag in p.interests}))}
    codes = {name: i for i, name in enumerate(sorted({p.institution_id for p in people}))}
    backgrounds = {name: i for i, name in enumerate(sorted({p.background for p in people if p.background}))}

    def tags_of(group: Sequence[Mentee | Mentor]) -> np.ndarray:
        matrix = np.zeros((len(group), len(tag_column)), dtype=np.float32)
        for row, person in enumerate(group):
            matrix[row, [tag_column[tag] for tag in person.interests]] = 1
        return matrix

    tables = {
        "mentor_level": np.array([m.seniority for m in mentors]),
        "mentor_tags": tags_of(mentors),
        "mentor_count": np.array([len(m.interests) for m in mentors], dtype=np.float32),
        "mentor_institution": np.array([codes[m.institution_id] for m in mentors]),
        "mentor_background": np.array([backgrounds.get(m.background, -2) for m in mentors]),
        "mentee_tags": tags_of(mentees),
        "mentee_count": np.array([len(m.interests) for m in mentees], dtype=np.float32),
        "mentee_institution": np.array([codes[m.institution_id] for m in mentees]),
        "mentee_background": np.array([backgrounds.get(m.background, -1) for m in mentees]),
    }
    free = np.array([m.available > 0 for m in mentors])
    mentee_level = np.array([m.seniority for m in mentees])
    picked_rows: list[np.ndarray] = []
    picked_mentors: list[np.ndarray] = []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for level in np.unique(mentee_level).tolist():
            group = np.flatnonzero(mentee_level == level)
            eligible = [eligible_level(policy, level, int(m)) for m in tables["mentor_level"]]
            columns = np.flatnonzero(free & np.array(eligible, dtype=bool))
            if not len(columns):
                continue
            scorer = _TopScorer(tables, policy, level, columns, min(count, len(columns)), rows_at_once)
            blocks = [group[start : start + rows_at_once] for start in range(0, len(group), rows_at_once)]
            for rows, chosen in pool.map(scorer.best_of, blocks):
                picked_rows.append(rows)
                picked_mentors.append(chosen)
    if not picked_rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(picked_rows), np.concatenate(picked_mentors)


def exact_scores(cohort: Cohort, policy: Policy, rows: np.ndarray, mentors: np.ndarray, named: np.ndarray):
    """The engine's scores of (mentee row, mentor position) pairs: score_pair's, named ones as named choices."""
    index = MentorIndex(cohort.mentors, postings=False)
    her = MenteeArrays(cohort.mentees, index)
    builder = ListBuilder(index, policy, ())
    scores = np.empty(len(rows))
    for level in np.unique(her.seniority).tolist():
        for is_named in (False, True):
            mine = np.flatnonzero((her.seniority[rows] == level) & (named == is_named))
            if len(mine):
                fit = builder.fit_row(level, named=is_named)
                scores[mine] = builder.score_pairs(her, rows[mine], mentors[mine], fit)
    return scores


def min_cost_flow(cohort: Cohort, policy: Policy, edges: str, pair_scores: np.ndarray | None, top: int) -> dict:
    """A maximum flow of minimum cost (OR-Tools SimpleMinCostFlow): each mentee one place, each mentor up to her
    free places, cost minus the engine's score (in millionths), so it places as many as its edges allow and among
    those assignments takes the highest total score. Edges: every eligible pair (`all`), or each mentee's valid
    named choices and her `top` best-scoring eligible mentors (`top`)."""
    mentees, mentors, _ = pairs_by_position(cohort)
    started = time.perf_counter()
    choices = named_choices(cohort)
    named_rows = np.array([row for row, valid in enumerate(choices) for _ in valid], dtype=np.int64)
    named_mentors = np.array([mentor for valid in choices for mentor, _ in valid], dtype=np.int64)
    if edges == "all":
        assert pair_scores is not None
        rows, columns = np.nonzero(np.isfinite(pair_scores))
    else:
        rows, columns = top_scored(cohort, policy, top)
    rows, columns = np.concatenate((named_rows, rows)), np.concatenate((named_mentors, columns))
    is_named = np.arange(len(rows)) < len(named_rows)
    keys, first = np.unique(rows * len(mentors) + columns, return_index=True)  # named first: kept as named
    rows, columns, is_named = rows[first], columns[first], is_named[first]
    choosing_seconds = time.perf_counter() - started
    started = time.perf_counter()
    scores = exact_scores(cohort, policy, rows, columns, is_named)
    scoring_seconds = time.perf_counter() - started
    started = time.perf_counter()
    solver = min_cost_flow_module.SimpleMinCostFlow()
    source, sink, mentee_base = 0, 1, 2
    mentor_base = mentee_base + len(mentees)
    free = np.array([m.available for m in mentors], dtype=np.int64)
    has_place = np.flatnonzero(free > 0)
    tails = np.concatenate((np.zeros(len(mentees), np.int64), mentee_base + rows, mentor_base + has_place))
    heads = np.concatenate(
        (mentee_base + np.arange(len(mentees)), mentor_base + columns, np.ones(len(has_place), np.int64))
    )
    capacity = np.concatenate((np.ones(len(mentees) + len(rows), np.int64), free[has_place]))
    cost = np.concatenate((np.zeros(len(mentees), np.int64), -np.rint(scores * COST_SCALE).astype(np.int64)))
    cost = np.concatenate((cost, np.zeros(len(has_place), np.int64)))
    arcs = solver.add_arcs_with_capacity_and_unit_cost(tails, heads, capacity, cost)
    solver.set_node_supply(source, len(mentees))
    solver.set_node_supply(sink, -len(mentees))
    building_seconds = time.perf_counter() - started
    started = time.perf_counter()
    status = solver.solve_max_flow_with_min_cost()
    solving_seconds = time.perf_counter() - started
    if status != solver.OPTIMAL:
        return {"edges": edges, "status": str(status)}
    used = solver.flows(arcs[len(mentees) : len(mentees) + len(rows)]) > 0
    return {
        "edges": edges,
        "top": top if edges == "top" else None,
        "edge_count": len(rows),
        "matched": int(used.sum()),
        "total_score": float(scores[used].sum()),
        "named_pairs": int(is_named[used].sum()),
        "seconds": {
            "choosing_edges": choosing_seconds,
            "scoring_edges": scoring_seconds,
            "building": building_seconds,
            "solving": solving_seconds,
            "total": choosing_seconds + scoring_seconds + building_seconds + solving_seconds,
        },
        "solver": f"OR-Tools {ortools_version} SimpleMinCostFlow.solve_max_flow_with_min_cost",
        "distinct_edge_keys": len(keys),
    }


def engine_side(result: CohortResult, seconds: float) -> dict:
    """The engine's figures for the side-by-side table."""
    proposals = result.proposals
    return {
        "matched": len(proposals),
        "total_score": float(sum(p.score for p in proposals)),
        "named_pairs": sum(p.choice_rank is not None for p in proposals),
        "seconds": seconds,
    }


# --- peak memory at a large size (a child process, so its peak is its own) -----------------------------------


def resident_bytes() -> tuple[int, int]:
    """This process's resident set now and its high-water mark (Linux /proc/self/status: VmRSS, VmHWM)."""
    status = Path("/proc/self/status").read_text()
    kib = {
        key: int(value.split()[0])
        for key, value in (line.split(":", 1) for line in status.splitlines())
        if key in ("VmRSS", "VmHWM")
    }
    return kib["VmRSS"] * 1024, kib["VmHWM"] * 1024


def peak_child(size: int, seed: int) -> dict:
    """Draw the cohort, then one timed round, then one traced round.

    The resident-set high-water mark is reset after drawing (Linux: "5" to /proc/self/clear_refs), whose own
    peak would hide the round's, so VmHWM after the round is the process's peak during it, cohort included."""
    started = time.perf_counter()
    cohort = synthetic_cohort(size, seed)
    drawing = time.perf_counter() - started
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    rss_before, _ = resident_bytes()
    started = time.perf_counter()
    result = match_cohort(cohort.mentees, cohort.mentors, DEFAULT_POLICY)
    seconds = time.perf_counter() - started
    _, rss_peak = resident_bytes()
    matched = len(result.proposals)
    del result
    gc.collect()
    return {
        "mentees": size,
        "mentors": len(cohort.mentors),
        "cohort_drawing_seconds": drawing,
        "round_seconds": seconds,
        "matched": matched,
        "rss_bytes_before_round": rss_before,
        "peak_rss_bytes_during_round": rss_peak,
        "round_rss_growth_bytes": rss_peak - rss_before,
        "peak_traced_bytes": traced_peak_bytes(cohort, DEFAULT_POLICY),
    }


def peak_at(size: int, seed: int) -> dict:
    """peak_child in a fresh process: the high-water mark of this one holds the smaller sizes' solvers."""
    command = [sys.executable, __file__, "--peak-child", str(size), "--seed", str(seed)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


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
            "stable": package_agrees_with_engine(result.stable, round_assignment(result.stable))
        },
        "speed_ratio_target": SPEED_RATIO_TARGET.get(size),
    }
    pair_scores = None
    if size <= args.obvious_up_to:
        figures["obvious_way"], _, pair_scores = obvious_way(
            cohort, policy, result, engine_seconds, args.solver_budget, args.seed
        )
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
    all_edges = size <= args.flow_all_edges_up_to and pair_scores is not None
    flow = min_cost_flow(cohort, policy, "all" if all_edges else "top", pair_scores, args.flow_top)
    del pair_scores
    maximum = maximum_possible(cohort, policy)
    engine = engine_side(result, engine_seconds)
    figures["side_by_side"] = {
        "engine": engine,
        "min_cost_flow": flow,
        "maximum_possible": maximum,
        "engine_match_rate": engine["matched"] / len(cohort.mentees),
        "min_cost_flow_match_rate": flow.get("matched", 0) / len(cohort.mentees),
        "maximum_match_rate": (maximum["matched"] or 0) / len(cohort.mentees),
        "engine_at_least_min_cost_flow": engine["matched"] >= flow.get("matched", 0),
        "engine_is_maximum": engine["matched"] == maximum["matched"],
    }
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
    ("blocking pairs (stable round: 0)", lambda q: f"{q['blocking_pairs']:,}"),
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
    print(f"peak memory of the round (tracemalloc: Python objects and numpy arrays, separate run): {peak:.1f} MiB")
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
    print_side_by_side(figures)
    print_obvious_way(figures)


def print_side_by_side(figures: dict) -> None:
    side, mentees = figures["side_by_side"], figures["mentees"]
    engine, flow, maximum = side["engine"], side["min_cost_flow"], side["maximum_possible"]
    if "matched" not in flow:
        print(f"min-cost flow: not solved ({flow.get('status')})")
        return
    edges = "every eligible pair" if flow["edges"] == "all" else f"named choices + top {flow['top']} by score"
    target = "met" if side["engine_at_least_min_cost_flow"] else "MISSED"
    print(f"engine vs min-cost flow ({edges}, {flow['edge_count']:,} edges) on the same cohort:")
    print(f"  {'':<30} {'engine':>22} {'min-cost flow':>22} {'maximum possible':>22}")
    row = "  {:<30} {:>22} {:>22} {:>22}"
    print(
        row.format(
            "matched",
            f"{engine['matched']:,} ({percent(engine['matched'], mentees)})",
            f"{flow['matched']:,} ({percent(flow['matched'], mentees)})",
            f"{maximum['matched']:,} ({percent(maximum['matched'], mentees)})",
        )
    )
    print(row.format("total score", f"{engine['total_score']:,.1f}", f"{flow['total_score']:,.1f}", "-"))
    print(row.format("pairs on a named choice", f"{engine['named_pairs']:,}", f"{flow['named_pairs']:,}", "-"))
    s = flow["seconds"]
    print(row.format("seconds", f"{engine['seconds']:.2f}", f"{s['total']:.2f}", f"{maximum['seconds']:.2f}"))
    print(
        f"  min-cost flow seconds: choosing edges {s['choosing_edges']:.2f}, scoring them {s['scoring_edges']:.2f}, "
        f"building {s['building']:.2f}, solving {s['solving']:.2f}"
    )
    print(
        f"  [target: engine matches at least the min-cost flow: {target}; the engine is the maximum possible: "
        f"{'yes' if side['engine_is_maximum'] else 'NO'}]"
    )


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


def print_peak(peak: dict) -> None:
    print(f"\n== peak memory at {peak['mentees']:,} mentees ({peak['mentors']:,} mentors), in a fresh process")
    print(
        f"cohort drawn in {peak['cohort_drawing_seconds']:.1f} s; round {peak['round_seconds']:.2f} s, "
        f"{peak['matched']:,} matched"
    )
    print(
        f"peak memory of the round (tracemalloc, a second run): {peak['peak_traced_bytes'] / MEBIBYTE:,.0f} MiB; "
        f"process resident set (VmRSS) {peak['rss_bytes_before_round'] / MEBIBYTE:,.0f} MiB with the cohort drawn, "
        f"peak during the round (VmHWM) {peak['peak_rss_bytes_during_round'] / MEBIBYTE:,.0f} MiB "
        f"(+{peak['round_rss_growth_bytes'] / MEBIBYTE:,.0f} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10_000, 100_000], help="mentees per cohort")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of the round per size; the fastest counts")
    parser.add_argument(
        "--obvious-up-to", type=int, default=10_000, help="largest size at which to run the obvious way"
    )
    parser.add_argument(
        "--solver-budget", type=float, default=300, help="seconds before the package's solver is stopped (0: none)"
    )
    parser.add_argument(
        "--flow-all-edges-up-to",
        type=int,
        default=1000,
        help="largest size at which the min-cost flow gets every eligible pair (above: named choices and the top)",
    )
    parser.add_argument("--flow-top", type=int, default=60, help="best-scoring eligible mentors per mentee as edges")
    parser.add_argument(
        "--peak-at", type=int, nargs="*", default=[1_000_000], help="sizes whose peak memory is measured (none: skip)"
    )
    parser.add_argument("--peak-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_child:
        print(json.dumps(peak_child(args.peak_child, args.seed)))
        return
    print(
        f"matching benchmark, seed {args.seed}, Python {sys.version.split()[0]}, numpy {np.__version__}, "
        f"OR-Tools {ortools_version}"
    )
    targets = [f"round of {n:,} mentees under {t:.0f} s" for n, t in ROUND_TARGET_SECONDS.items()]
    targets += [f"obvious way at least {r:.0f}x slower at {n:,}" for n, r in SPEED_RATIO_TARGET.items()]
    targets += ["match rate no lower than a min-cost flow on the same cohort"]
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
    peaks = []
    for size in args.peak_at or ():
        peak = peak_at(size, args.seed)
        print_peak(peak)
        peaks.append(peak)
    report = {"benchmark": "matching", "seed": args.seed, "sizes": results, "peak": peaks}
    print(json.dumps(report, separators=(",", ":")))


if __name__ == "__main__":
    main()
