"""The client against a real mosquitto that the tests restart, pause (SIGSTOP)
and put behind TLS, on CPython and on the MicroPython Unix port. The client
runs as a script (tests/scripts/) in its own process, so that it can also be
SIGKILLed; paho-mqtt, in this process, is the independent subscriber."""

import collections
import errno
import signal
import ssl
import time
import uuid

import pytest

from faults.support import RUNTIMES, Subscriber, stream_args
from harness import micropython
from mqtt.client import InflightFull, MQTTClient
from mqtt.session import ConnectRefused
from netcompat import tls_context

STREAM_COUNT = 1000


# ---- a client script in its own process -------------------------------------


# ---- paho, the independent subscriber ---------------------------------------


@pytest.fixture
def subscriber():
    made = []

    def make(port, topic, qos, client_id, clean_session=True):
        s = Subscriber(port, topic, qos, client_id, clean_session)
        made.append(s)
        s.wait(lambda: s.subscribed, 10, "no SUBACK")
        return s

    yield make
    for s in made:
        s.close()


def numbers(payloads):
    return [int(p) for p in payloads]


# ---- 1. a QoS 1 / QoS 2 stream through two broker restarts ------------------


INFLIGHT_MAX = 16


def restart_with_window_full(broker, sent_unread):
    """A graceful restart (SIGTERM: persistence saved) while the client has a
    full in-flight window of transmitted, unacknowledged messages: SIGSTOP
    first, so that they pile up in the broker's socket buffer. With
    sent_unread the broker exits without reading them (the client sees
    ECONNRESET and resends them with DUP to a broker that never saw them);
    without, it wakes and is stopped at once, so it may read and acknowledge
    some of them with the acks lost (then the client resends messages the
    broker already has). Which happens in the second case is up to timing;
    QoS 2 must deliver each number once either way."""
    broker.pause()
    time.sleep(0.2)  # ~60 publish attempts at 3 ms: the window fills
    if sent_unread:
        broker.proc.terminate()  # pending until SIGCONT
    broker.resume()
    broker.restart(graceful=True)


@pytest.mark.parametrize("qos", [1, 2])
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_stream_survives_two_broker_restarts(runtime, qos, make_broker, spawn, subscriber):
    """1000 numbered messages while mosquitto (persistence on) is restarted
    twice mid-stream: at QoS 1 each arrives at least once, at QoS 2 exactly once."""
    broker = make_broker(persistence=True)
    topic = "house/test/stream%d" % qos
    sub = subscriber(broker.port, topic, qos, "paho-stream-%s-%d" % (runtime, qos), clean_session=False)
    node = spawn(
        runtime,
        "qos_stream.py",
        stream_args(
            broker.port,
            "node-stream-%s-%d" % (runtime, qos),
            topic,
            qos,
            STREAM_COUNT,
            interval_ms=3,
            inflight_max=INFLIGHT_MAX,
            events=1,
        ),
    )
    node.wait_for("READY", 15)
    for n, threshold in enumerate((250, 600)):
        sub.wait(lambda t=threshold: len(sub.payloads) >= t, 30, "fewer than %d messages" % threshold)
        restart_with_window_full(broker, sent_unread=n == 0)
        sub.wait(lambda n=n: sub.connects >= n + 2, 15, "paho did not reconnect after restart %d" % (n + 1))
    result = node.result(60)
    assert result["complete"], node.output()
    assert result["published"] == STREAM_COUNT
    assert result["acked"] == STREAM_COUNT
    assert result["reconnects"] >= 2, result
    # At least the first restart's full window went out again after CONNACK.
    assert result["resent"] >= INFLIGHT_MAX, result
    sub.wait(lambda: set(numbers(sub.payloads)) >= set(range(STREAM_COUNT)), 20, "not every number arrived")
    if qos == 2:
        time.sleep(0.5)  # a late duplicate would arrive now
        counts = collections.Counter(numbers(sub.received()))
        duplicates = sorted(k for k, v in counts.items() if v > 1)
        assert duplicates == [], "QoS 2 delivered %d numbers more than once: %s" % (len(duplicates), duplicates[:20])
        assert sorted(counts) == list(range(STREAM_COUNT))


