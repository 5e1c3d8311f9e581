"""Benchmark: mentoring circles for a national cohort, with how well they keep the scheme's rules.

A synthetic cohort is drawn from a fixed seed (not timed): peers at six career stages, 22 institutions
of uneven size (the pilot's spread), 2-4 of 165 research interests each (some far more common than
others), a fifth in one of five groups (opaque tokens, as registration would send), and one
facilitator for every six peers. `form_circles` is timed end to end.

Per size it prints the wall time and the quality figures: circles and their sizes, the share of
circles whose institutions are mixed (none holds more than half), members alone of their group (the
rule says none), the share of members who share an interest with someone in their circle, the mean
span of career stages in a circle, and the share of circles with a facilitator. Target: 10,000 peers
in under 5 s. The last line is one JSON object with every figure.

    .venv/bin/python bench/circles.py --sizes 1000 10000
"""

import argparse
import json
import random
import time

from aimms_matching.domain.circles import Facilitator, Peer, form_circles

INTERESTS = [f"interest-{i:03d}" for i in range(165)]
INSTITUTIONS = [f"university-{i:02d}" for i in range(22)]
GROUPS = [f"group-token-{i}" for i in range(5)]


def cohort(size: int, seed: int = 2023) -> tuple[list[Peer], list[Facilitator]]:
    rng = random.Random(seed)
    interest_weights = [1 / (rank + 1) for rank in range(len(INTERESTS))]  # Zipf-like popularity
    school_weights = [1 / (rank + 1) ** 0.7 for rank in range(len(INSTITUTIONS))]

    def interests(k: int) -> frozenset[str]:
        return frozenset(rng.choices(INTERESTS, interest_weights, k=k))

    peers = [
        Peer(
            participant_id=f"peer-{i}",
            institution_id=rng.choices(INSTITUTIONS, school_weights)[0],
            stage=rng.randrange(6),
            interests=interests(rng.randint(2, 4)),
            group=rng.choice(GROUPS) if rng.random() < 0.2 else None,
        )
        for i in range(size)
    ]
    facilitators = [
        Facilitator(f"facilitator-{i}", rng.choices(INSTITUTIONS, school_weights)[0], interests(rng.randint(2, 4)))
        for i in range(size // 6)
    ]
    return peers, facilitators


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    figures = []
    for size in args.sizes:
        peers, facilitators = cohort(size)
        started = time.perf_counter()
        result = form_circles(peers, facilitators)
        seconds = time.perf_counter() - started
        q = result.quality
        print(
            f"{size:>7} peers, {len(facilitators)} facilitators: {seconds:.2f} s; {q['circles']} circles of "
            f"{q['size_min']}-{q['size_max']}; institutions mixed {q['institutions_mixed_rate']:.1%}; "
            f"alone of their group {q['members_alone_of_their_group']}; sharing an interest "
            f"{q['sharing_an_interest_rate']:.1%}; mean stage span {q['mean_stage_span']}; "
            f"facilitated {q['facilitated_rate']:.1%}"
        )
        figures.append({"peers": size, "facilitators": len(facilitators), "seconds": round(seconds, 3)} | q)
    print(json.dumps({"benchmark": "circles", "target_seconds_at_10000": 5, "runs": figures}))


if __name__ == "__main__":
    main()
