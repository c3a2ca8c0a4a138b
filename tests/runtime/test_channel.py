"""Bounded channels: every when_full policy keeps its bound and counts what it drops."""

import asyncio

import pytest

from edgesnn.runtime.channel import Channel, Closed


def run(coro):
    return asyncio.run(coro)


def test_drop_newest_keeps_oldest_and_counts():
    async def go():
        ch = Channel(3, "drop_newest")
        for i in range(10):
            await ch.put(i)
        assert ch.depth == 3 and ch.dropped == 7 and ch.received == 10
        ch.close()
        return [await ch.get() for _ in range(3)]

    assert run(go()) == [0, 1, 2]


def test_drop_oldest_keeps_newest_and_counts():
    async def go():
        ch = Channel(3, "drop_oldest")
        for i in range(10):
            await ch.put(i)
        assert ch.dropped == 7 and ch.high_water == 3
        ch.close()
        out = []
        while True:
            try:
                out.append(await ch.get())
            except Closed:
                return out

    assert run(go()) == [7, 8, 9]


def test_block_applies_backpressure_without_loss():
    async def go():
        ch = Channel(2, "block")
        got = []

        async def producer():
            for i in range(50):
                await ch.put(i)
                assert ch.depth <= 2
            ch.close()

        async def consumer():
            while True:
                try:
                    got.append(await ch.get())
                except Closed:
                    return
                await asyncio.sleep(0)

        await asyncio.gather(producer(), consumer())
        assert ch.dropped == 0
        return got

    assert run(go()) == list(range(50))


def test_closes_after_all_producers():
    async def go():
        ch = Channel(4, producers=2)
        await ch.put("a")
        ch.close()
        assert await ch.get() == "a"
        ch.close()
        with pytest.raises(Closed):
            await ch.get()

    run(go())


def test_unknown_policy_rejected():
    with pytest.raises(ValueError):
        Channel(1, "drop_random")


def _batches(n, nbytes=1000):
    import numpy as np

    from edgesnn.events import DVS_EVENT, EventBatch

    per = nbytes // DVS_EVENT.itemsize
    return [EventBatch("cam", i, i, i + 1, np.zeros(per, DVS_EVENT), "dvs", 0, {})
            for i in range(n)]


def test_max_bytes_bounds_payload_with_each_policy():
    from edgesnn.runtime.channel import item_nbytes

    items = _batches(10)
    size = item_nbytes(items[0])
    assert size >= 1000 - 16

    async def go(policy):
        ch = Channel(100, policy, max_bytes=3 * size)  # 3 batches by bytes, 100 by count
        for b in items:
            await ch.put(b)
        c = ch.counters()
        assert c["queue_bytes"] <= 3 * size and c["high_water_bytes"] <= 3 * size
        assert ch.depth == 3 and ch.dropped == 7
        ch.close()
        return [(await ch.get()).seq for _ in range(3)], ch.bytes

    assert run(go("drop_newest")) == ([0, 1, 2], 0)
    assert run(go("drop_oldest")) == ([7, 8, 9], 0)


def test_max_bytes_block_waits_and_oversized_item_passes_alone():
    items = _batches(4, 4000)

    async def go():
        ch = Channel(100, "block", max_bytes=5000)  # one 4 kB batch at a time
        got = []

        async def consume():
            while True:
                try:
                    got.append(await ch.get())
                except Closed:
                    return
                assert ch.depth <= 1

        task = asyncio.ensure_future(consume())
        for b in items:
            await ch.put(b)
            assert ch.depth == 1 and ch.bytes <= 5000
        ch.close()
        await task
        big = Channel(10, "drop_newest", max_bytes=10)
        assert await big.put(items[0])  # larger than max_bytes, but the channel was empty
        assert not await big.put(items[1]) and big.dropped == 1
        return [b.seq for b in got], ch.dropped

    assert run(go()) == ([0, 1, 2, 3], 0)


def test_default_max_bytes_keeps_item_bound_for_small_batches():
    async def go():
        ch = Channel(3, "drop_newest")
        for b in _batches(10):
            await ch.put(b)
        return ch.depth, ch.dropped, ch.counters()["max_bytes"]

    assert run(go()) == (3, 7, 64 << 20)


def test_idle_is_set_only_while_the_consumer_waits_on_an_empty_channel():
    """`idle` tells a live driver the consumer is done with what it was given."""

    async def go():
        ch = Channel(4)
        seen = []
        assert not ch.idle.is_set()  # no consumer yet
        got = asyncio.create_task(ch.get())
        await asyncio.sleep(0)
        seen.append(ch.idle.is_set())  # waiting on empty
        await ch.put(1)
        seen.append(ch.idle.is_set())  # an item is on its way to it
        assert await got == 1
        seen.append(ch.idle.is_set())  # busy with it
        await ch.put(2)
        assert await ch.get() == 2  # taken without waiting: still not idle
        seen.append(ch.idle.is_set())
        got = asyncio.create_task(ch.get())
        await asyncio.sleep(0)
        seen.append(ch.idle.is_set())
        ch.close()
        with pytest.raises(Closed):
            await got
        return seen

    assert run(go()) == [True, False, False, False, True]
