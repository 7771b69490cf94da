"""Every wait of the node has a deadline and a path back: firmware/main.py
on the Unix port, with the watchdog armed, is made to wait on each step in
turn (Wi-Fi association, TCP connect, TLS handshake, CONNACK, a silent
link, DNS, NTP). It
gives each up at its deadline, is never reset by the watchdog for it, and
publishes again once the fault is gone, losing no reading. A hang that has
no deadline (a Wi-Fi driver stuck in connect()) is ended by the watchdog.

Each test prints how long the node took to notice the fault and to recover
(`pytest -s`); the assertions bound them loosely, since the machine is shared."""

import json
import socket
import time

import pytest

from faults.dns_server import DNSServer
from faults.ntp_server import NTPServer
from faults.proxy import FaultProxy
from sensors import make as make_sensor
from test_node_e2e import NodeProcess, Subscriber, wait_until

WATCHDOG_MS = 3000  # so every network step has 1500 ms (node._step_deadline_ms)
STEP_S = 1.5
TOPIC = "house/hall/temperature"
# A wide, fast walk: its first 300 readings are all different (checked below),
# so a reading's value says which one it is.
PARAMS = {"seed": 7, "spread": 9000, "step": 2000}
DISTINCT = 300

BOARD = """
MODEL = "deadline test"
ROOM = "hall"
NODE = "deadline-node"
BROKER = %r
WIFI = {"ssid": "house", "connect_timeout_s": 1}
SENSORS = [{"driver": "sim_temperature", "period_s": 1, "qos": 1, "params": %r}]
BUFFER = 256
DIAGNOSTICS_S = 0
DISCOVERY = False
WATCHDOG_MS = %d
PAYLOAD = %r
DNS = %r
NTP = %r
"""


@pytest.fixture
def start_node(tmp_path):
    """start_node(broker, env=None, payload="plain", dns=None, ntp=None, tls_ca=None):
    the firmware with the board above (over TLS with that CA file when given);
    SIGKILLed at teardown."""
    started = []

    def start(broker, env=None, payload="plain", dns=None, ntp=None, tls_ca=None):
        settings = {"host": "127.0.0.1", "port": 1883, "keepalive_s": 2}
        if tls_ca is not None:
            settings.update(tls=True, ca=tls_ca)
        board = BOARD % (settings, PARAMS, WATCHDOG_MS, payload, dns, ntp)
        (tmp_path / "deadline_board.py").write_text(board)
        node = NodeProcess(broker, board="deadline_board", extra_path=str(tmp_path), env=env)
        started.append(node)
        return node

    yield start
    for node in started:
        node.kill()


def expected_readings():
    sensor = make_sensor("sim_temperature", None, **PARAMS)
    values = [0]
    readings = []
    for _ in range(DISTINCT):
        sensor.read(values)
        readings.append(b"%d.%02d" % divmod(values[0], 100))
    return readings


def test_the_readings_are_distinct():
    readings = expected_readings()
    assert len(set(readings)) == len(readings) and readings[0] > b"0"


def assert_every_reading_arrived_in_order(sub, node):
    """QoS 1 from a RAM ring: every reading taken since power-up arrives, in
    the order taken (a duplicate after a resend is allowed, a gap is not)."""
    first_arrivals = []
    for payload in sub.payloads(TOPIC):
        if payload not in first_arrivals:
            first_arrivals.append(payload)
    assert 0 < len(first_arrivals) < DISTINCT, node.output()
    expected = expected_readings()[: len(first_arrivals)]
    assert first_arrivals == expected, (first_arrivals, node.output())


def assert_never_reset(node):
    assert node.proc.poll() is None, node.output()
    assert node.count("machine.WDT: not fed") == 0, node.output()
    assert node.count("machine.WDT: first feed (timeout %d ms)" % WATCHDOG_MS) == 1, node.output()


def wait_for_line(node, text, timeout_s, after=0.0):
    assert wait_until(lambda: node.first(text, after) is not None, timeout_s), (text, node.output())
    return node.first(text, after)


