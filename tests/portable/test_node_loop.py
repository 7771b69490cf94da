# The Node in-process against the harness's mosquitto, on CPython, on the
# Unix port and under a board-sized heap: readings on house/<room>/<sensor>,
# availability, commands, the allocation-free publish path, and readings
# buffered in the ring while the link is down. Each test has its own room
# and node name on the shared broker, and clears what it leaves retained.
import gc

from compat import ticks_add, ticks_diff, ticks_ms
from mqtt.client import MQTTClient
from node import config
from node.fixed import format_fixed
from node.node import Node
from sensors import make as make_sensor
from support import allocated_by, broker_address, heap_locked, poll_until, unique_id

# lib/ with the node takes ~79 KB of heap on the 64-bit Unix port (pointers
# twice a board's size): the node runs here under the Pico W's free RAM.
SMALL_HEAP = "pico_w"


class FakeBoard:
    def __init__(self, settings):
        for key in settings:
            setattr(self, key, settings[key])


def sim(driver, seed, qos, period_s=60):
    return {"driver": driver, "qos": qos, "period_s": period_s, "params": {"seed": seed}}


SENSORS = [
    sim("sim_temperature", 11, 1),
    sim("sim_humidity", 12, 0),
    sim("sim_illuminance", 13, 1),
]


class Logs:
    def __init__(self):
        self.lines = []

    def __call__(self, line):
        self.lines.append(line)

    def having(self, text):
        return [line for line in self.lines if text in line]


def make_node(tag, sensors=SENSORS, reset=None, **settings):
    host, port = broker_address()
    board = {
        "ROOM": unique_id("room" + tag),
        "NODE": unique_id("node" + tag),
        "BROKER": {"host": host, "port": port, "keepalive_s": 30, "clean_session": True},
        "SENSORS": sensors,
        "DISCOVERY": False,  # retained configs would outlive the test on the shared broker
        "DIAGNOSTICS_S": 0,
        # Small buffers: the node, a subscriber and lib/ share a 100K heap.
        "INFLIGHT": 4,
        "MAX_PACKET": 256,
        "BUFFER": 32,
    }
    for key in settings:
        board[key] = settings[key]
    logs = Logs()
    node = Node(config.load(FakeBoard(board)), "test board", log=logs, reset=reset)
    return node, logs


class Inbox:
    def __init__(self, client):
        self.messages = []
        self.granted = []
        client.on_message = self.on_message
        client.on_subscribe = self.on_subscribe

    def on_message(self, client, userdata, message):
        self.messages.append((message.topic, message.payload, message.qos, message.retain))

    def on_subscribe(self, client, userdata, packet_id, granted):
        self.granted.append(granted)

    def payloads(self, topic):
        return [m[1] for m in self.messages if m[0] == topic]


def subscriber(tag, topic):
    # Small, so that it and the node fit a board-sized heap together.
    host, port = broker_address()
    client = MQTTClient(unique_id("sub" + tag), host, port, inflight_max=2, max_packet=128, tx_size=128, rx_size=256)
    inbox = Inbox(client)
    client.connect()
    client.subscribe(topic, 1)
    assert poll_until(client, lambda: inbox.granted), "no SUBACK"
    assert inbox.granted == [(1,)]
    return client, inbox


def room_filter(node):
    return "%s/%s/#" % (node.config["PREFIX"], node.config["ROOM"])


def reading_topic(node, name):
    return "%s/%s/%s" % (node.config["PREFIX"], node.config["ROOM"], name)


def run_until(node, clients, condition, timeout_ms=5000):
    """Runs the node's loop (and polls the other clients) until condition()."""
    deadline = ticks_add(ticks_ms(), timeout_ms)
    while not condition():
        if ticks_diff(deadline, ticks_ms()) <= 0:
            return False
        node.step()
        node.client.poll(5)
        for client in clients:
            client.poll(5)
    return True


def expected_payloads(driver, seed, count):
    sensor = make_sensor(driver, None, seed=seed)
    values = [0]
    buf = bytearray(24)
    out = []
    for _ in range(count):
        sensor.start()
        sensor.read(values)
        n = format_fixed(buf, 0, values[0], sensor.DECIMALS[0])
        out.append(bytes(buf[:n]))
    return out


def finish(node, clients):
    """Clean up: clear the retained status, disconnect everything."""
    try:
        if clients and clients[0].connected:
            clients[0].publish(node.status_topic, b"", 1, True)
            clients[0].wait_for_acks(2000)
    finally:
        node.client.disconnect()
        for client in clients:
            client.disconnect()


