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
