# An asyncio face on MQTTClient, for applications that run other tasks
# beside MQTT (MicroPython and CPython both have asyncio). The client stays
# the non-blocking core: run() polls it without waiting on the socket, then
# sleeps until its next deadline or idle_ms, whichever is first, so other
# tasks run and incoming packets wait at most idle_ms.

import asyncio

from compat import ticks_add, ticks_diff, ticks_ms


async def _sleep_ms(ms):
    await asyncio.sleep(ms / 1000)


class AsyncClient:
    def __init__(self, client, idle_ms=20):
        self.client = client
        self.idle_ms = idle_ms

    async def run(self):
        """Poll forever: reads, acks, pings, resends, reconnects."""
        client = self.client
        client.start_reconnecting()
        while True:
            await self._step()

    async def _step(self):
        wait = self.client.poll(0)
        await _sleep_ms(wait if 0 <= wait < self.idle_ms else self.idle_ms)

    async def wait_connected(self, timeout_ms):
        """True once connected (run() must be running, or call connect())."""
        return await self._until(lambda: self.client.connected, timeout_ms)

    async def publish(self, topic, payload, qos=0, retain=False, timeout_ms=10000):
        """Publish; when the in-flight table is full, waits (letting other
        tasks run) up to timeout_ms for room, then raises InflightFull."""
        from mqtt.errors import InflightFull

        client = self.client
        if qos and client.session.inflight_free() == 0:
            if not await self._until(lambda: client.session.inflight_free() > 0, timeout_ms):
                raise InflightFull("in-flight table full for %d ms" % timeout_ms)
        return client.publish(topic, payload, qos, retain)

    async def wait_for_acks(self, timeout_ms):
        return await self._until(lambda: not self.client.session.inflight_count(), timeout_ms)

    async def _until(self, condition, timeout_ms):
        if not 0 < timeout_ms < 1 << 29:  # a board's ticks_add refuses longer
            raise ValueError("timeout_ms must be 1 to %d ms, got %r" % ((1 << 29) - 1, timeout_ms))
        deadline = ticks_add(ticks_ms(), timeout_ms)
        while not condition():
            if ticks_diff(deadline, ticks_ms()) <= 0:
                return False
            await self._step()
        return True