def send_command(commander, node, key, value):
    commander.publish(node.command_prefix + key, value, 1)


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


# ---- commands --------------------------------------------------------------


def test_interval_command_changes_the_period():
    node, logs = make_node("i", sensors=SENSORS[:2])
    sub, inbox = subscriber("i", room_filter(node))
    temperature = reading_topic(node, "temperature")
    try:
        assert run_until(node, [sub], lambda: inbox.payloads(temperature))
        assert node.period_ms == [60000, 60000]
        send_command(sub, node, "interval", b"5")
        assert run_until(node, [sub], lambda: logs.having("interval now")), logs.lines
        assert logs.having("command: interval now 5 s")
        assert node.period_ms == [5000, 5000]
        # The new period starts now: a reading at once.
        assert run_until(node, [sub], lambda: len(inbox.payloads(temperature)) == 2)
        assert inbox.payloads(temperature) == expected_payloads("sim_temperature", 11, 2)
    finally:
        finish(node, [sub])


def test_bad_interval_is_logged_and_ignored():
    node, logs = make_node("b", sensors=SENSORS[:1])
    sub, inbox = subscriber("b", room_filter(node))
    temperature = reading_topic(node, "temperature")
    try:
        assert run_until(node, [sub], lambda: inbox.payloads(temperature))
        for value, reason in ((b"abc", "whole seconds"), (b"0", "1 to 86400"), (b"86401", "1 to 86400"), (b"", "")):
            before = len(logs.having("command rejected"))
            send_command(sub, node, "interval", value)
            assert run_until(node, [sub], lambda before=before: len(logs.having("command rejected")) > before), (
                logs.lines
            )
            line = logs.having("command rejected")[-1]
            assert "interval" in line and reason in line, line
            assert node.period_ms == [60000], node.period_ms
        assert node.client.connected
        assert len(inbox.payloads(temperature)) == 1  # no reading was forced by a rejected command
    finally:
        finish(node, [sub])


def test_unknown_command_rejected_with_a_log_line():
    node, logs = make_node("u", sensors=SENSORS[:1])
    sub, inbox = subscriber("u", room_filter(node))
    temperature = reading_topic(node, "temperature")
    try:
        assert run_until(node, [sub], lambda: inbox.payloads(temperature))
        send_command(sub, node, "fly", b"1")
        assert run_until(node, [sub], lambda: logs.having("command rejected")), logs.lines
        line = logs.having("command rejected")[-1]
        assert "unknown command 'fly'" in line, line
        send_command(sub, node, "reboot", b"1")  # no reset function given: refused, not a crash
        assert run_until(node, [sub], lambda: logs.having("reboot is not available")), logs.lines
        # Still running and publishing.
        send_command(sub, node, "publish-now", b"")
        assert run_until(node, [sub], lambda: len(inbox.payloads(temperature)) == 2), logs.lines
        assert node.client.connected
    finally:
        finish(node, [sub])


class Rebooted(Exception):
    pass


def _reset():
    raise Rebooted()  # machine.reset() does not return


def test_retained_reboot_command_does_not_reboot_at_every_connect():
    # A `set/reboot` published with retain (by mistake, or by a dashboard
    # button with retain on) is delivered again at every subscribe: obeying
    # it would reboot the board in a loop that only clearing the broker ends.
    node, logs = make_node("t", sensors=SENSORS[:1], reset=_reset)
    host, port = broker_address()
    commander = MQTTClient(unique_id("cmd"), host, port, inflight_max=2, max_packet=128, tx_size=128, rx_size=256)
    commander.connect()
    rebooted = False
    try:
        commander.publish(node.command_prefix + "reboot", b"1", 1, True)
        assert commander.wait_for_acks(2000)
        try:
            assert run_until(node, [], lambda: node.client.connected and node.published == 1)
            run_until(node, [], lambda: False, 500)
        except Rebooted:
            rebooted = True
        assert not rebooted, "rebooted on a retained command: %r" % logs.lines
    finally:
        commander.publish(node.command_prefix + "reboot", b"", 1, True)  # clear both
        commander.publish(node.status_topic, b"", 1, True)
        commander.wait_for_acks(2000)
        commander.disconnect()
        node.client.disconnect()


