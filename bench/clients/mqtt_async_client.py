# (Not named mqtt_async.py: the script would import itself instead of the client.)
# mqtt_async (PyPI micropython-mqtt 0.7b4, Thorsten von Eicken's asyncio
# client derived from Peter Hinch's mqtt_as), used as its README shows:
# `await client.publish(topic, msg, qos=...)`, which for QoS 1 returns once
# the PUBACK is in (sync=True, the default): one message at a time.
#
# Two things the Unix port lacks are supplied here, neither on the
# measured path: `network` and `machine` (bench/fakes, imported before the
# heap baseline since a board has them built in), and the address form:
# mqtt_async hands getaddrinfo()'s sockaddr to asyncio.open_connection as
# (host, port), which is what a board's getaddrinfo returns and the Unix
# port's (a packed sockaddr) is not, so _dns_lookup is given that tuple.
import common
import machine  # noqa: F401  (bench/fakes; built in on a board)
import network  # noqa: F401

cfg = common.config()
before_modules = common.module_names()
heap_base = common.heap_now()

import mqtt_async  # noqa: E402

heap_import = common.heap_now() - heap_base
asyncio = mqtt_async.asyncio

TOPIC = common.TOPIC
PAYLOAD = common.PAYLOAD


class Client(mqtt_async.MQTTClient):
    def _dns_lookup(self):
        self._addr = (self._c.server, self._c.port)


async def publish_qos0(client, n):
    i = 0
    while i < n:
        await client.publish(TOPIC, PAYLOAD, qos=0)
        i += 1


async def publish_qos1(client, n):
    i = 0
    while i < n:
        await client.publish(TOPIC, PAYLOAD, qos=1)
        i += 1


async def allocation(fn, client, n):
    await fn(client, common.WARMUP)
    a = common.Allocation()
    a.start()
    await fn(client, n)
    return a.stop(n)


async def main_mode(client, heap_connect):
    n = cfg["alloc_count"]
    result = {"heap_import": heap_import, "heap_connect": heap_connect}
    result["harness_alloc"] = common.harness_overhead()
    result["alloc_qos0"] = await allocation(publish_qos0, client, n)
    result["alloc_qos1"] = await allocation(publish_qos1, client, n)
    samples = []
    started = common.ticks_ms()
    while len(samples) < cfg["latency_count"] and common.ticks_diff(common.ticks_ms(), started) < cfg["cap_ms"]:
        t0 = common.ticks_us()
        await client.publish(TOPIC, PAYLOAD, qos=1)
        samples.append(common.ticks_diff(common.ticks_us(), t0))
    result["latency_us"] = common.median(samples)
    result["latency_samples"] = len(samples)
    count = 0
    t0 = common.ticks_ms()
    while count < cfg["qos1_count"] and common.ticks_diff(common.ticks_ms(), t0) < cfg["cap_ms"]:
        await client.publish(TOPIC, PAYLOAD, qos=1)
        count += 1
    result["qos1_ms"] = common.ticks_diff(common.ticks_ms(), t0)
    result["qos1_count"] = count
    result["modules"] = common.new_modules(before_modules)
    return result


async def qos0_mode(client, heap_connect):
    count = cfg["count"]
    payload = common.RATE_PAYLOAD
    t_start = common.time_ns()
    t0 = common.ticks_ms()
    i = 0
    while i < count:
        await client.publish(TOPIC, payload, qos=0)
        i += 1
    return {
        "heap_connect": heap_connect,
        "t_start_ns": t_start,
        "publish_ms": common.ticks_diff(common.ticks_ms(), t0),
        "count": count,
    }


async def main():
    config = mqtt_async.config
    config.server = common.HOST
    config.port = cfg["port"]
    config.client_id = cfg["client_id"]
    client = Client(config)
    await client.connect()
    heap_connect = common.heap_now() - heap_base
    if cfg["mode"] == "main":
        result = await main_mode(client, heap_connect)
    else:
        result = await qos0_mode(client, heap_connect)
    await client.disconnect()
    return result


common.emit(asyncio.run(main()))
