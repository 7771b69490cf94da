# (Not named mqtt_async.py: the script would import itself instead of the client.)
# mqtt_async (PyPI micropython-mqtt 0.7b4, Thorsten von Eicken's asyncio
# client derived from Peter Hinch's mqtt_as), used as its README shows:
# `await client.publish(topic, msg, qos=...)`, which for QoS 1 returns once
# the PUBACK is in (sync=True, the default): one message at a time. With
# sync=False it returns once sent and waits for that PUBACK at the next
# publish: its window, 2 in flight.
#
# Two things the Unix port lacks are supplied here, neither on the
# measured path: `network` and `machine` (bench/fakes, imported before the
# heap baseline since a board has them built in), and the address form:
# mqtt_async hands getaddrinfo()'s sockaddr to asyncio.open_connection as
# (host, port), which is what a board's getaddrinfo returns and the Unix
# port's (a packed sockaddr) is not, so _dns_lookup is given that tuple.
#
# Each measured run enters the event loop once (asyncio.run); that cost is
# the same for the larger and the smaller run, so it cancels out.
import common
import machine  # noqa: F401  (bench/fakes; built in on a board)
import network  # noqa: F401

cfg = common.config()
TOPIC = common.TOPIC


def load():
    import mqtt_async

    return mqtt_async


def connect(mqtt_async):
    class Client(mqtt_async.MQTTClient):
        def _dns_lookup(self):
            self._addr = (self._c.server, self._c.port)

    config = mqtt_async.config
    config.server = common.HOST
    config.port = cfg["port"]
    config.client_id = cfg["client_id"]
    client = Client(config)
    mqtt_async.asyncio.run(client.connect())
    return client


# The first pass only imports: a connected client's background tasks would
# keep the first asyncio's state alive into the counted pass. What it loads
# when connecting (asyncio's modules) is frozen: its names are in the
# firmware's qstr pool, so nothing is missed.
mqtt_async, client, heap = common.import_and_connect(load, connect)
asyncio = mqtt_async.asyncio


async def _qos0(n, payload):
    i = 0
    while i < n:
        await client.publish(TOPIC, payload, qos=0)
        i += 1
    return n


async def _qos1(n, payload):
    started = common.ticks_ms()
    i = 0
    while i < n and common.in_time(started):
        await client.publish(TOPIC, payload, qos=1)
        i += 1
    return i


async def _qos1_window(n, payload):
    # sync=False: returns once sent; its PUBACK is awaited at the next
    # publish. The last one waits for its own.
    i = 0
    while i < n - 1:
        await client.publish(TOPIC, payload, qos=1, sync=False)
        i += 1
    await client.publish(TOPIC, payload, qos=1)
    return n


def publish_qos0(n, payload):
    return asyncio.run(_qos0(n, payload))


def publish_qos1(n, payload):
    return asyncio.run(_qos1(n, payload))


def publish_qos1_window(n, payload):
    return asyncio.run(_qos1_window(n, payload))


if cfg["mode"] == "main":
    result = common.main_mode(cfg, dict(heap), publish_qos0, publish_qos1, publish_qos1_window)
else:
    result = common.qos0_mode(cfg, publish_qos0)
asyncio.run(client.disconnect())
common.emit(result)