# The network steps (DNS, NTP, TCP connect) start once the Wi-Fi is up.
WIFI_UP = "wifi: up on 'house'"


def report(step, noticed_s=None, recovered_s=None, deadline_s=STEP_S):
    parts = [step]
    if noticed_s is not None:
        parts.append("given up after %.2f s (deadline %.2f s)" % (noticed_s, deadline_s))
    if recovered_s is not None:
        parts.append("back %.2f s after the fault ended" % recovered_s)
    print("recovery: " + ", ".join(parts))


def test_access_point_back_after_the_board_connects_again(make_broker, start_node):
    """After a power cut the router comes back later than the board: the
    node keeps associating with backoff, feeding the watchdog, and connects
    once the access point is there."""
    broker = make_broker()
    sub = Subscriber(broker, [TOPIC])
    node = start_node(broker, env={"FAKE_WIFI_DOWN_MS": "4000"})
    back_at = node.started + 4.0
    first_failure = wait_for_line(node, "wifi: no association with 'house' within 1000 ms", 10)
    connected = wait_for_line(node, "mqtt: connected", 30)
    assert wait_until(lambda: len(sub.payloads(TOPIC)) >= 6, 15), node.output()
    # The node's first pass starts associating, then feeds the watchdog.
    report("Wi-Fi association", first_failure - node.first("machine.WDT: first feed"), connected - back_at, 1.0)
    assert node.count("wifi: no association") >= 2, node.output()  # it kept trying
    assert connected >= back_at
    assert_never_reset(node)
    assert_every_reading_arrived_in_order(sub, node)
    sub.close()


