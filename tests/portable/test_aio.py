# The asyncio wrapper: other tasks keep running while the client works.
import asyncio

from mqtt.aio import AsyncClient
from mqtt.client import MQTTClient
from support import broker_address, unique_id

NEEDS_NETWORK = True  # a broker or sockets: not on the 32-bit runtime


async def _scenario(results):
    host, port = broker_address()
    topic = "house/test/%s" % unique_id("aio")
    sub = AsyncClient(MQTTClient(unique_id("aio-sub"), host, port))
    pub = AsyncClient(MQTTClient(unique_id("aio-pub"), host, port, inflight_max=2))
    got = []
    sub.client.on_message = lambda c, u, m: got.append(m.payload)
    ticks = []

    async def other_task():
        for i in range(1000):
            ticks.append(i)
            await asyncio.sleep(0.005)

    runners = [asyncio.create_task(sub.run()), asyncio.create_task(pub.run()), asyncio.create_task(other_task())]
    assert await sub.wait_connected(5000)
    assert await pub.wait_connected(5000)
    sub.client.subscribe(topic, 1)
    await sub._until(lambda: False, 300)
    for i in range(10):  # more than the in-flight table holds: publish waits for room
        await pub.publish(topic, str(i).encode(), 1)
    assert await pub.wait_for_acks(5000)
    assert await sub._until(lambda: len(got) >= 10, 5000)
    for task in runners:
        task.cancel()
    results.append((got, len(ticks)))


def test_async_publish_and_receive_while_other_tasks_run():
    results = []
    asyncio.run(_scenario(results))
    got, ticks = results[0]
    assert got == [str(i).encode() for i in range(10)]
    assert ticks > 5  # the other task ran meanwhile
