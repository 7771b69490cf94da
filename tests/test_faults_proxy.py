"""The client through a fault proxy (tests/faults/proxy.py) that cuts the
link, black-holes it, fragments it and slows it down, on CPython and on the
MicroPython Unix port. The client runs as a script in its own process
(tests/scripts/qos_stream.py, or tests/faults/stream.py where the test needs
the in-flight window and buffer sizes); paho-mqtt, connected straight to
mosquitto past the proxy, is the independent witness of what arrived."""

import builtins
import os
import time
import uuid

import pytest

from faults.proxy import FaultProxy
from faults.support import RUNTIMES, Subscriber, stream_args, tally
from mqtt.client import MQTTClient

QOS_STREAM = os.path.join("tests", "scripts", "qos_stream.py")
FAULT_STREAM = os.path.join("tests", "faults", "stream.py")
CUT_EVERY_MS = 200
CUT_COUNT = 2000


@pytest.fixture
def proxy_to(request):
    """proxy_to(broker): a FaultProxy in front of that broker, closed at teardown."""
    made = []

    def make(broker, seed=None):
        p = FaultProxy(broker.port, seed=seed if seed is not None else len(made) + 1).start()
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


@pytest.fixture
def subscriber():
    made = []

    def make(port, topic, qos, client_id, clean_session=False):
        s = Subscriber(port, topic, qos, client_id, clean_session)
        made.append(s)
        s.wait_subscribed()
        return s

    yield make
    for s in made:
        s.close()


def unique(name):
    return "%s-%s" % (name, uuid.uuid4().hex[:8])


def all_arrived(sub, topic, count, timeout_s):
    sub.wait(lambda: set(sub.numbers(topic)) >= set(range(count)), timeout_s)
    return tally(sub.numbers(topic), count)


def fault_stream_args(port, client_id, topic, qos, **options):
    return ["127.0.0.1", port, client_id, topic, qos] + ["%s=%s" % item for item in options.items()]


# ---- 1, 2. random cuts every ~200 ms ------------------------------------------


@pytest.mark.parametrize("qos", [1, 2])
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_stream_through_random_cuts_arrives_complete_and_in_order(runtime, qos, broker, proxy_to, spawn, subscriber):
    """2000 numbered messages while the proxy cuts the link at random every
    100..300 ms (seeded): at QoS 1 each arrives at least once, at QoS 2
    exactly once, and in both the first arrivals keep the publish order."""
    proxy = proxy_to(broker, seed=qos)
    topic = "house/faults/%s" % unique("cuts%d-%s" % (qos, runtime))
    sub = subscriber(broker.port, topic, qos, unique("paho-cuts"))
    node = spawn(
        runtime,
        QOS_STREAM,
        stream_args(proxy.port, unique("node-cuts"), topic, qos, CUT_COUNT, interval_ms=1, deadline_s=60),
    )
    node.wait_for("READY", 15)
    proxy.random_cuts(CUT_EVERY_MS, seed=10 + qos)
    result = node.result(90)
    proxy.random_cuts(None)
    print(runtime, "QoS", qos, result, proxy.stats())
    assert result["complete"], node.output()
    assert result["published"] == CUT_COUNT and result["acked"] == CUT_COUNT
    # The stream ran long enough for the cuts to matter.
    assert proxy.cuts >= 5, proxy.stats()
    assert result["reconnects"] >= 5, result
    counts = all_arrived(sub, topic, CUT_COUNT, 20)
    print("paho:", counts)
    assert counts["lost"] == 0, counts
    assert counts["unexpected"] == 0, counts
    assert counts["in_order"], "first arrivals out of publish order: %s" % counts
    if qos == 2:
        time.sleep(0.5)  # a late duplicate would arrive now
        counts = tally(sub.numbers(topic), CUT_COUNT)
        assert counts["duplicated"] == 0, "QoS 2 delivered %d duplicates" % counts["duplicated"]


# ---- 3. a black hole: only the keepalive can tell -------------------------------