# ---- 2. a silent broker is found by the keepalive ---------------------------

KEEPALIVE_S = 2
SCHEDULING_MARGIN_S = 1.5


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_stopped_broker_found_within_one_and_a_half_keepalives_then_stream_resumes(
    runtime, make_broker, spawn, subscriber
):
    """SIGSTOP holds the TCP link open with nobody answering: only the
    keepalive can tell. The client must drop the link within 1.5 x keepalive
    (plus a scheduling margin: a correctness bound, not a performance figure),
    then reconnect after SIGCONT and finish the stream."""
    broker = make_broker()
    topic = "house/test/keepalive"
    count = 300
    sub = subscriber(broker.port, topic, 1, "paho-keepalive-%s" % runtime)
    node = spawn(
        runtime,
        "qos_stream.py",
        stream_args(
            broker.port,
            "node-keepalive-%s" % runtime,
            topic,
            1,
            count,
            keepalive=KEEPALIVE_S,
            interval_ms=10,
            events=1,
            connect_timeout_ms=1000,
        ),
    )
    _, ready, _ = node.wait_for("READY", 15)
    sub.wait(lambda: len(sub.payloads) >= 20, 10, "the stream did not start")
    broker.pause()
    try:
        paused_at = time.monotonic()
        found_at, index, line = node.wait_for("EVENT disconnect", 1.5 * KEEPALIVE_S + SCHEDULING_MARGIN_S + 2, ready)
        assert "KeepaliveTimeout" in line, "first disconnect was not the keepalive: " + line
        noticed = found_at - paused_at
        print("%s: dead link noticed %.2f s after SIGSTOP: %s" % (runtime, noticed, line))
        assert noticed <= 1.5 * KEEPALIVE_S + SCHEDULING_MARGIN_S, "dead link noticed only after %.2f s" % noticed
        # Not before 1.5 x keepalive of silence either (the last PUBACK came
        # at most one publish interval before the pause).
        assert noticed >= 1.5 * KEEPALIVE_S - 0.3, "dropped a live link after %.2f s" % noticed
        # Still stopped, the broker's kernel accepts the next TCP connect but
        # no CONNACK comes: that attempt must end at connect_timeout_ms.
        node.wait_for("EVENT disconnect", 3, index + 1, contains="MQTTTimeout")
    finally:
        broker.resume()
    node.wait_for("EVENT connect", 15, index)
    result = node.result(60)
    assert result["complete"], node.output()
    assert result["published"] == count and result["acked"] == count
    assert result["reconnects"] >= 1
    assert result["disconnect_reasons"].get("KeepaliveTimeout", 0) >= 1, result
    assert result["disconnect_reasons"].get("MQTTTimeout", 0) >= 1, result
    sub.wait(lambda: set(numbers(sub.payloads)) >= set(range(count)), 20, "not every number arrived")


# ---- 3. TLS -----------------------------------------------------------------


def ca_for(runtime, tls_files, name):
    # The Unix port's mbedtls is built without PEM parsing: a PEM CA raises
    # ValueError('invalid cert') at load_verify_locations, DER works.
    return tls_files[name + "_der"] if runtime == "micropython" else tls_files[name]


