# The bench's 32-bit figures, on the WebAssembly port of MicroPython (31-bit
# small ints as on a board: a value >= 2**30 is a long int that allocates).
# It has no sockets: clients talk to the in-memory broker of
# tests/portable/memory_broker.py, ours through its transport seam, the
# others through bench/fakes/board32/socket.py. Every library is loaded
# from .mpy (mpy-cross), as a board loads it. Started by
# tools/bench/board32.py as
#
#   board32.py '{"probe": "import" | "ours" | "umqtt" | "chumicro" | "store", ...}'
#
# and prints one JSON line. The heap grows on demand on this port, so its
# size is no limit, but gc.mem_alloc() deltas are exact.
import sys

import common

cfg = common.config()
TOPIC = common.TOPIC
ACK_TIMEOUT_MS = 1000
PAYLOAD_ROOM = 64  # topic, packet id and header on top of the largest payload


def import_heap(names):
    """Heap kept by importing names, cold (first import: the qstr pool grows
    too) and warm (imported again after forgetting them: code and objects
    only). Modules already loaded (the prelude) are not counted."""
    before = list(sys.modules)
    base = common.heap_now()
    for name in names:
        __import__(name)
    cold = common.heap_now() - base
    for name in [name for name in sys.modules if name not in before]:
        del sys.modules[name]
    base = common.heap_now()
    for name in names:
        __import__(name)
    warm = common.heap_now() - base
    return {"cold": cold, "warm": warm, "modules": [name for name in sys.modules if name not in before]}


def per_publish(result, publish_qos0, publish_qos1):
    """Bytes per publish, QoS 0 and QoS 1 with its PUBACK read, per payload size."""
    for size in cfg["payloads"]:
        payload = common.PAYLOADS[size]
        result["alloc_qos0_%d" % size] = common.allocation(publish_qos0, cfg["count"], payload, 0)
        result["alloc_qos1_%d" % size] = common.allocation(publish_qos1, cfg["count"], payload, 0)
    return result


def connected_delta(connect):
    base = common.heap_now()
    client = connect()
    return client, common.heap_now() - base


# ---- this project ----------------------------------------------------------


def probe_ours():
    from memory_broker import MemoryBroker
    from mqtt.client import MQTTClient

    broker = MemoryBroker()
    result = {}

    def defaults():
        client = MQTTClient("kitchen-node", "broker.invalid", keepalive=60, transport=broker.transport)
        client.connect()
        return client

    def as_the_node():
        # As lib/node/node.py builds it with the default board settings
        # (see bench/clients/ours.py).
        client = MQTTClient(
            "unix-node",
            "broker.invalid",
            keepalive=30,
            clean_session=False,
            inflight_max=16,
            max_packet=512,
            tx_size=512,
            connect_timeout_ms=10000,
            io_timeout_ms=10000,
            transport=broker.transport,
        )
        client.will_set("house/kitchen/unix-node/status", b"offline", 1, True)
        client.connect()
        return client

    client, result["connect"] = connected_delta(defaults)
    client.disconnect()
    client = None
    client, result["connect_node"] = connected_delta(as_the_node)
    client.disconnect()
    size = max(cfg["payloads"]) + PAYLOAD_ROOM
    client = MQTTClient(
        "kitchen-node", "broker.invalid", keepalive=60, max_packet=size, tx_size=size, transport=broker.transport
    )
    client.connect()

    def publish_qos0(n, payload):
        i = 0
        while i < n:
            client.publish(TOPIC, payload, 0)
            i += 1
        return n

    def publish_qos1(n, payload):
        i = 0
        while i < n:
            client.publish(TOPIC, payload, 1)
            if not client.wait_for_acks(ACK_TIMEOUT_MS):
                raise OSError("no PUBACK from the memory broker")
            i += 1
        return n

    return per_publish(result, publish_qos0, publish_qos1)


# ---- peers, through the fake socket ----------------------------------------