KEEPALIVE_S = 2
BLACK_HOLE_S = 4.5  # > 1.5 x keepalive
SCHEDULING_MARGIN_S = 1.5


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_black_hole_found_by_keepalive_then_nothing_lost(runtime, broker, proxy_to, spawn, subscriber):
    """The proxy keeps both sockets open and forwards nothing, either way,
    for longer than 1.5 x keepalive: the client must find the dead link by
    the keepalive (KeepaliveTimeout), fail to reconnect while the hole lasts
    (no CONNACK: MQTTTimeout), reconnect after, and lose nothing at QoS 1."""
    proxy = proxy_to(broker)
    topic = "house/faults/%s" % unique("hole-" + runtime)
    count = 300
    sub = subscriber(broker.port, topic, 1, unique("paho-hole"))
    node = spawn(
        runtime,
        QOS_STREAM,
        stream_args(
            proxy.port,
            unique("node-hole"),
            topic,
            1,
            count,
            keepalive=KEEPALIVE_S,
            interval_ms=10,
            connect_timeout_ms=1000,
            events=1,
        ),
    )
    _, ready, _ = node.wait_for("READY", 15)
    assert sub.wait(lambda: len(sub.numbers(topic)) >= 20, 10), "the stream did not start"
    proxy.black_hole(True)
    opened = time.monotonic()
    try:
        found_at, index, line = node.wait_for("EVENT disconnect", 1.5 * KEEPALIVE_S + SCHEDULING_MARGIN_S + 1, ready)
        noticed = found_at - opened
        print("%s: black hole noticed after %.2f s: %s" % (runtime, noticed, line))
        assert "KeepaliveTimeout" in line, "the dead link was not found by the keepalive: " + line
        assert noticed <= 1.5 * KEEPALIVE_S + SCHEDULING_MARGIN_S, "noticed only after %.2f s" % noticed
        # A CONNECT into the hole gets no CONNACK: that attempt ends at connect_timeout_ms.
        node.wait_for("EVENT disconnect", BLACK_HOLE_S, index + 1, contains="MQTTTimeout")
        left = BLACK_HOLE_S - (time.monotonic() - opened)
        if left > 0:
            time.sleep(left)
    finally:
        proxy.black_hole(False)
    node.wait_for("EVENT connect", 15, index)
    result = node.result(60)
    print(runtime, result, proxy.stats())
    assert result["complete"], node.output()
    assert result["published"] == count and result["acked"] == count
    assert result["disconnect_reasons"].get("KeepaliveTimeout", 0) >= 1, result
    assert proxy.stats()["dropped_bytes"] > 0
    counts = all_arrived(sub, topic, count, 20)
    assert counts["lost"] == 0, counts
    assert counts["in_order"], counts


# ---- 4. mosquitto restarted mid-stream --------------------------------------------


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_broker_restart_mid_stream_loses_nothing_at_qos1(runtime, make_broker, proxy_to, spawn, subscriber):
    """mosquitto (persistence on) stopped and started again on the same port
    while the client streams QoS 1 through the proxy: the proxy's upstream
    connects fail while it is down, the client keeps retrying, and every
    number arrives at the (persistent) paho session afterwards."""
    broker = make_broker(persistence=True)
    proxy = proxy_to(broker)
    topic = "house/faults/%s" % unique("restart-" + runtime)
    count = 1000
    sub = subscriber(broker.port, topic, 1, unique("paho-restart"))
    node = spawn(
        runtime,
        QOS_STREAM,
        stream_args(proxy.port, unique("node-restart"), topic, 1, count, interval_ms=3, events=1),
    )
    node.wait_for("READY", 15)
    assert sub.wait(lambda: len(sub.numbers(topic)) >= 250, 30), "the stream did not get going"
    broker.stop()
    time.sleep(1.0)  # down long enough for reconnect attempts to fail
    broker.start()
    assert sub.wait(lambda: sub.connects >= 2, 15), "paho did not reconnect after the restart"
    result = node.result(60)
    print(runtime, result, proxy.stats())
    assert result["complete"], node.output()
    assert result["published"] == count and result["acked"] == count
    assert result["reconnects"] >= 1, result
    assert proxy.stats()["upstream_failures"] >= 1, "no connect attempt while mosquitto was down"
    counts = all_arrived(sub, topic, count, 20)
    assert counts["lost"] == 0, counts
    assert counts["in_order"], counts


# ---- 5. single-byte fragmentation both ways ----------------------------------------

