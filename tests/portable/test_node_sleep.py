# Battery boards: one wake cycle connects, reads every sensor, publishes,
# waits for the acknowledgements, and only then goes to deep sleep.
from node.sleep import board_deepsleep
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


class FakeMachine:
    """What board_deepsleep may call, in order."""

    def __init__(self):
        self.calls = []

    def lightsleep(self, ms):
        self.calls.append(("lightsleep", ms))

    def deepsleep(self, ms):
        self.calls.append(("deepsleep", ms))

    def reset(self):
        self.calls.append(("reset",))


def test_a_pico_sleeps_in_steps_its_watchdog_and_lightsleep_allow_then_resets():
    # Five hours on a Pico W with its 8 s watchdog: a lightsleep of 71.6 min
    # or more is refused there, and the watchdog counts on while it sleeps.
    machine = FakeMachine()
    fed = []
    sleep_ms = 5 * 3600 * 1000
    deepsleep = board_deepsleep(machine, lambda: fed.append(len(machine.calls)), 8000, platform="rp2")
    deepsleep(sleep_ms)
    assert machine.calls[-1] == ("reset",), machine.calls[-3:]
    steps = [call[1] for call in machine.calls[:-1]]
    assert all(call[0] == "lightsleep" for call in machine.calls[:-1]), machine.calls[:3]
    assert sum(steps) == sleep_ms
    assert max(steps) <= 4000, max(steps)
    # Fed before every step: no step starts on a watchdog fed a step ago.
    assert fed == list(range(len(steps))), (fed[:5], len(steps))


def test_a_pico_without_a_watchdog_sleeps_in_steps_under_its_lightsleep_limit():
    machine = FakeMachine()
    sleep_ms = 536870 * 1000  # DEEP_SLEEP_S's longest: 6.2 days
    board_deepsleep(machine, None, 0, platform="rp2")(sleep_ms)
    steps = [call[1] for call in machine.calls[:-1]]
    assert machine.calls[-1] == ("reset",)
    assert sum(steps) == sleep_ms
    assert max(steps) < (1 << 32) // 1000, max(steps)


def test_other_boards_deepsleep_as_machine_does():
    machine = FakeMachine()
    deepsleep = board_deepsleep(machine, None, 30000, platform="esp32")
    deepsleep(600000)
    assert machine.calls == [("deepsleep", 600000)]


def test_wake_cycle_feeds_the_watchdog_while_it_waits():
    # No broker: the wake waits out its connect deadline polling; a board's
    # watchdog (8 s on a Pico) must be fed through it, not only by the main loop.
    sensors = [sim("sim_temperature", 32, 1)]
    node, logs = make_node("feedsleep", sensors, DEEP_SLEEP_S=60, BROKER={"host": "127.0.0.1", "port": 1})
    sleep = DeepSleep(node)
    feeds = []
    node.cycle_and_sleep(sleep, ack_timeout_ms=300, connect_timeout_ms=500, feed=lambda: feeds.append(len(sleep.calls)))
    assert [ms for ms, _ in sleep.calls] == [60000], logs.lines
    # Fed through the connect wait (polls of at most 100 ms) and the readings, all before the sleep.
    assert len(feeds) >= 4 and set(feeds) == {0}, feeds


def test_a_wake_sends_a_backlog_larger_than_its_in_flight_window():
    # Readings kept from wakes without a broker (a STORE keeps them across
    # the sleep on a board): ten of them, two in flight at a time. One
    # window a wake would leave eight behind, the wake's own reading after them.
    node, logs = make_node("backlog", [sim("sim_temperature", 33, 1)], DEEP_SLEEP_S=60, INFLIGHT=2)
    sub, inbox = subscriber("backlog", room_filter(node))
    temperature = reading_topic(node, "temperature")
    for k in range(10):
        node.ring.push(0, 1000 + k, 0)
    sleep = DeepSleep(node)
    node.cycle_and_sleep(sleep, ack_timeout_ms=5000, connect_timeout_ms=5000)
    assert sleep.calls == [(60000, 0)], (sleep.calls, logs.lines)
    assert node.ring.count == 0
    assert poll_until(sub, lambda: len(inbox.payloads(temperature)) == 11), inbox.payloads(temperature)
    stored = [b"%d.%02d" % (10, k) for k in range(10)]
    assert inbox.payloads(temperature)[:10] == stored, inbox.payloads(temperature)
    sub.disconnect()
