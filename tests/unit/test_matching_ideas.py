"""Ideas for change without I/O: kept without ids, shown to leads only once enough pairs contributed."""

from dataclasses import replace

import pytest

from aimms_matching.domain import ideas
from aimms_shared.errors import RuleBroken, StateConflict

from .test_matching_concerns import herself, started
from .test_matching_use_cases import RULES


async def test_an_idea_is_kept_without_the_pair_or_anyone_and_leads_see_it_once_three_pairs_gave_some() -> None:
    store, matchmaker, pair_id = await started()
    with pytest.raises(RuleBroken):  # a programme that does not collect them
        await matchmaker.record_idea(herself("e"), pair_id, None, "Publish the criteria for promotion")
    await store.save_programme(replace(RULES, ideas_for_change=True))

    await matchmaker.record_idea(herself("e"), pair_id, None, "Publish the criteria for promotion")
    await matchmaker.record_idea(herself("r"), pair_id, None, "Mentor training for every professor")

    [first, _] = store.ideas_recorded
    assert pair_id not in repr(first) and first.pair_token != "e" and len(first.month) == 7
    early = ideas.report(await store.ideas("aimms"))
    assert early == {"pairs": 1, "withheld": True, "ideas": []}
    others = [replace(first, pair_token=f"other-{n}", text=f"Idea {n}") for n in range(2)]
    assert ideas.report([*store.ideas_recorded, *others])["pairs"] == 3
    assert len(ideas.report([*store.ideas_recorded, *others])["ideas"]) == 4


async def test_an_idea_comes_from_a_partnership_going_on() -> None:
    store, matchmaker, pair_id = await started()
    await store.save_programme(replace(RULES, ideas_for_change=True))
    await matchmaker.close_concern(
        (await matchmaker.raise_concern(herself("e"), pair_id, None, "please end", "end")).concern_id, "ended", None
    )
    with pytest.raises(StateConflict):
        await matchmaker.record_idea(herself("e"), pair_id, None, "An idea after the end")
