# The client and the node against the harness's mosquitto with their ticks
# starting just short of the wrap (2**30 ms on CPython's shim and a board,
# 2**62 on the Unix port): pings, QoS 1 publishes, a reconnect and the
# node's readings carry on across it with no stall, no burst and nothing
# lost. And the node after gaps longer than ticks can measure (2**29 ms,
# 6.2 days on a board): a week of uptime, a week without Wi-Fi.
import json

from compat import ticks_add, ticks_diff, ticks_ms
from mqtt import client as client_module
from mqtt.client import MQTTClient
from node import node as node_module
from node import timestamp
from node_harness import expected_payloads, finish, make_node, reading_topic, room_filter, run_until, sim, subscriber
from support import broker_address, poll_until, run_near_wrap, unique_id, with_ticks

NEEDS_NETWORK = True  # a broker: not on the 32-bit runtime

DAY_MS = 86400 * 1000


def make_client(name, **kwargs):
    host, port = broker_address()
    return MQTTClient(unique_id(name), host, port, **kwargs)


def keep_polling(clients, ms):
    poll_until(clients, lambda: False, ms)


def past_the_wrap(module):
    """Whether the module's ticks_ms reads past the wrap (tick 0) now."""
    return ticks_diff(module.ticks_ms(), 0) > 0


def watcher(tag, topic, keepalive=60):
    """A small subscriber (it shares a board-sized heap with the node) that
    notes when each message arrived."""
    host, port = broker_address()
    client = MQTTClient(
        unique_id("sub" + tag),
        host,
        port,
        keepalive=keepalive,
        inflight_max=2,
        max_packet=128,
        tx_size=128,
        rx_size=512,  # a diagnostics report is ~300 B
    )
    arrivals = Arrivals(client)
    client.connect()
    client.subscribe(topic, 1)
    assert poll_until(client, lambda: arrivals.granted), "no SUBACK"
    return client, arrivals


class Arrivals:
    """A subscriber's messages with the (real) tick each arrived at."""

    def __init__(self, client):
        self.messages = []
        self.granted = []
        client.on_message = self.on_message
        client.on_subscribe = lambda c, u, packet_id, granted: self.granted.append(granted)

    def on_message(self, client, userdata, message):
        self.messages.append((message.topic, message.payload, ticks_ms()))

    def on(self, topic):
        return [m for m in self.messages if m[0] == topic]


# ---- the client --------------------------------------------------------------


def test_pings_keep_an_idle_link_alive_across_the_wrap():
    client = make_client("wping", keepalive=1)

    def idle_across_the_wrap():
        client.connect()
        assert not past_the_wrap(client_module)
        keep_polling(client, 3000)  # the wrap comes 1 s in
        assert past_the_wrap(client_module)

    try:
        run_near_wrap([client_module], 1000, idle_across_the_wrap)
        assert client.connected, client.last_error
        assert (client.connects, client.disconnects) == (1, 0), client.last_error
        assert client.session.pings >= 2, client.session.pings  # one a second, answered
    finally:
        client.disconnect()


def test_qos1_publishes_across_the_wrap_all_arrive_once_in_order():
    topic = "house/test/%s" % unique_id("wqos1")
    pub = make_client("wpub")
    sent = ["%d" % i for i in range(20)]

    def publish_across_the_wrap():
        sub, inbox = subscriber("wq", topic)
        try:
            pub.connect()
            for payload in sent:  # one every 100 ms, the wrap after the 10th
                pub.publish(topic, payload, 1)
                keep_polling([pub, sub], 100)
            assert poll_until([pub, sub], lambda: len(inbox.messages) >= 20 and not pub.session.inflight_count())
            keep_polling([pub, sub], 200)  # time for a duplicate to show up
            assert past_the_wrap(client_module)
            return inbox.payloads(topic)
        finally:
            sub.disconnect()

    try:
        got = run_near_wrap([client_module], 1000, publish_across_the_wrap)
        assert got == [p.encode() for p in sent], got
        assert (pub.connects, pub.disconnects, pub.session.resent) == (1, 0, 0), pub.last_error
    finally:
        pub.disconnect()


def test_reconnect_scheduled_just_before_the_wrap_happens_after_its_backoff():
    # The backoff picks 300 to 600 ms; the link drops 150 ms before the wrap.
    client = make_client("wback", reconnect_min_ms=600, reconnect_max_ms=600)

    def drop_and_reconnect():
        client.connect()
        client.abort(OSError("link cut by the test"))
        start = ticks_ms()
        scheduled = client.reconnect_in_ms()
        assert not past_the_wrap(client_module)
        assert poll_until(client, lambda: client.connected, 3000), client.last_error
        assert past_the_wrap(client_module)
        return scheduled, ticks_diff(ticks_ms(), start)

    try:
        scheduled, took = run_near_wrap([client_module], 150, drop_and_reconnect)
        assert 300 <= scheduled <= 600, scheduled
        assert scheduled - 5 <= took <= scheduled + 500, (scheduled, took)  # not at once, not late
        assert client.connects == 2
    finally:
        client.disconnect()


# ---- the node ----------------------------------------------------------------


