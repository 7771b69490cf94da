# The Node in-process against the harness's mosquitto, on CPython, on the
# Unix port and under a board-sized heap: readings on house/<room>/<sensor>,
# availability, and the allocation-free publish path.
from node_harness import (
    SENSORS,
    expected_payloads,
    finish,
    make_node,
    reading_topic,
    room_filter,
    run_until,
    sim,
    subscriber,
)
from support import allocated_by, heap_locked, poll_until

NEEDS_NETWORK = True  # a broker or sockets: not on the 32-bit runtime

# lib/ with the node takes ~69 KB of heap on the 64-bit Unix port (pointers
# twice a board's size): the node runs here under the Pico W's free RAM.
SMALL_HEAP = "pico_w"


# ---- readings and availability -------------------------------------------


def test_readings_published_on_room_sensor_topics_with_fixed_decimals():
    node, logs = make_node("r")
    sub, inbox = subscriber("r", room_filter(node))
    try:
        names = ("temperature", "humidity", "illuminance")
        topics = [reading_topic(node, name) for name in names]
        assert run_until(node, [sub], lambda: all(inbox.payloads(t) for t in topics)), inbox.messages
        assert node.client.connected
        assert logs.having("mqtt: connected to")
        for i in range(len(topics)):
            s, topic = SENSORS[i], topics[i]
            want = expected_payloads(s["driver"], s["params"]["seed"], 1)
            assert inbox.payloads(topic) == want, (topic, inbox.payloads(topic), want)
            qos = [m[2] for m in inbox.messages if m[0] == topic]
            assert qos == [s["qos"]], (topic, qos)
        temperature = inbox.payloads(topics[0])[0]
        assert len(temperature) - temperature.find(b".") == 3, temperature  # 2 decimals
        humidity = inbox.payloads(topics[1])[0]
        assert len(humidity) - humidity.find(b".") == 2, humidity  # 1 decimal
        assert b"." not in inbox.payloads(topics[2])[0]  # whole lux
        assert not [m for m in inbox.messages if m[0] in topics and m[3]], "readings must not be retained"
        assert node.published == 3
        assert node.ring.count == 0
    finally:
        finish(node, [sub])


def test_availability_online_is_retained():
    node, logs = make_node("a")
    sub = None
    try:
        assert run_until(node, [], lambda: node.client.connected and not node.client.session.inflight_count())
        sub, inbox = subscriber("a", node.status_topic)  # subscribes after: gets the retained copy
        assert poll_until(sub, lambda: inbox.messages)
        assert inbox.messages == [(node.status_topic, b"online", 1, True)], inbox.messages
    finally:
        finish(node, [sub] if sub else [])


# ---- the publish path allocates nothing ------------------------------------


def _publish_cycles(node, channel, count):
    client = node.client
    session = client.session
    for i in range(count):
        node.publish_reading(channel, 2000 + (i & 0x3FF))
        for _ in range(1000):  # QoS 1: poll until the PUBACK is in (QoS 0: nothing to wait for)
            if not session.inflight_count():
                break
            client.poll(20)


def test_1000_publish_cycles_allocate_nothing():
    sensors = [sim("sim_temperature", 1, 0), sim("sim_humidity", 2, 1)]
    node, logs = make_node("m", sensors=sensors)
    try:
        assert run_until(node, [], lambda: node.client.connected and node.published == 2)
        assert run_until(node, [], lambda: not node.client.session.inflight_count())
        for channel in (0, 1):  # QoS 0, then QoS 1 with its PUBACK
            _publish_cycles(node, channel, 20)  # warm-up
            published = node.published
            assert allocated_by(_publish_cycles, node, channel, 1000) == 0, "channel %d" % channel
            assert node.published == published + 1000
            assert node.ring.count == 0
            assert node.client.session.inflight_count() == 0
            heap_locked(_publish_cycles, node, channel, 100)
            assert node.published == published + 1100
        assert node.client.connected
    finally:
        finish(node, [])


def test_json_publish_cycles_with_time_allocate_nothing():
    sensors = [sim("sim_temperature", 1, 0), sim("sim_humidity", 2, 1)]
    node, logs = make_node("j", sensors=sensors, PAYLOAD="json")
    try:
        assert run_until(node, [], lambda: node.client.connected and node.published == 2)
        assert run_until(node, [], lambda: not node.client.session.inflight_count())
        for channel in (0, 1):
            _publish_cycles(node, channel, 20)  # warm-up
            assert allocated_by(_publish_cycles, node, channel, 300) == 0, "channel %d" % channel
            heap_locked(_publish_cycles, node, channel, 100)
        assert node.published == 2 + 2 * 420
        assert bytes(node.payload[:6]) == b'{"v":2'  # the JSON form, with the time
    finally:
        finish(node, [])


def test_diagnostics_report_goes_out_with_the_smallest_packet_size_a_board_may_set():
    import json

    from mqtt.client import MQTTClient
    from support import broker_address, unique_id

    node, logs = make_node("d", sensors=SENSORS[:1], MAX_PACKET=128, DIAGNOSTICS_S=1)
    host, port = broker_address()
    sub = MQTTClient(unique_id("subd"), host, port, inflight_max=2, max_packet=128, tx_size=128, rx_size=512)
    reports = []
    sub.on_message = lambda c, userdata, message: reports.append(message.payload)
    sub.connect()
    sub.subscribe(node.diagnostics_topic, 0)
    try:
        assert run_until(node, [sub], lambda: reports, 5000), logs.lines
        report = json.loads(reports[0])
        assert len(reports[0]) > 128  # larger than MAX_PACKET: the transmit buffer is sized for it
        assert report["uptime_s"] >= 0 and "commands_dropped" in report and "qos2_downgraded" in report
    finally:
        finish(node, [sub])
