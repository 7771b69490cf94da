# Readings taken while the link is down wait in the node's RAM ring and go
# out oldest first after reconnect; an overflowing ring drops the oldest.
# With a flash store, readings wait there, and in the ring when it fails.

from flaky_flash import FlakyFlash
from node.fixed import format_fixed
from node.store import FlashStore
from node_harness import (
    drain_all,
    finish,
    make_node,
    reading_topic,
    room_filter,
    run_until,
    sim,
    subscriber,
    temperature_text,
)
from support import fresh_dir, poll_until, remove_dir

NEEDS_NETWORK = True  # a broker or sockets: not on the 32-bit runtime

# lib/ with the node takes ~69 KB of heap on the 64-bit Unix port (pointers
# twice a board's size): the node runs here under the Pico W's free RAM.
SMALL_HEAP = "pico_w"


# ---- offline: the ring --------------------------------------------------------


def test_offline_readings_wait_in_ring_and_go_out_oldest_first():
    # Both channels QoS 1, and an in-flight table smaller than the backlog,
    # so draining takes several rounds of PUBACKs.
    sensors = [sim("sim_temperature", 1, 1), sim("sim_humidity", 2, 1)]
    node, logs = make_node("o", sensors=sensors, INFLIGHT=4)
    sub, inbox = subscriber("o", room_filter(node))
    topics = [reading_topic(node, "temperature"), reading_topic(node, "humidity")]
    try:
        assert not node.client.connected  # never connected: no poll yet
        for i in range(12):
            node.publish_reading(i % 2, 2100 + i)
        assert node.ring.count == 12
        assert node.published == 0
        ring = node.ring
        assert [ring.value[(ring.oldest() + k) % ring.capacity] for k in range(12)] == [2100 + i for i in range(12)]
        node.drain_ring()  # still down: nothing moves
        assert node.ring.count == 12
        node.client.connect()
        assert drain_all(node, [sub]), (node.ring.count, node.client.session.inflight_count())
        assert node.published == 12
        assert poll_until(sub, lambda: len([m for m in inbox.messages if m[0] in topics]) == 12)
        got = [(m[0], m[1]) for m in inbox.messages if m[0] in topics]
        want = []
        for i in range(12):
            value = 2100 + i
            if i % 2 == 0:
                want.append((topics[0], temperature_text(value)))
            else:
                buf = bytearray(8)
                want.append((topics[1], bytes(buf[: format_fixed(buf, 0, value, 1)])))
        assert got == want, got
    finally:
        finish(node, [sub])


def test_readings_after_abort_are_buffered_then_sent_in_order():
    sensors = [sim("sim_temperature", 1, 1)]
    node, logs = make_node("x", sensors=sensors)
    sub, inbox = subscriber("x", room_filter(node))
    topic = reading_topic(node, "temperature")
    try:
        assert run_until(node, [sub], lambda: inbox.payloads(topic) and not node.client.session.inflight_count())
        first = inbox.payloads(topic)
        node.client.abort(OSError("test: link cut"))
        assert not node.client.connected
        for i in range(5):
            node.publish_reading(0, 1500 + i)
        assert node.ring.count == 5
        # The broker saw the socket die without DISCONNECT: the will goes out.
        assert poll_until(sub, lambda: b"offline" in inbox.payloads(node.status_topic)), inbox.messages
        node.client.connect()
        assert drain_all(node, [sub])
        want = first + [temperature_text(1500 + i) for i in range(5)]
        assert poll_until(sub, lambda: len(inbox.payloads(topic)) == len(want))
        assert inbox.payloads(topic) == want
        status = inbox.payloads(node.status_topic)
        assert status[-2:] == [b"offline", b"online"], status
    finally:
        finish(node, [sub])


def test_ring_overflow_drops_oldest_and_counts():
    sensors = [sim("sim_temperature", 1, 1)]
    node, logs = make_node("v", sensors=sensors, BUFFER=5)
    sub, inbox = subscriber("v", room_filter(node))
    topic = reading_topic(node, "temperature")
    try:
        for i in range(12):
            node.publish_reading(0, 1000 + i)
        assert node.ring.count == 5
        assert node.ring.dropped == 7
        node.client.connect()
        assert drain_all(node, [sub])
        assert poll_until(sub, lambda: len(inbox.payloads(topic)) == 5)
        assert inbox.payloads(topic) == [temperature_text(1000 + i) for i in range(7, 12)]
        assert node.ring.dropped == 7
    finally:
        finish(node, [sub])