def test_node_publishes_each_reading_once_a_period_across_the_wrap():
    # Readings every second, QoS 1 and QoS 0; the node starts 1.5 s before
    # the wrap, so the wrap falls between its second and third readings.
    sensors = [sim("sim_temperature", 31, 1, period_s=1), sim("sim_humidity", 32, 0, period_s=1)]
    topics = []

    def run_across_the_wrap():
        node, logs = make_node("wp", sensors=sensors)
        sub, arrivals = watcher("wp", room_filter(node))
        try:
            topics.append(reading_topic(node, "temperature"))
            topics.append(reading_topic(node, "humidity"))
            assert not past_the_wrap(node_module)
            assert run_until(node, [sub], lambda: len(arrivals.on(topics[0])) >= 5, 8000), arrivals.messages
            run_until(node, [sub], lambda: False, 300)  # a burst or a duplicate would show here
            assert past_the_wrap(node_module)
            return arrivals, node.published
        finally:
            finish(node, [sub])

    arrivals, published = run_near_wrap([node_module, client_module], 1500, run_across_the_wrap)
    for topic, s in ((topics[0], sensors[0]), (topics[1], sensors[1])):
        got = arrivals.on(topic)
        assert len(got) == 5, (topic, got)
        payloads = [m[1] for m in got]
        assert payloads == expected_payloads(s["driver"], s["params"]["seed"], 5), (topic, payloads)
        # From the second reading on (the first may wait for the connect),
        # one a second: no stall and no burst across the wrap.
        gaps = [ticks_diff(got[i][2], got[i - 1][2]) for i in range(2, len(got))]
        assert all(700 <= gap <= 1300 for gap in gaps), (topic, gaps)
    assert published == 10


class JumpClock:
    """A ticks_ms that starts before_wrap_ms short of the wrap, runs on with
    the real clock, and jumps ahead by jump(ms) (a day at a time: any tick
    arithmetic the code does within one day is measurable)."""

    def __init__(self, before_wrap_ms):
        self._start_real = ticks_ms()
        self._start = ticks_add(0, -before_wrap_ms)

    def __call__(self):
        return ticks_add(self._start, ticks_diff(ticks_ms(), self._start_real))

    def jump(self, ms):
        self._start = ticks_add(self._start, ms)


def broker_without_keepalive():
    # A day's jump of the clock would read as a dead link: these tests are
    # about the node's own deadlines, not the keepalive.
    host, port = broker_address()
    return {"host": host, "port": port, "keepalive_s": 0, "clean_session": True}


def test_node_uptime_keeps_counting_past_six_days():
    clock = JumpClock(1000)

    def eight_days():
        node, logs = make_node(
            "wu", sensors=[sim("sim_temperature", 41, 0)], BROKER=broker_without_keepalive(), DIAGNOSTICS_S=60
        )
        sub, arrivals = watcher("wu", node.diagnostics_topic, keepalive=0)  # it lives through the jumps too
        try:
            assert run_until(node, [sub], lambda: node.client.connected)
            for day in range(1, 9):
                clock.jump(DAY_MS)
                assert run_until(node, [sub], lambda n=day: len(arrivals.messages) >= n), (day, arrivals.messages)
            return [json.loads(m[1])["uptime_s"] for m in arrivals.messages]
        finally:
            finish(node, [sub])

    uptimes = with_ticks([node_module, client_module], clock, eight_days)
    for day in range(1, 9):
        assert day * 86400 <= uptimes[day - 1] < day * 86400 + 10, uptimes


class FakeWifi:
    """The node's view of the Wi-Fi (node.wifi.Wifi's methods), up or down at the test's word."""

    def __init__(self):
        self.up = True
        self.reconnects = 1

    def poll(self, now):
        return self.up

    def is_up(self):
        return self.up

    def rssi(self):
        return -60

    def dns_server(self):
        return "0.0.0.0"

    def set_up(self, up):
        if up and not self.up:
            self.reconnects += 1
        self.up = up


def _week_without_wifi(tag, after):
    """A node online (with NTP), then a week without Wi-Fi (stepped a day at
    a time, the client not polled, as node.run does), then the Wi-Fi back:
    returns after(node, ntp_syncs) with the node's clock still patched."""
    clock = JumpClock(2000)
    wifi = FakeWifi()
    syncs = []

    def fake_sync_ntp(host, port, resolve, timeout_ms, log):
        syncs.append(ticks_ms())
        return True

    def week():
        node, logs = make_node(
            tag,
            sensors=[sim("sim_temperature", 51, 0)],
            BROKER=broker_without_keepalive(),
            PAYLOAD="json",
            NTP="127.0.0.1:123",
        )
        node.wifi = wifi
        try:
            assert run_until(node, [], lambda: node.client.connected and syncs), logs.lines
            wifi.set_up(False)
            node.step()
            assert not node.client.connected
            for _ in range(7):
                clock.jump(DAY_MS)
                node.step()
            wifi.set_up(True)
            return after(node, syncs)
        finally:
            finish(node, [])

    saved_sync = timestamp.sync_ntp
    timestamp.sync_ntp = fake_sync_ntp
    try:
        return with_ticks([node_module, client_module], clock, week)
    finally:
        timestamp.sync_ntp = saved_sync


def test_node_reconnects_at_once_when_the_wifi_returns_after_a_week():
    # The reconnect the client scheduled as the Wi-Fi went is a week old:
    # on a board it would read as up to 6.2 days ahead.
    def back(node, syncs):
        return run_until(node, [], lambda: node.client.connected, 3000), node.client.reconnect_in_ms()

    reconnected, left = _week_without_wifi("wr", back)
    assert reconnected, left


def test_node_syncs_the_clock_at_once_when_the_wifi_returns_after_a_week():
    # The resync fell due 6 h into the outage: it stays due, not 6.2 days ahead.
    def back(node, syncs):
        run_until(node, [], lambda: len(syncs) >= 2, 1000)
        return len(syncs)

    assert _week_without_wifi("wn", back) == 2
