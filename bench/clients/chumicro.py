# chumicro-mqtt 0.30.3 (PyPI, with chumicro-sockets and chumicro-timing),
# used as its docs show without its runner: publish() queues a packet and
# handle(now_ms) does one tick of I/O (one queued packet out per tick);
# the socket is polled between ticks. QoS 1 goes one message at a time:
# publish, then tick until on_publish reports the PUBACK.
import select

import common

cfg = common.config()
before_modules = common.module_names()
heap_base = common.heap_now()

from chumicro_mqtt.client import MQTTClient, ProtocolState  # noqa: E402
from chumicro_sockets.sockets_factory import fixed_connector_factory  # noqa: E402

heap_import = common.heap_now() - heap_base

_IO_READ = 1
_IO_WRITE = 2
TOPIC = common.TOPIC
PAYLOAD = common.PAYLOAD
TIMEOUT_MS = 30000

acked = [0]


def on_publish(topic, payload):
    acked[0] += 1


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
        raise OSError("chumicro: not connected after %d ms (%s, %r)" % (TIMEOUT_MS, client.state, client.last_error))
    client.handle(common.ticks_ms())
heap_connect = common.heap_now() - heap_base

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
        interest = client.io_interest(now)
        if not interest & _IO_WRITE:
            return
        if common.ticks_diff(now, started) > TIMEOUT_MS:
            raise OSError("chumicro: tx queue not drained: %r" % (client.last_error,))
        client.handle(now)
        wait_io(_IO_WRITE)


def publish_qos0(n, payload=PAYLOAD):
    i = 0
    while i < n:
        client.publish(TOPIC, payload, qos=0)
        client.handle(common.ticks_ms())
        i += 1
    drain()


def publish_qos1(n):
    i = 0
    while i < n:
        target = acked[0] + 1
        client.publish(TOPIC, PAYLOAD, qos=1)
        started = common.ticks_ms()
        while acked[0] < target:
            now = common.ticks_ms()
            if common.ticks_diff(now, started) > TIMEOUT_MS or client.state != ProtocolState.CONNECTED:
                raise OSError("chumicro: no PUBACK (state %s, %r)" % (client.state, client.last_error))
            client.handle(now)
            if acked[0] < target:
                wait_io(client.io_interest(now))
        i += 1


def main_mode():
    n = cfg["alloc_count"]
    result = {"heap_import": heap_import, "heap_connect": heap_connect}
    result["harness_alloc"] = common.harness_overhead()
    result["alloc_qos0"] = common.allocation(publish_qos0, n)
    result["alloc_qos1"] = common.allocation(publish_qos1, n)
    common.sequential_qos1(result, publish_qos1, cfg)
    result["modules"] = common.new_modules(before_modules)
    return result


def qos0_mode():
    count = cfg["count"]
    t_start = common.time_ns()
    t0 = common.ticks_ms()
    publish_qos0(count, common.RATE_PAYLOAD)
    return {
        "heap_connect": heap_connect,
        "t_start_ns": t_start,
        "publish_ms": common.ticks_diff(common.ticks_ms(), t0),
        "count": count,
    }


result = main_mode() if cfg["mode"] == "main" else qos0_mode()
client.disconnect()
common.emit(result)