def full_listener(port):
    """A listener on port whose accept queue is full: a connect to it sends
    SYNs nobody answers, as to a host that is off. Returns what to close."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(0)
    queued = socket.create_connection(("127.0.0.1", port), timeout=2)
    return [queued, listener]


def test_tcp_connect_that_hangs_is_given_up_and_retried(make_broker, start_node):
    broker = make_broker()
    broker.stop()
    held = full_listener(broker.port)
    try:
        node = start_node(broker)
        noticed = wait_for_line(node, "TCP connect to 127.0.0.1:%d timed out" % broker.port, 10)
        wait_until(lambda: node.count("TCP connect to") >= 2, 10)
    finally:
        for s in held:
            s.close()
    broker.start()
    restored = time.monotonic()
    sub = Subscriber(broker, [TOPIC])
    connected = wait_for_line(node, "mqtt: connected", 30, after=restored)
    assert wait_until(lambda: len(sub.payloads(TOPIC)) >= 4, 15), node.output()
    report("TCP connect", noticed - node.first(WIFI_UP), connected - restored)
    assert node.count("TCP connect to") >= 2, node.output()  # retried, not stuck
    assert_never_reset(node)
    assert_every_reading_arrived_in_order(sub, node)
    sub.close()


def test_tls_handshake_that_hangs_is_given_up_and_retried(tls_broker, tls_files, start_node):
    """A route that takes the TCP connect and then carries nothing: each TLS
    handshake is given up at the connect deadline, the node is not reset,
    and once the route is back it connects over TLS and every reading arrives."""
    sub = Subscriber(tls_broker, [TOPIC])  # on the broker's plain listener
    with FaultProxy(tls_broker.tls_port) as proxy:
        proxy.black_hole(True)
        # The Unix port's mbedtls takes a DER CA (compat converts PEM, tested elsewhere).
        node = start_node(tls_broker, env={"MQTT_PORT": str(proxy.port)}, tls_ca=tls_files["ca_der"])
        step = "TLS handshake with 127.0.0.1:%d" % proxy.port
        started = wait_for_line(node, step + ", free heap", 10)
        noticed = wait_for_line(node, step + " timed out", 10)
        assert wait_until(lambda: node.count(step + " timed out") >= 2, 15), node.output()  # retried
        proxy.black_hole(False)
        restored = time.monotonic()
        connected = wait_for_line(node, "mqtt: connected", 30, after=restored)
        assert wait_until(lambda: len(sub.payloads(TOPIC)) >= 4, 15), node.output()
    report("TLS handshake", noticed - started, connected - restored)
    assert STEP_S - 0.3 <= noticed - started <= STEP_S + 3, node.output()
    assert_never_reset(node)
    assert_every_reading_arrived_in_order(sub, node)
    sub.close()


def test_connack_that_never_comes_and_a_silent_link(make_broker, start_node):
    """Through a proxy that turns into a black hole: the connected node finds
    the dead link by keepalive (1.5 x 2 s), each reconnect waits for a CONNACK
    at most its deadline, and when the route is back every reading arrives."""
    broker = make_broker()
    sub = Subscriber(broker, [TOPIC])
    with FaultProxy(broker.port) as proxy:
        node = start_node(broker, env={"MQTT_PORT": str(proxy.port)})
        wait_for_line(node, "mqtt: connected", 15)
        assert wait_until(lambda: len(sub.payloads(TOPIC)) >= 2, 10), node.output()
        proxy.black_hole(True)
        silent_from = time.monotonic()
        dead = wait_for_line(node, "mqtt: link down", 15, after=silent_from)
        wait_for_line(node, "no CONNACK from 127.0.0.1:%d" % proxy.port, 15, after=dead)
        proxy.black_hole(False)
        restored = time.monotonic()
        connected = wait_for_line(node, "mqtt: connected", 30, after=restored)
        assert wait_until(lambda: len(sub.payloads(TOPIC)) >= 10, 15), node.output()
    # The deadline of a silent link is 1.5 x keepalive (3.1.1 section 3.1.2.10).
    report("silent link (keepalive 2 s), then CONNACK never sent", dead - silent_from, connected - restored, 3.0)
    print("recovery: %d CONNACK waits given up at the deadline" % node.count("no CONNACK from"))
    assert 2.0 <= dead - silent_from <= 8, node.output()
    assert_never_reset(node)
    assert_every_reading_arrived_in_order(sub, node)
    sub.close()


def test_wifi_driver_that_hangs_is_reset_by_the_watchdog(make_broker, start_node):
    """wlan.connect() that never returns has no deadline we could give it:
    the watchdog is no longer fed and resets the board; after the reset
    (here: the process killed, then started again) the node comes back."""
    broker = make_broker()
    sub = Subscriber(broker, ["house/hall/deadline-node/status", TOPIC])
    node = start_node(broker, env={"FAKE_WIFI": "hang"})
    hung = wait_for_line(node, "network.WLAN.connect: hanging", 10)
    reset = wait_for_line(node, "machine.WDT: not fed for", 10)
    assert node.proc.wait(timeout=5) == -9, node.output()  # SIGKILL: the reset
    assert not sub.payloads(TOPIC)
    node = start_node(broker)  # power back after the reset, the driver healthy again
    connected = wait_for_line(node, "mqtt: connected", 15)
    assert wait_until(lambda: len(sub.payloads(TOPIC)) >= 2, 10), node.output()
    report("Wi-Fi driver hang (no deadline possible): reset by the watchdog", reset - hung, connected - reset,
           WATCHDOG_MS / 1000)
    assert WATCHDOG_MS / 1000 - 0.5 <= reset - hung <= WATCHDOG_MS / 1000 + 3, (reset - hung, node.output())
    assert sub.payloads("house/hall/deadline-node/status")[-1] == b"online"
    assert_never_reset(node)
    sub.close()


BROKER_NAME = "broker.house.test"


def test_dns_that_hangs_is_given_up_and_retried(make_broker, start_node):
    """The broker is named, not numbered: a DNS server that never answers
    costs one deadline per connect attempt, the node is not reset, and once
    DNS answers the node connects."""
    broker = make_broker()
    sub = Subscriber(broker, [TOPIC])
    with DNSServer({BROKER_NAME: ("127.0.0.1", 300)}) as dns:
        dns.mode = "silent"
        node = start_node(broker, env={"MQTT_HOST": BROKER_NAME}, dns="127.0.0.1:%d" % dns.port)
        wifi_up = wait_for_line(node, WIFI_UP, 10)
        noticed = wait_for_line(node, "resolving %r via 127.0.0.1:%d: no answer within" % (BROKER_NAME, dns.port), 10)
        assert wait_until(lambda: node.count("no answer within") >= 2, 15), node.output()  # retried
        dns.mode = "answer"
        restored = time.monotonic()
        connected = wait_for_line(node, "mqtt: connected to %s" % BROKER_NAME, 30, after=restored)
        assert wait_until(lambda: len(sub.payloads(TOPIC)) >= 4, 15), node.output()
    report("DNS", noticed - wifi_up, connected - restored, deadline_s=STEP_S / 2)  # half the connect deadline
    assert_never_reset(node)
    assert_every_reading_arrived_in_order(sub, node)
    sub.close()


def test_dns_down_later_the_last_address_is_used(make_broker, start_node):
    """A router that restarts takes its DNS down with it: a reconnect then
    uses the broker's last known address (its TTL long gone) and succeeds."""
    broker = make_broker(persistence=True)
    sub = Subscriber(broker, [TOPIC])
    with DNSServer({BROKER_NAME: ("127.0.0.1", 0)}) as dns:  # TTL 0: every connect asks
        node = start_node(broker, env={"MQTT_HOST": BROKER_NAME}, dns="127.0.0.1:%d" % dns.port)
        wait_for_line(node, "mqtt: connected", 15)
        asked = dns.queries
        dns.mode = "silent"
        broker.restart()
        restarted = time.monotonic()
        connected = wait_for_line(node, "mqtt: connected", 30, after=restarted)
        assert wait_until(lambda: len(sub.payloads(TOPIC)) >= 4, 15), node.output()
        assert dns.queries > asked, "the reconnect did not ask DNS first"
    print("recovery: DNS silent at a reconnect: connected to the last address %.2f s after the broker restart"
          % (connected - restarted))
    assert node.count("no answer within") == 0, node.output()
    assert_never_reset(node)
    assert_every_reading_arrived_in_order(sub, node)
    sub.close()