def parse_error(line):
    # "ERROR class=<name> oserror=<0|1> message=<text>"
    head, _, message = line.partition(" message=")
    fields = dict(part.split("=", 1) for part in head.split()[1:])
    return fields["class"], fields["oserror"] == "1", message


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_tls_publish_reaches_a_plain_subscriber(runtime, tls_broker, tls_files, spawn, subscriber):
    topic = "house/test/tls"
    sub = subscriber(tls_broker.port, topic, 1, "paho-tls-%s" % runtime)
    node = spawn(
        runtime,
        "tls_connect.py",
        ["127.0.0.1", tls_broker.tls_port, ca_for(runtime, tls_files, "ca"), "localhost", "node-tls-" + runtime, topic],
    )
    _, _, line = node.wait_for("RESULT", 20)
    assert line.startswith("RESULT ok"), node.output()
    assert node.finish(10) == 0
    sub.wait(lambda: sub.payloads, 5, "the TLS publish did not reach paho")
    assert sub.received() == ["tls-ok"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_client_certificate_gets_through_a_broker_that_requires_one(
    runtime, mutual_tls_broker, tls_files, spawn, subscriber
):
    """Mutual TLS: the client proves who it is with a certificate and key
    kept as PEM files (converted to the DER mbedtls takes on the Unix port);
    the same client without them, or with a certificate another CA signed,
    is refused with a TLSError naming the broker."""
    topic = "house/test/mtls"
    sub = subscriber(mutual_tls_broker.port, topic, 1, "paho-mtls-%s" % runtime)
    args = ["127.0.0.1", mutual_tls_broker.tls_port, ca_for(runtime, tls_files, "ca"), "localhost"]
    node = spawn(
        runtime,
        "tls_connect.py",
        args + ["node-mtls-" + runtime, topic, "cert=" + tls_files["client_cert"], "key=" + tls_files["client_key"]],
    )
    _, _, line = node.wait_for("RESULT", 20)
    assert line.startswith("RESULT ok"), node.output()
    assert node.finish(10) == 0
    sub.wait(lambda: sub.payloads, 5, "the mutual-TLS publish did not reach paho")
    assert sub.received() == ["tls-ok"]

    stranger = ["cert=" + tls_files["other_client_cert"], "key=" + tls_files["other_client_key"]]
    for refused, options in (("no-cert", []), ("stranger", stranger)):
        client = spawn(runtime, "tls_connect.py", args + ["node-%s-%s" % (refused, runtime), topic] + options)
        _, _, line = client.wait_for("ERROR", 20)
        assert client.finish(10) == 1
        name, is_oserror, message = parse_error(line)
        assert name == "TLSError" and is_oserror, (refused, line)
        assert "TLS" in message and "127.0.0.1:%d" % mutual_tls_broker.tls_port in message, (refused, line)
    assert sub.received() == ["tls-ok"]


@pytest.mark.parametrize(
    "ca, server_hostname, cause",
    [
        ("other", "localhost", ("CERTIFICATE_VERIFY_FAILED", "not correctly signed by the trusted CA")),
        ("ca", "not-the-broker.example", ("Hostname mismatch", "does not match with the expected CN")),
    ],
    ids=["wrong-ca", "wrong-hostname"],
)
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_tls_verify_failure_is_an_oserror_naming_cause_and_broker(
    runtime, ca, server_hostname, cause, tls_broker, tls_files, spawn
):
    """connect() raises OSError (what callers and poll() catch for link
    failures) whose message says it was the TLS handshake, with which broker,
    and why (CPython's / mbedtls's own words)."""
    node = spawn(
        runtime,
        "tls_connect.py",
        ["127.0.0.1", tls_broker.tls_port, ca_for(runtime, tls_files, ca), server_hostname, "node-bad-tls", "house/x"],
    )
    _, _, line = node.wait_for("ERROR", 20)
    assert node.finish(10) == 1
    name, is_oserror, message = parse_error(line)
    assert any(words in message for words in cause), line
    assert is_oserror, "%s is not an OSError: %s" % (name, line)
    assert "TLS handshake with 127.0.0.1:%d" % tls_broker.tls_port in message, line


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_tls_verify_failure_while_reconnecting_does_not_escape_poll(runtime, tls_broker, tls_files, spawn):
    """poll() never raises for link failures (client.py docstring): a broker
    whose certificate does not verify is retried with backoff and reported
    through on_disconnect, and the node's loop goes on."""
    node = spawn(
        runtime,
        "qos_stream.py",
        stream_args(
            tls_broker.tls_port,
            "node-tls-loop-" + runtime,
            "house/x",
            1,
            1,
            deadline_s=2,
            events=1,
            cafile=ca_for(runtime, tls_files, "other"),
            server_hostname="localhost",
        ),
    )
    result = node.result(20)
    assert result["connects"] == 0 and not result["complete"], node.output()
    assert sum(result["disconnect_reasons"].values()) >= 2, result  # retried, not given up


# ---- 4. the in-flight window -------------------------------------------------


def test_inflight_full_raises_after_publish_timeout_without_growing_memory(make_broker):
    broker = make_broker()
    client = MQTTClient("node-window", "127.0.0.1", broker.port, inflight_max=4, publish_timeout_ms=1000)
    client.connect()
    memory = len(client.session.mem)
    broker.pause()
    try:
        ids = [client.publish("house/test/window", "%d" % i, 1) for i in range(4)]
        assert len(set(ids)) == 4 and all(1 <= i <= 65535 for i in ids)
        started = time.monotonic()
        with pytest.raises(InflightFull) as raised:
            client.publish("house/test/window", "4", 1)
        waited = time.monotonic() - started
        assert 0.9 <= waited <= 2.0, "InflightFull after %.2f s, publish_timeout_ms=1000" % waited
        assert "4 messages" in str(raised.value) and "1000 ms" in str(raised.value), str(raised.value)
        assert client.session.inflight_count() == 4
        assert len(client.session.mem) == memory
        assert client.connected  # a full window is not a dead link
    finally:
        broker.resume()
        client.disconnect()


# ---- 5. the last will --------------------------------------------------------


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_last_will_published_when_node_process_is_killed(runtime, broker, spawn, subscriber):
    # The shared broker: ids and topics unique to this run.
    tag = "%s-%s" % (runtime, uuid.uuid4().hex[:8])
    topic = "house/test/will-%s/status" % tag
    sub = subscriber(broker.port, topic, 1, "paho-will-" + tag)
    node = spawn(
        runtime,
        "qos_stream.py",
        stream_args(
            broker.port,
            "node-will-" + tag,
            "house/x",
            1,
            0,
            will_topic=topic,
            will_payload="offline",
            linger_ms=30000,
            deadline_s=40,
            clean=1,
        ),
    )
    node.wait_for("READY", 15)
    time.sleep(0.2)
    assert sub.received() == []  # alive: no will yet
    node.proc.send_signal(signal.SIGKILL)
    assert node.finish(5) == -signal.SIGKILL
    sub.wait(lambda: sub.payloads, 5, "no last will after SIGKILL")
    assert sub.received() == ["offline"]


# ---- 6. errors that name their cause (CPython, no paho) ----------------------


def test_wrong_ca_error_names_tls_handshake_broker_and_certificate(tls_broker, tls_files):
    client = MQTTClient(
        "node-wrong-ca",
        "127.0.0.1",
        tls_broker.tls_port,
        ssl_context=tls_context(cafile=tls_files["other"]),
        server_hostname="localhost",
        connect_timeout_ms=5000,
    )
    with pytest.raises(OSError) as raised:
        client.connect()
    message = str(raised.value)
    assert "TLS handshake with 127.0.0.1:%d failed" % tls_broker.tls_port in message, message
    assert "CERTIFICATE_VERIFY_FAILED" in message and "certificate verify failed" in message, message
    # The ssl module's own exception stays reachable for callers that want it.
    assert isinstance(raised.value.__context__, ssl.SSLCertVerificationError)
    assert not client.connected
    assert client.last_error is raised.value


def test_certificate_failure_is_not_reported_as_an_errno(tls_broker, tls_files):
    """ssl.SSLError's first argument is an OpenSSL error code (1 =
    SSL_ERROR_SSL), not an errno. Passed on as an errno, a certificate that
    does not verify becomes PermissionError [Errno 1] (EPERM), which a caller
    branching on errno reads as something else entirely."""
    client = MQTTClient(
        "node-wrong-ca-errno",
        "127.0.0.1",
        tls_broker.tls_port,
        ssl_context=tls_context(cafile=tls_files["other"]),
        server_hostname="localhost",
        connect_timeout_ms=5000,
    )
    with pytest.raises(OSError) as raised:
        client.connect()
    assert not isinstance(raised.value, PermissionError), "%s: %s" % (type(raised.value).__name__, raised.value)
    assert raised.value.errno != errno.EPERM, str(raised.value)


def test_refused_connect_names_reason_and_poll_keeps_retrying(broker):
    client = MQTTClient(
        "node-refused-" + uuid.uuid4().hex[:8], "127.0.0.1", broker.auth_port, reconnect_min_ms=50, reconnect_max_ms=200
    )
    with pytest.raises(ConnectRefused) as raised:
        client.connect()
    assert raised.value.return_code == 5
    assert "not authorized" in str(raised.value) and "CONNACK code 5" in str(raised.value)
    refusals = []
    client.on_disconnect = lambda c, userdata, error: refusals.append(error)
    client.start_reconnecting()
    deadline = time.monotonic() + 5
    while len(refusals) < 3 and time.monotonic() < deadline:
        client.poll(100)  # must not raise
    assert len(refusals) >= 3
    assert all(isinstance(e, ConnectRefused) and e.return_code == 5 for e in refusals)
    assert not client.connected and client.reconnect_in_ms() >= 0


def test_pem_ca_works_on_the_unix_port_through_netcompat(tls_broker, tls_files):
    """netcompat.tls_context converts a PEM CA to the DER the Unix port's mbedtls takes."""
    result = micropython.run(
        ["tests/scripts/tls_connect.py", "127.0.0.1", str(tls_broker.tls_port), tls_files["ca"], "localhost",
         "node-pem", "house/test/pem"],
        timeout=30,
    )
    assert "RESULT ok" in result.stdout, result.stdout + result.stderr


# Two ways a TLS handshake can stall: a link that accepts TCP and then says
# nothing (a black hole in front of the listener), and a broker whose bytes
# arrive one at a time, 20 ms apart, so that every read gets a byte in time
# and only a deadline on the whole handshake ends it (mbedtls's blocking
# handshake applies the timeout per read: 28 s for this one).
STALLED_HANDSHAKES = {
    "hangs": lambda proxy: proxy.black_hole(True),
    "trickles": lambda proxy: proxy.fragment(True, "down", pause_ms=20),
}


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("stall", sorted(STALLED_HANDSHAKES))
def test_tls_handshake_that_stalls_ends_at_the_connect_deadline(runtime, stall, tls_broker, tls_files, spawn):
    """The handshake gives up at connect_timeout_ms with MQTTTimeout,
    instead of hanging the board."""
    from faults.proxy import FaultProxy

    proxy = FaultProxy(tls_broker.tls_port).start()
    try:
        STALLED_HANDSHAKES[stall](proxy)
        started = time.monotonic()
        node = spawn(
            runtime,
            "tls_connect.py",
            ["127.0.0.1", proxy.port, ca_for(runtime, tls_files, "ca"), "localhost", "node-%s-%s" % (stall, runtime),
             "house/test/stall", "connect_timeout_ms=1500"],
        )
        _, _, line = node.wait_for("ERROR", 20)
        took = time.monotonic() - started
        print("%s: TLS handshake that %s given up after %.2f s (deadline 1.5 s)" % (runtime, stall, took))
        node.finish(10)
    finally:
        proxy.close()
    kind, is_oserror, message = parse_error(line)
    assert kind == "MQTTTimeout" and is_oserror, line
    assert "TLS handshake" in message, line
    # Bounded by the deadline (plus process start-up), not hung.
    assert 1.4 <= took <= 8, took


# ---- TCP_NODELAY, and Nagle when asked for -----------------------------------


@pytest.mark.parametrize("nodelay", [True, False])
def test_nodelay_sets_the_socket_option_and_either_way_messages_go_through(broker, subscriber, nodelay):
    import socket

    topic = "house/test/nodelay-%s" % nodelay
    sub = subscriber(broker.port, topic, 1, "paho-nodelay-%s" % nodelay)
    client = MQTTClient("nodelay-%s" % nodelay, "127.0.0.1", broker.port, nodelay=nodelay)
    client.connect()
    try:
        option = client._stream.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert bool(option) is nodelay
        for i in range(20):  # back to back: with Nagle on, several share a segment
            client.publish(topic, b"%d" % i, 0)
        client.publish(topic, b"last", 1)
        assert client.wait_for_acks(5000)
        sub.wait(lambda: len(sub.messages) == 21, 10, "not every message arrived")
        assert sub.payloads == [str(i) for i in range(20)] + ["last"]
    finally:
        client.disconnect()