FRAGMENT_COUNT = 200


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_single_byte_fragments_both_ways_qos1_and_qos2(runtime, broker, proxy_to, spawn, subscriber):
    """Every byte of the link in its own write, 1 ms apart, both ways: the
    client reassembles acks from pieces and its packets reach mosquitto in
    pieces. 200 QoS 1 and 200 QoS 2 messages (two clients at once) all
    arrive, QoS 2 exactly once."""
    proxy = proxy_to(broker)
    proxy.fragment(True, pause_ms=1)
    nodes = {}
    subs = {}
    topics = {}
    for qos in (1, 2):
        topics[qos] = "h/f/%s" % unique("q%d" % qos)
        subs[qos] = subscriber(broker.port, topics[qos], qos, unique("paho-frag"))
        nodes[qos] = spawn(
            runtime,
            QOS_STREAM,
            stream_args(proxy.port, unique("node-frag%d" % qos), topics[qos], qos, FRAGMENT_COUNT, deadline_s=90),
        )
    for qos in (1, 2):
        result = nodes[qos].result(100)
        print(runtime, "QoS", qos, result)
        assert result["complete"], nodes[qos].output()
        assert result["acked"] == FRAGMENT_COUNT
        assert result["reconnects"] == 0, "the link dropped under fragmentation: %s" % result
        counts = all_arrived(subs[qos], topics[qos], FRAGMENT_COUNT, 20)
        assert counts["lost"] == 0 and counts["unexpected"] == 0, counts
        assert counts["in_order"], counts
        if qos == 2:
            assert counts["duplicated"] == 0, counts
    stats = proxy.stats()
    print(stats)
    assert stats["bytes_down"] >= FRAGMENT_COUNT * 4 * 3  # PUBACK, PUBREC, PUBCOMP went through in pieces


def test_single_byte_fragments_incoming_publish_cpython(broker, proxy_to, subscriber):
    """The receive side in pieces: 80 QoS 1 messages from paho to the
    client through a proxy that forwards broker -> client one byte at a
    time (CPython in-process; the reassembly code is the same on the Unix
    port, whose acks are reassembled in the test above)."""
    proxy = proxy_to(broker)
    topic = "h/in/%s" % uuid.uuid4().hex[:8]
    count = 80
    client = MQTTClient(unique("node-frag-in"), "127.0.0.1", proxy.port, keepalive=30)
    received = []
    granted = []
    client.on_message = lambda c, u, m: received.append((m.topic, m.payload, m.qos))
    client.on_subscribe = lambda c, u, packet_id, codes: granted.append(codes)
    client.connect()
    try:
        client.subscribe(topic, 1)
        deadline = time.monotonic() + 10
        while not granted and time.monotonic() < deadline:
            client.poll(50)
        assert granted == [(1,)]
        proxy.fragment(True, direction="down", pause_ms=1)
        sender = Subscriber(broker.port, "house/faults/unused", 0, unique("paho-sender"), clean_session=True)
        sender.wait_subscribed()
        payloads = [("r%d " % i).encode() + bytes(range(i % 24)) for i in range(count)]
        for payload in payloads:
            sender.client.publish(topic, payload, 1)
        deadline = time.monotonic() + 60
        while len(received) < count and time.monotonic() < deadline:
            client.poll(100)
        sender.close()
        assert client.disconnects == 0, client.last_error
        assert [p for _, p, _ in received] == payloads
        assert all(t == topic and q == 1 for t, _, q in received)
    finally:
        client.disconnect()


# ---- 6. a slow broker: the in-flight window fills ------------------------------------

