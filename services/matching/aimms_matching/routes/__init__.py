"""Matching's HTTP API: the mentor directory, mentees' choices, rounds, proposals and partnerships."""

from aimms_matching.routes import (
    answer_links,
    by_hand,
    circles,
    directory,
    ideas,
    meetings,
    pairs,
    preferences,
    reports,
    rounds,
    safeguarding,
)

ROUTERS = [
    directory.router,
    preferences.router,
    rounds.router,
    reports.router,
    pairs.router,
    answer_links.router,
    by_hand.router,
    safeguarding.router,
    meetings.router,
    ideas.router,
    circles.router,
]
