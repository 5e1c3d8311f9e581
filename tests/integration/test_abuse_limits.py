"""Routes whose only credential is an emailed link's token are bounded per caller: a person answering
never meets the bound, someone trying tokens or flooding does (429 with Retry-After, as problem+json)."""

import httpx
import pytest

from .conftest import Scheme
from .test_page_links import problem

pytestmark = pytest.mark.integration

BURST = 20  # aimms_shared.ratelimit.emailed_link_limit


async def _tries(client: httpx.AsyncClient, method: str, path: str) -> list[httpx.Response]:
    return [await client.request(method, path, headers={"Authorization": ""}) for _ in range(BURST + 1)]


async def test_trying_answer_and_opt_out_links_is_refused_for_a_while_after_a_burst(scheme: Scheme) -> None:
    api = await _tries(scheme.matching, "GET", "/answer-links/not-a-token")
    page = await _tries(scheme.platform.notifications, "GET", "/opt-out/not-a-token")

    for answers in (api, page):
        assert [a.status_code for a in answers[:BURST]] == [404] * BURST
        assert answers[BURST].status_code == 429 and int(answers[BURST].headers["Retry-After"]) >= 1
    assert problem(api[BURST], 429)["type"] == "/problems/rate-limited"
    # The opt-out link opens a page in her browser: refused with a page, in words.
    assert page[BURST].headers["content-type"].startswith("text/html") and "Too many requests" in page[BURST].text
