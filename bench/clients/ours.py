# This project's client (lib/mqtt): prebuilt bytes topic and payloads,
# TCP_NODELAY (it sets it itself), or Nagle with cfg["nodelay"] False (the
# client's nodelay=False).
#   mode "main": heap after import + connect with the defaults (warm qstr
#       pool, see common.import_and_connect) and with the node's settings;
#       then heap and CPU per publish, QoS 0 (one write per publish, and
#       batched), QoS 1 one at a time and with up to 2 and 16 in flight.
#   mode "qos0": cfg["count"] QoS 0 publishes for the arrival rate,
#       autoflush cfg["autoflush"] (False: packets share the transmit buffer
#       and go out in one write when it is full, and at flush()).
import common

cfg = common.config()
NODELAY = cfg.get("nodelay", True)
PAYLOAD_ROOM = 64  # topic, packet id and header on top of the largest payload
ACK_TIMEOUT_MS = 30000


def load():
    from mqtt.client import MQTTClient

    return MQTTClient


def connect_defaults(MQTTClient):
    client = MQTTClient(cfg["client_id"], common.HOST, cfg["port"], keepalive=60, nodelay=NODELAY)
    client.connect()
    return client


def connect_as_the_node(MQTTClient):
    # As lib/node/node.py builds it with the default board settings
    # (node.config): keepalive 30 s, a persistent session, INFLIGHT 16,
    # MAX_PACKET 512 for both the slots and the transmit buffer, 10 s
    # deadlines, the last will; no resolver (a board with Wi-Fi also has a
    # dns.Resolver, part of the node, not of the client).
    client = MQTTClient(
        cfg["client_id"] + "-node",
        common.HOST,
        cfg["port"],
        keepalive=30,
        clean_session=False,
        inflight_max=16,
        max_packet=512,
        tx_size=512,
        connect_timeout_ms=10000,
        io_timeout_ms=10000,
        nodelay=NODELAY,
    )
    client.will_set("house/kitchen/unix-node/status", b"offline", 1, True)
    client.connect()
    return client


MQTTClient, client, heap = common.import_and_connect(load, connect_defaults, lambda c: c.disconnect())
TOPIC = common.TOPIC


def publish_qos0(n, payload):
    i = 0
    while i < n:
        client.publish(TOPIC, payload, 0)
        i += 1
    client.flush()
    return n


def publish_qos1(n, payload):
    started = common.ticks_ms()
    i = 0
    while i < n and common.in_time(started):
        client.publish(TOPIC, payload, 1)
        if not client.wait_for_acks(ACK_TIMEOUT_MS):
            raise OSError("no PUBACK after %d ms" % ACK_TIMEOUT_MS)
        i += 1
    return i


def publish_qos1_window(n, payload):
    # Publish, and handle whatever PUBACKs are in without waiting, keeping
    # at most common.window[0] unacknowledged; then wait for the rest.
    session = client.session
    limit = common.window[0]
    i = 0
    while i < n:
        while session.inflight_count() >= limit:
            client.poll(ACK_TIMEOUT_MS)
        client.publish(TOPIC, payload, 1)
        client.poll(0)
        i += 1
    if not client.wait_for_acks(ACK_TIMEOUT_MS):
        raise OSError("PUBACKs missing after %d ms" % ACK_TIMEOUT_MS)
    return n


def publish_qos0_batched(n, payload):
    client.autoflush = False
    publish_qos0(n, payload)
    client.autoflush = True
    return n


def main_mode():
    global client
    result = dict(heap)
    client.disconnect()
    client = None
    # The node's settings against the defaults, each connected with every
    # module already loaded (the first connect loaded the socket transport).
    base = common.heap_now()
    client = connect_defaults(MQTTClient)
    defaults = common.heap_now() - base
    client.disconnect()
    client = None
    base = common.heap_now()
    client = connect_as_the_node(MQTTClient)
    result["heap_connect_node"] = heap["heap_connect"] - defaults + common.heap_now() - base
    client.disconnect()
    # The runs: room for the largest payload (2 KB needs more than the
    # node's MAX_PACKET of 512).
    size = max(cfg["payloads"]) + PAYLOAD_ROOM
    client = MQTTClient(
        cfg["client_id"] + "-runs",
        common.HOST,
        cfg["port"],
        keepalive=60,
        max_packet=size,
        tx_size=size,
        nodelay=NODELAY,
    )
    client.connect()
    common.main_mode(cfg, result, publish_qos0, publish_qos1, publish_qos1_window)
    payload = common.PAYLOADS[cfg["payloads"][0]]
    result["alloc_qos0_batched"] = common.allocation(publish_qos0_batched, cfg["alloc_count"], payload, cfg["cap_ms"])
    result["qos0_batched"] = common.cpu_per_publish(publish_qos0_batched, cfg["qos0_count"], payload, cfg["cap_ms"])
    result["resent"] = client.session.resent
    return result


def qos0_mode():
    global client
    client.autoflush = cfg.get("autoflush", True)
    result = common.qos0_mode(cfg, publish_qos0)
    result["connected"] = client.connected
    return result


result = main_mode() if cfg["mode"] == "main" else qos0_mode()
client.disconnect()
common.emit(result)