# ---- offline: the flash store failing for a while ------------------------------


def test_readings_go_out_once_in_order_when_the_store_fails_for_a_while():
    # Offline, the store's writes fail for readings 4 to 6 (a full
    # filesystem, say) and then work again. 4 is in the store's RAM batch,
    # whose write is retried; 5 cannot be kept there and waits in the RAM
    # ring, and the readings after it follow it there, so that none goes
    # out ahead of it: the node sends the store's readings first.
    path = fresh_dir("node-store-f")
    sensors = [sim("sim_temperature", 1, 1)]
    node, logs = make_node("f", sensors=sensors, STORE={"path": path, "capacity": 64, "flush_every": 1})
    sub, inbox = subscriber("f", room_filter(node))
    topic = reading_topic(node, "temperature")
    flash = FlakyFlash(node.store)
    try:
        for i in range(1, 10):
            flash.failing = 4 <= i <= 6
            node.publish_reading(0, 1000 + i)
        held = (node.store.count, node.ring.count)
        assert flash.refused >= 2 and node.store_errors >= 2 and logs.having("store:")
        node.client.connect()
        assert drain_all(node, [sub]), (node.store.count, node.ring.count)
        assert node.store.count == 0
        node.publish_reading(0, 2000)  # once it is in, everything before it is
        assert poll_until([node.client, sub], lambda: temperature_text(2000) in inbox.payloads(topic))
        want = [temperature_text(1000 + i) for i in range(1, 10)] + [temperature_text(2000)]
        assert inbox.payloads(topic) == want, inbox.payloads(topic)
        assert held[0] + held[1] == 9, held  # each reading held once, in the store or the ring
    finally:
        flash.failing = False
        finish(node, [sub])
        node.store.close()
        remove_dir(path)


def test_readings_waiting_in_the_store_keep_their_topics_when_the_sensor_list_changes():
    # A node with temperature and humidity stored readings offline; the
    # board file then lists humidity first: the next node sends each waiting
    # reading on its own topic. (Sensors added and taken away: test_store_layout.)
    # What the node publishes is recorded at its client: no subscriber, so
    # that the test keeps its margin under a Pico W's heap.
    path = fresh_dir("node-store-layout")
    earlier = FlashStore(path, capacity=64, flush_every=1, channels=2, names=["temperature", "humidity"])
    earlier.append(0, 2101)
    earlier.append(1, 5502)
    earlier.append(0, 2103)
    earlier.close()
    earlier = None
    sensors = [sim("sim_humidity", 2, 1), sim("sim_temperature", 1, 1)]
    node, logs = make_node("lay", sensors=sensors, STORE={"path": path, "capacity": 64, "flush_every": 1})
    sent = []
    publish = node.client.publish

    def recording(topic, payload, qos=0, retain=False, payload_len=-1):
        if not isinstance(topic, str):  # a reading's (bytes); status and the like are str
            sent.append((topic.decode(), bytes(payload[: len(payload) if payload_len < 0 else payload_len])))
        return publish(topic, payload, qos, retain, payload_len)

    node.client.publish = recording
    try:
        assert node.store.count == 3, logs.lines
        node.client.connect()
        assert drain_all(node, []) and node.store.count == 0
        temperature, humidity = reading_topic(node, "temperature"), reading_topic(node, "humidity")
        readings = [m for m in sent if m[0] in (temperature, humidity)]
        assert readings == [
            (temperature, temperature_text(2101)),
            (humidity, format_text(5502, node.channels[0].decimals)),
            (temperature, temperature_text(2103)),
        ], sent
    finally:
        node.client.publish = publish
        finish(node, [])
        node.store.close()
        remove_dir(path)


def format_text(value, decimals):
    buf = bytearray(24)
    return bytes(buf[: format_fixed(buf, 0, value, decimals)])
