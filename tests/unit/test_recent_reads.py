"""Recent reads of reference data: reused for a while, forgotten on a local change, never keeps a miss."""

from aimms_shared.cache import RecentReads


class Store:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.loads = 0

    async def load(self, key: str) -> str | None:
        self.loads += 1
        return self.values.get(key)


async def test_a_value_is_reused_until_its_time_runs_out() -> None:
    now = [0.0]
    reads, store = RecentReads[str](2.0, clock=lambda: now[0]), Store()
    store.values["p"] = "AIMMS Mentoring"

    assert await reads.get("p", lambda: store.load("p")) == "AIMMS Mentoring"
    store.values["p"] = "renamed by another replica"
    now[0] = 1.9
    assert await reads.get("p", lambda: store.load("p")) == "AIMMS Mentoring"
    now[0] = 2.1
    assert await reads.get("p", lambda: store.load("p")) == "renamed by another replica"
    assert store.loads == 2


async def test_a_local_change_is_read_afresh_at_once() -> None:
    reads, store = RecentReads[str](60.0), Store()
    store.values["i"] = "active"
    await reads.get("i", lambda: store.load("i"))

    store.values["i"] = "suspended"
    reads.forget("i")
    assert await reads.get("i", lambda: store.load("i")) == "suspended"


async def test_what_was_not_found_is_looked_up_again() -> None:
    reads, store = RecentReads[str](60.0), Store()
    assert await reads.get("new", lambda: store.load("new")) is None

    store.values["new"] = "onboarded meanwhile"
    assert await reads.get("new", lambda: store.load("new")) == "onboarded meanwhile"
