# Battery boards: one wake cycle connects, reads every sensor, publishes,
# waits for the acknowledgements, and only then goes to deep sleep.
from node_harness import make_node, reading_topic, room_filter, sim, subscriber
from support import poll_until

NEEDS_NETWORK = True  # a broker or sockets: not on the 32-bit runtime

SLEEP_S = 600


class DeepSleep:
    def __init__(self, node):
        self.node = node
        self.calls = []

    def __call__(self, ms):
        # What is still unacknowledged at the moment the board would sleep.
        self.calls.append((ms, self.node.client.session.inflight_count()))


def test_wake_cycle_publishes_every_reading_acknowledged_then_sleeps():
    sensors = [sim("sim_temperature", 21, 1), sim("sim_humidity", 22, 1), sim("sim_pressure", 23, 2)]
    node, logs = make_node("sleep", sensors, DEEP_SLEEP_S=SLEEP_S)
    sub, inbox = subscriber("sleep", room_filter(node))
    sleep = DeepSleep(node)
    node.cycle_and_sleep(sleep, ack_timeout_ms=5000, connect_timeout_ms=5000)
    assert sleep.calls == [(SLEEP_S * 1000, 0)], (sleep.calls, logs.lines)
    assert not node.client.connected  # a clean DISCONNECT before sleeping
    readings = [reading_topic(node, name) for name in ("temperature", "humidity", "pressure")]
    assert poll_until(sub, lambda: all(any(m[0] == t for m in inbox.messages) for t in readings))
    for topic in readings:
        assert len([m for m in inbox.messages if m[0] == topic]) == 1, inbox.messages
    sub.disconnect()


def test_wake_cycle_without_broker_still_sleeps_and_says_so():
    sensors = [sim("sim_temperature", 31, 1)]
    node, logs = make_node("nobroker", sensors, DEEP_SLEEP_S=60, BROKER={"host": "127.0.0.1", "port": 1})
    sleep = DeepSleep(node)
    node.cycle_and_sleep(sleep, ack_timeout_ms=300, connect_timeout_ms=500)
    # The battery is not drained waiting for a broker that is not there.
    assert [ms for ms, _ in sleep.calls] == [60000]
    # The reading was taken and buffered, not thrown away. (Deep sleep clears
    # RAM: a battery board that must keep it sets a STORE, flushed before sleep.)
    assert node.ring.count == 1, (node.ring.count, logs.lines)
