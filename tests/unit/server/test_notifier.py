"""The notifier wakes the long-polls a change concerns, and only those."""

from __future__ import annotations

import asyncio
import time

from farpoint.server.notify import Notifier


def test_a_change_for_named_devices_wakes_only_their_polls_and_a_general_one_wakes_all() -> None:
    async def scenario() -> dict[str, float]:
        n = Notifier()
        n.bind(asyncio.get_running_loop())
        began = time.monotonic()
        woke: dict[str, float] = {}

        async def poll(name: str, device: str | None, timeout: float) -> None:
            await n.wait(timeout, device)
            woke[name] = time.monotonic() - began

        tasks = [
            asyncio.create_task(poll("a", "dev-a", 5)),
            asyncio.create_task(poll("b", "dev-b", 5)),
            asyncio.create_task(poll("any", None, 5)),
        ]
        await asyncio.sleep(0.05)
        assert n.waiting == 3
        n.changed(["dev-a"])  # from the loop's own thread here; call_soon_threadsafe all the same
        await asyncio.sleep(0.1)
        assert set(woke) == {"a", "any"}, woke
        assert n.waiting == 1
        n.changed()
        await asyncio.gather(*tasks)
        assert n.waiting == 0
        return woke

    woke = asyncio.run(scenario())
    assert woke["a"] < 1 and woke["any"] < 1 and woke["b"] < 1, woke


def test_a_wait_with_nothing_changing_ends_at_its_timeout() -> None:
    async def scenario() -> float:
        n = Notifier()
        began = time.monotonic()
        await n.wait(0.2, "dev-a")
        assert n.waiting == 0
        return time.monotonic() - began

    took = asyncio.run(scenario())
    assert 0.18 <= took < 2


def test_held_polls_re_read_within_a_budget_of_re_reads_a_second() -> None:
    from farpoint.server.devices.router import recheck_interval

    assert recheck_interval(0) == recheck_interval(100) == 2.0  # a few: every 2 s
    assert recheck_interval(1000) == 20.0  # a thousand: 50 re-reads a second in all
    assert 1000 / recheck_interval(1000) <= 50 and 5000 / recheck_interval(5000) <= 50