def probe_umqtt():
    import socket  # bench/fakes/board32

    socket.prepare()
    from umqtt.simple import MQTTClient

    def connect():
        client = MQTTClient("kitchen-node", "broker.invalid", 1883, keepalive=60)
        client.connect()
        return client

    client, connect_bytes = connected_delta(connect)

    def publish_qos0(n, payload):
        i = 0
        while i < n:
            client.publish(TOPIC, payload)
            i += 1
        return n

    def publish_qos1(n, payload):
        i = 0
        while i < n:
            client.publish(TOPIC, payload, False, 1)
            i += 1
        return n

    return per_publish({"connect": connect_bytes}, publish_qos0, publish_qos1)


def probe_chumicro():
    import socket  # bench/fakes/board32

    socket.prepare()
    from chumicro_mqtt.client import MQTTClient, ProtocolState

    acked = [0]

    def on_publish(topic, payload):
        acked[0] += 1

    sock = socket.adapted()
    sock.connect(("broker.invalid", 1883))

    def connect():
        # Given a connected socket (its `socket=` argument): no connector,
        # since there is no network to open one on.
        client = MQTTClient(sock, client_id="kitchen-node", keep_alive_seconds=60)
        client.on_publish = on_publish
        client.connect()
        ticks = 0
        while client.state != ProtocolState.CONNECTED:
            ticks += 1
            if ticks > 1000:
                raise OSError("chumicro: not connected (%s, %r)" % (client.state, client.last_error))
            client.handle(common.ticks_ms())
        return client

    client, connect_bytes = connected_delta(connect)

    def tick_until_sent():
        while client.io_interest(common.ticks_ms()) & 2:  # _IO_WRITE
            client.handle(common.ticks_ms())

    def publish_qos0(n, payload):
        i = 0
        while i < n:
            client.publish(TOPIC, payload, qos=0)
            client.handle(common.ticks_ms())
            i += 1
        tick_until_sent()
        return n

    def publish_qos1(n, payload):
        i = 0
        while i < n:
            target = acked[0] + 1
            client.publish(TOPIC, payload, qos=1)
            ticks = 0
            while acked[0] < target:
                ticks += 1
                if ticks > 1000:
                    raise OSError("chumicro: no PUBACK (%s, %r)" % (client.state, client.last_error))
                client.handle(common.ticks_ms())
            i += 1
        return n

    return per_publish({"connect": connect_bytes}, publish_qos0, publish_qos1)


# ---- the node's flash store ------------------------------------------------


def probe_store():
    """Bytes per reading of node.store.FlashStore on this port's in-memory
    filesystem: append (flushes included), then replay (oldest, sent,
    acked, as the node sends what it stored)."""
    import os

    from node.store import FlashStore

    path = "/tmp/bench-store"
    store = FlashStore(path, capacity=2048, channels=4)
    count = cfg["count"]
    taken = 90000000  # seconds since 2024: late 2026, as a node with a set clock stamps readings

    def append(n, payload):
        i = 0
        while i < n:
            store.append(i & 3, 2150 + (i & 63), taken + i)
            i += 1
        store.flush()
        return n

    def replay(n, payload):
        i = 0
        packet_id = 1
        while i < n:
            seq = store.oldest()
            if seq < 0:
                raise OSError("store: only %d of %d readings to replay" % (i, n))
            store.sent(seq, packet_id)
            store.acked(packet_id)
            packet_id = packet_id + 1 if packet_id < 65535 else 1
            i += 1
        return n

    result = {}
    # Append what the replay then takes back: warm-up, the smaller run and the larger.
    result["append"] = common.allocation(append, count, None, 0)
    result["replay"] = common.allocation(replay, count, None, 0)
    result["held_after"] = store.count
    store.close()
    for name in os.listdir(path):
        os.remove(path + "/" + name)
    return result


PROBES = {"ours": probe_ours, "umqtt": probe_umqtt, "chumicro": probe_chumicro, "store": probe_store}

for name in cfg.get("prelude", ()):
    __import__(name)  # a board's built-in modules (fakes here): before any baseline
if cfg["probe"] == "import":
    common.emit(import_heap(cfg["modules"]))
else:
    common.emit(PROBES[cfg["probe"]]())
