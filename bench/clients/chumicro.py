# chumicro-mqtt 0.30.3 (PyPI, with chumicro-sockets and chumicro-timing),
# used as its docs show without its runner: publish() queues a packet and
# handle(now_ms) does one tick of I/O (one queued packet out per tick);
# the socket is polled between ticks, as its runner does. QoS 1 one at a
# time: publish, then tick until on_publish reports the PUBACK; with a
# window: publish while fewer than common.window[0] are unacknowledged.
import select

import common

cfg = common.config()
_IO_READ = 1
_IO_WRITE = 2
TIMEOUT_MS = 30000

acked = [0]


def on_publish(topic, payload):
    acked[0] += 1


def load():
    from chumicro_mqtt.client import MQTTBackpressureError, MQTTClient, ProtocolState
    from chumicro_sockets.sockets_factory import fixed_connector_factory

    return MQTTClient, ProtocolState, fixed_connector_factory, MQTTBackpressureError


def connect(classes):
    MQTTClient, ProtocolState, fixed_connector_factory, _ = classes
    client = MQTTClient(
        transport_factory=fixed_connector_factory(common.HOST, cfg["port"]),
        client_id=cfg["client_id"],
        keep_alive_seconds=60,
    )
    client.on_publish = on_publish
    client.connect()
    started = common.ticks_ms()
    while client.state != ProtocolState.CONNECTED:
        if common.ticks_diff(common.ticks_ms(), started) > TIMEOUT_MS:
            raise OSError(
                "chumicro: not connected after %d ms (%s, %r)" % (TIMEOUT_MS, client.state, client.last_error)
            )
        client.handle(common.ticks_ms())
    return client


classes, client, heap = common.import_and_connect(load, connect, lambda c: c.disconnect())
CONNECTED = classes[1].CONNECTED
Backpressure = classes[3]
TOPIC = common.TOPIC

poller = select.poll()
poller.register(client.io_socket.sock, select.POLLIN)  # the wrapped MicroPython socket


def wait_io(interest):
    # What its runner does between ticks: wait for the socket (1 ms at most).
    events = (select.POLLIN if interest & _IO_READ else 0) | (select.POLLOUT if interest & _IO_WRITE else 0)
    poller.modify(client.io_socket.sock, events)
    for _ in poller.ipoll(1):
        break


def drain():
    """Tick until every queued packet is written."""
    started = common.ticks_ms()
    while True:
        now = common.ticks_ms()
        if not client.io_interest(now) & _IO_WRITE:
            return
        if common.ticks_diff(now, started) > TIMEOUT_MS:
            raise OSError("chumicro: tx queue not drained: %r" % (client.last_error,))
        client.handle(now)
        wait_io(_IO_WRITE)


def wait_acked(target):
    started = common.ticks_ms()
    while acked[0] < target:
        now = common.ticks_ms()
        if common.ticks_diff(now, started) > TIMEOUT_MS or client.state != CONNECTED:
            raise OSError("chumicro: no PUBACK (state %s, %r)" % (client.state, client.last_error))
        client.handle(now)
        if acked[0] < target:
            wait_io(client.io_interest(now))


def publish_qos0(n, payload):
    i = 0
    while i < n:
        try:
            client.publish(TOPIC, payload, qos=0)
        except Backpressure:
            # Its transmit queue is full (a slow socket, large payloads):
            # as its docs say, tick to drain it and publish again.
            client.handle(common.ticks_ms())
            wait_io(_IO_WRITE)
            continue
        client.handle(common.ticks_ms())
        i += 1
    drain()
    return n


def publish_qos1(n, payload):
    started = common.ticks_ms()
    i = 0
    while i < n and common.in_time(started):
        client.publish(TOPIC, payload, qos=1)
        wait_acked(acked[0] + 1)
        i += 1
    return i


def publish_qos1_window(n, payload):
    first = acked[0]
    limit = common.window[0]
    i = 0
    while i < n:
        if i - (acked[0] - first) >= limit:
            wait_acked(first + i - limit + 1)
        client.publish(TOPIC, payload, qos=1)
        client.handle(common.ticks_ms())
        i += 1
    wait_acked(first + n)
    return n


if cfg["mode"] == "main":
    result = common.main_mode(cfg, dict(heap), publish_qos0, publish_qos1, publish_qos1_window)
else:
    result = common.qos0_mode(cfg, publish_qos0)
client.disconnect()
common.emit(result)