# 2031-05-31T12:00:00Z: not the host's time, so a timestamp from it proves NTP was used.
NTP_TIME = 1937995200


def test_json_timestamps_come_from_ntp(make_broker, start_node):
    broker = make_broker()
    sub = Subscriber(broker, [TOPIC])
    with NTPServer(NTP_TIME) as ntp:
        node = start_node(broker, payload="json", ntp="127.0.0.1:%d" % ntp.port)
        assert wait_until(lambda: len(sub.payloads(TOPIC)) >= 3, 15), node.output()
    readings = [json.loads(p) for p in sub.payloads(TOPIC)]
    # Readings taken before the sync carry the clock as it was (here the host's).
    assert readings[-1]["t"].startswith("2031-05-31T12:00:"), readings
    assert ntp.queries == 1
    assert node.count("ntp: clock set from 127.0.0.1:%d" % ntp.port) == 1, node.output()
    assert_never_reset(node)
    sub.close()


def test_silent_ntp_server_is_given_up_and_readings_go_out(make_broker, start_node):
    """An NTP server that never answers costs one deadline per attempt;
    readings go out meanwhile with the clock as it is (on a board just
    powered up: no time at all; here: the host's)."""
    broker = make_broker()
    sub = Subscriber(broker, [TOPIC])
    with NTPServer(NTP_TIME) as ntp:
        ntp.mode = "silent"
        node = start_node(broker, payload="json", ntp="127.0.0.1:%d" % ntp.port)
        wifi_up = wait_for_line(node, WIFI_UP, 10)
        given_up = wait_for_line(node, "ntp: no answer from NTP server 127.0.0.1:%d" % ntp.port, 10)
        assert wait_until(lambda: len(sub.payloads(TOPIC)) >= 3, 15), node.output()
    report("NTP", given_up - wifi_up)
    readings = [json.loads(p) for p in sub.payloads(TOPIC)]
    assert readings and not any(r.get("t", "").startswith("2031") for r in readings), readings
    assert_never_reset(node)
    sub.close()