def test_live_reboot_command_reboots():
    node, logs = make_node("l", sensors=SENSORS[:1], reset=_reset)
    sub, inbox = subscriber("l", room_filter(node))
    try:
        assert run_until(node, [sub], lambda: node.client.connected and node.published == 1)
        send_command(sub, node, "reboot", b"")
        try:
            run_until(node, [sub], lambda: False, 3000)
        except Rebooted:
            assert logs.having("command: reboot")
            assert not node.client.connected  # a clean DISCONNECT first: no last will
            return
        raise AssertionError("no reboot: %r" % logs.lines)
    finally:
        finish(node, [sub])


def test_publish_now_command_triggers_readings():
    node, logs = make_node("p", sensors=SENSORS[:2])
    sub, inbox = subscriber("p", room_filter(node))
    temperature = reading_topic(node, "temperature")
    humidity = reading_topic(node, "humidity")
    try:
        assert run_until(node, [sub], lambda: inbox.payloads(temperature) and inbox.payloads(humidity))
        run_until(node, [sub], lambda: False, 300)  # the period is 60 s: nothing more comes
        assert len(inbox.payloads(temperature)) == 1 and len(inbox.payloads(humidity)) == 1
        send_command(sub, node, "publish-now", b"")
        assert run_until(
            node, [sub], lambda: len(inbox.payloads(temperature)) == 2 and len(inbox.payloads(humidity)) == 2
        )
        assert inbox.payloads(temperature) == expected_payloads("sim_temperature", 11, 2)
        assert inbox.payloads(humidity) == expected_payloads("sim_humidity", 12, 2)
        assert node.period_ms == [60000, 60000]  # the period itself is unchanged
    finally:
        finish(node, [sub])


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


def test_reboot_command_is_acknowledged_before_the_reboot():
    # QoS 1 on a persistent session: rebooting before the PUBACK is sent would
    # have the broker deliver the command again after the restart, and the
    # board would reboot in a loop.
    room, name = unique_id("roomb"), unique_id("nodeb")
    host, port = broker_address()
    persistent = {"host": host, "port": port, "keepalive_s": 30, "clean_session": False}
    node, logs = make_node("b", sensors=SENSORS[:1], reset=_reset, ROOM=room, NODE=name, BROKER=persistent)
    sub, inbox = subscriber("b", room_filter(node))
    again = None
    try:
        assert run_until(node, [sub], lambda: node.client.connected and node.published == 1)
        send_command(sub, node, "reboot", b"")
        try:
            run_until(node, [sub], lambda: False, 3000)
            raise AssertionError("no reboot: %r" % logs.lines)
        except Rebooted:
            pass
        # After the reset: the same node, the same session (and the old one's heap back).
        node = None
        gc.collect()
        again, logs_again = make_node("b", sensors=SENSORS[:1], reset=_reset, ROOM=room, NODE=name, BROKER=persistent)
        try:
            assert run_until(again, [sub], lambda: again.client.connected and again.published == 1)
            run_until(again, [sub], lambda: False, 500)
        except Rebooted:
            raise AssertionError("the reboot command came back after the reboot: %r" % logs_again.lines)
        assert not logs_again.having("command: reboot"), logs_again.lines
    finally:
        last = again or node
        if last is not None:
            finish(last, [sub])
        else:
            sub.disconnect()
        # Leave no session behind on the shared broker.
        forget = MQTTClient(name, host, port, clean_session=True, max_packet=128, tx_size=128, rx_size=256)
        forget.connect()
        forget.disconnect()


# ---- offline: the ring --------------------------------------------------------


def temperature_text(value):
    buf = bytearray(24)
    n = format_fixed(buf, 0, value, 2)
    return bytes(buf[:n])


def _drain_all(node, clients, timeout_ms=5000):
    def drained():
        node.drain_ring()
        return node.ring.count == 0 and not node.client.session.inflight_count()

    deadline = ticks_add(ticks_ms(), timeout_ms)
    while not drained():
        if ticks_diff(deadline, ticks_ms()) <= 0:
            return False
        node.client.poll(5)
        for client in clients:
            client.poll(5)
    return True


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
        assert _drain_all(node, [sub]), (node.ring.count, node.client.session.inflight_count())
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
        assert _drain_all(node, [sub])
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
        assert _drain_all(node, [sub])
        assert poll_until(sub, lambda: len(inbox.payloads(topic)) == 5)
        assert inbox.payloads(topic) == [temperature_text(1000 + i) for i in range(7, 12)]
        assert node.ring.dropped == 7
    finally:
        finish(node, [sub])