SLOW_DELAY_MS = 300
SLOW_COUNT = 100
SLOW_WINDOW = 8


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_slow_broker_fills_window_and_publish_waits(runtime, broker, proxy_to, spawn, subscriber):
    """broker -> client delayed 300 ms: the 8-message in-flight window fills
    and publish() polls until an ack frees a slot (client.publish's
    documented behaviour, within publish_timeout_ms, no InflightFull); the
    client's buffers keep their size; everything arrives, in order."""
    proxy = proxy_to(broker)
    proxy.delay_ms(SLOW_DELAY_MS, "down")
    topic = "house/faults/%s" % unique("slow-" + runtime)
    sub = subscriber(broker.port, topic, 1, unique("paho-slow"))
    node = spawn(
        runtime,
        FAULT_STREAM,
        fault_stream_args(
            proxy.port,
            unique("node-slow"),
            topic,
            1,
            count=SLOW_COUNT,
            inflight_max=SLOW_WINDOW,
            publish_timeout_ms=5000,
            wait_ms=SLOW_DELAY_MS // 2,
        ),
    )
    result = node.result(60)
    print(runtime, result)
    assert result["complete"], node.output()
    assert result["acked"] == SLOW_COUNT
    assert result["inflight_seen"] == SLOW_WINDOW, "the window never filled: %s" % result
    assert result["inflight_full"] == 0, result
    # The first refill waits about one delayed round trip (the first eight go
    # out at once). How many later publishes wait that long depends on how
    # the acks spread out on a loaded machine, so only this one is pinned.
    assert result["publish_waits"] >= 1, result
    assert SLOW_DELAY_MS // 2 <= result["publish_wait_max_ms"] < 5000, result
    assert result["mem_len_after"] == result["mem_len_before"], result
    assert result["rx_len_after"] == result["rx_len_before"], result
    assert result["reconnects"] == 0, result
    counts = all_arrived(sub, topic, SLOW_COUNT, 20)
    assert counts["lost"] == 0 and counts["duplicated"] == 0 and counts["in_order"], counts


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_slow_broker_with_short_publish_timeout_raises_inflight_full(runtime, broker, proxy_to, spawn, subscriber):
    """The other half of the documented behaviour: with publish_timeout_ms
    (100) shorter than the broker's delay (300 ms), publish() raises
    InflightFull and queues nothing; the caller retries and nothing is lost
    or sent twice."""
    proxy = proxy_to(broker)
    proxy.delay_ms(SLOW_DELAY_MS, "down")
    topic = "house/faults/%s" % unique("full-" + runtime)
    count = 40
    sub = subscriber(broker.port, topic, 1, unique("paho-full"))
    node = spawn(
        runtime,
        FAULT_STREAM,
        fault_stream_args(
            proxy.port, unique("node-full"), topic, 1, count=count, inflight_max=4, publish_timeout_ms=100
        ),
    )
    result = node.result(60)
    print(runtime, result)
    assert result["complete"], node.output()
    assert result["inflight_full"] >= 1, result
    assert result["mem_len_after"] == result["mem_len_before"], result
    counts = all_arrived(sub, topic, count, 20)
    assert counts["lost"] == 0 and counts["duplicated"] == 0 and counts["in_order"], counts


# ---- corruption: no guarantee to check, only that nothing crashes ----------------------

# What poll() turns into a reconnect: OSError and its subclasses (by their
# CPython names too), the codec's and the session's errors.
HANDLED = {"OSError", "MQTTTimeout", "ProtocolError", "KeepaliveTimeout", "ConnectRefused"}


def handled(name):
    builtin = getattr(builtins, name, None)
    return name in HANDLED or (isinstance(builtin, type) and issubclass(builtin, OSError))


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_corrupted_bytes_both_ways_never_crash_the_client(runtime, broker, proxy_to, spawn):
    """Bits flipped at random in both directions for 3 s. MQTT has no
    checksum, so a flipped bit can ack the wrong message or land in a
    payload: no delivery guarantee holds under corruption, and none is
    checked. What must hold: the client never raises out of poll(), every
    failure is a named error and a reconnect, and once the corruption
    stops the stream finishes with every message acknowledged."""
    proxy = proxy_to(broker)
    proxy.corrupt(0.002, seed=5)
    topic = "house/faults/%s" % unique("corrupt-" + runtime)
    node = spawn(
        runtime,
        FAULT_STREAM,
        fault_stream_args(
            proxy.port,
            unique("node-corrupt"),
            topic,
            1,
            duration_s=5,
            interval_ms=5,
            keepalive=2,
            retry_ms=1000,
            reconnect_min_ms=20,
            reconnect_max_ms=200,
            connect_timeout_ms=1000,
            publish_timeout_ms=500,
            events=1,
        ),
    )
    node.wait_for("READY", 15)
    time.sleep(3)
    proxy.corrupt(0)
    result = node.result(60)
    stats = proxy.stats()
    print(runtime, result, stats)
    assert stats["corrupted_bytes"] > 0, stats
    assert result["complete"], node.output()
    assert result["published"] > 0 and result["acked"] == result["published"], result
    assert result["reconnects"] >= 1, "no corrupted byte broke the link: %s" % result
    unhandled = [name for name in result["disconnect_reasons"] if not handled(name)]
    assert not unhandled, result["disconnect_reasons"]
    assert result["mem_len_after"] == result["mem_len_before"], result
