"""A socket write that blocks: the fault proxy stops reading what the client
sends (a broker or route that stops draining), the kernel buffers fill, and
the client's non-blocking write would block. MQTTClient._write_all waits for
room at most io_timeout_ms, then raises MQTTTimeout ("socket write blocked"):
the link is dropped and reconnected with backoff, and at QoS 1 nothing is
lost. Run on CPython and on the MicroPython Unix port (tests/scripts/
qos_stream.py as the client); paho-mqtt, straight on mosquitto, is the witness.

Loopback buffers are large: the proxy reads the client through a small
SO_RCVBUF and the client writes through a small SO_SNDBUF (about an ESP32
lwIP's send buffer), so the stalled path holds some 20 KB, while the client
has far more to send: 32 in-flight messages of 4 KB at QoS 1."""

import os
import socket
import time
import uuid

import pytest

from faults.proxy import FaultProxy
from faults.support import RUNTIMES, Subscriber, stream_args, tally

QOS_STREAM = os.path.join("tests", "scripts", "qos_stream.py")
IO_TIMEOUT_MS = 1500
PAYLOAD_SIZE = 4096
INFLIGHT_MAX = 32
SNDBUF = 4096  # Linux doubles it: 8 KB
RCVBUF = 4096
COUNT = 300
INTERVAL_MS = 10


@pytest.fixture
def proxy(broker):
    """A FaultProxy in front of the shared broker, reading clients through a small buffer."""
    with FaultProxy(broker.port, rcvbuf=RCVBUF) as p:
        yield p


@pytest.fixture
def subscriber():
    made = []

    def make(port, topic, qos):
        s = Subscriber(port, topic, qos, unique("paho-stall"))
        made.append(s)
        s.wait_subscribed()
        return s

    yield make
    for s in made:
        s.close()


def unique(name):
    return "%s-%s" % (name, uuid.uuid4().hex[:8])


def test_stall_holds_bytes_back_and_loses_none():
    """The proxy mode itself, with a plain TCP server behind it: while up is
    stalled the sender's writes stop being taken (its buffers are full) and
    nothing reaches the server; lifted, every byte arrives, in order."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with FaultProxy(server.getsockname()[1], rcvbuf=RCVBUF) as proxy:
            sender = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
            receiver, _ = server.accept()
            with sender, receiver:
                sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
                proxy.stall(True)
                sender.setblocking(False)
                sent = bytearray()
                for i in range(10000):  # ~4 MB at most; blocks within ~40 KB
                    chunk = (b"%07d," % i) * 128
                    try:
                        n = sender.send(chunk)
                    except BlockingIOError:
                        break
                    sent += chunk[:n]
                    if n < len(chunk):
                        break
                else:
                    pytest.fail("%d bytes written into a stalled link without blocking" % len(sent))
                receiver.settimeout(0.3)
                with pytest.raises(TimeoutError):
                    receiver.recv(1)
                print("held back: %d bytes" % len(sent))
                proxy.stall(False)
                sender.close()
                got = bytearray()
                receiver.settimeout(5)
                for _ in range(100000):
                    data = receiver.recv(65536)
                    if not data:
                        break
                    got += data
                assert got == sent, "sent %d bytes, %d arrived" % (len(sent), len(got))


@pytest.mark.parametrize("qos", [1, 0])
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_blocked_write_ends_at_io_timeout_then_reconnects(runtime, qos, broker, proxy, spawn, subscriber):
    """A stream of 4 KB messages; the proxy stops draining the client. The
    write that blocks ends at io_timeout_ms with MQTTTimeout "socket write
    blocked" (it does not hang), the stall is lifted, the client reconnects
    and finishes the stream. At QoS 1 every message arrives (duplicates
    allowed) with first arrivals in order; at QoS 0 none twice, and the
    stream's end arrives."""
    topic = "house/faults/%s" % unique("stall%d-%s" % (qos, runtime))
    sub = subscriber(broker.port, topic, qos)
    node = spawn(
        runtime,
        QOS_STREAM,
        stream_args(
            proxy.port,
            unique("node-stall"),
            topic,
            qos,
            COUNT,
            interval_ms=INTERVAL_MS,
            payload_size=PAYLOAD_SIZE,
            max_packet=PAYLOAD_SIZE + 128,
            tx_size=PAYLOAD_SIZE + 512,
            inflight_max=INFLIGHT_MAX,
            io_timeout_ms=IO_TIMEOUT_MS,
            sndbuf=SNDBUF,
            deadline_s=40,
            events=1,
        ),
    )
    _, ready, _ = node.wait_for("READY", 15)
    sub.wait(lambda: len(sub.numbers(topic)) >= 30, 15, what="the stream did not start")
    proxy.stall(True)
    stalled = time.monotonic()
    try:
        # Blocked writes begin within ~20 KB (a few publishes) of the stall,
        # then io_timeout_ms. Without that deadline the client would wait forever.
        found = node.find("EVENT disconnect", IO_TIMEOUT_MS / 1000 + 6.5, ready)
    finally:
        proxy.stall(False)
    assert found is not None, "no disconnect within %.1f s of the stall: the blocked write did not end\n%s" % (
        IO_TIMEOUT_MS / 1000 + 6.5,
        node.output(),
    )
    dropped_at, index, line = found
    took = dropped_at - stalled
    connected_at, _, _ = node.wait_for("EVENT connect", 15, index)
    print(
        "%s QoS %d: stall -> disconnect %.2f s (io_timeout %.1f s), disconnect -> reconnect %.2f s, "
        "stall -> reconnect %.2f s: %s"
        % (runtime, qos, took, IO_TIMEOUT_MS / 1000, connected_at - dropped_at, connected_at - stalled, line)
    )
    assert "MQTTTimeout" in line and "socket write blocked for %d ms" % IO_TIMEOUT_MS in line, line
    assert 1.4 <= took <= 8, "disconnect %.2f s after the stall" % took
    result = node.result(45)
    print(runtime, "QoS", qos, result, proxy.stats())
    assert result["complete"], node.output()
    assert result["published"] == COUNT, result
    assert result["disconnect_reasons"].get("MQTTTimeout", 0) >= 1, result
    if qos == 1:
        assert result["acked"] == COUNT, result
        sub.wait(lambda: set(sub.numbers(topic)) >= set(range(COUNT)), 20)
    else:
        sub.wait(lambda: COUNT - 1 in sub.numbers(topic), 20)
    counts = tally(sub.numbers(topic), COUNT)
    print("paho:", counts)
    assert counts["unexpected"] == 0, counts
    if qos == 1:
        assert counts["lost"] == 0, counts
        assert counts["in_order"], "first arrivals out of publish order: %s" % counts
    else:
        assert COUNT - 1 in sub.numbers(topic), "the stream's end never arrived: %s" % counts
        assert counts["duplicated"] == 0, counts
