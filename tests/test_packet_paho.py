"""The codec against independent implementations (CPython only):

- paho-mqtt 2.2 builds packets (captured from what a paho client writes to a
  listening socket on 127.0.0.1); they decode here to the fields paho was
  given, and paho accepts the broker-side packets encoded here (CONNACK,
  SUBACK, UNSUBACK, PUBLISH, PUBREC, PUBREL, PINGRESP...);
- mosquitto accepts the packets encoded here over a raw socket, and a paho
  subscriber receives what they publish with the right topic, payload, QoS
  and retain flag."""

import queue
import socket
import threading
import uuid

import paho.mqtt.client as paho
import pytest

from mqtt.broker_codec import (
    BrokerPacket,
    decode,
    encode_connack,
    encode_pingresp,
    encode_suback,
    iter_filters,
    iter_subscriptions,
)
from mqtt.packet import (
    CONNACK,
    CONNECT,
    DISCONNECT,
    PINGREQ,
    PINGRESP,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    SUBACK,
    SUBSCRIBE,
    UNSUBACK,
    UNSUBSCRIBE,
    encode_ack,
    encode_connect,
    encode_disconnect,
    encode_pingreq,
    encode_publish,
    encode_subscribe,
    encode_unsubscribe,
)

TIMEOUT_S = 5


class Decoded:
    """One packet read off a socket: the Packet record and its fields as bytes."""

    def __init__(self, data):
        self.data = data
        self.packet = BrokerPacket()
        assert decode(data, 0, len(data), self.packet) == len(data)

    def __getattr__(self, name):
        p = self.packet
        if hasattr(p, name + "_length"):
            length = getattr(p, name + "_length")
            start = getattr(p, name + "_start")
            return None if length < 0 else bytes(self.data[start : start + length])
        return getattr(p, name)

    @property
    def subscriptions(self):
        return list(iter_subscriptions(self.data, self.packet))

    @property
    def filters(self):
        return list(iter_filters(self.data, self.packet))

    @property
    def codes(self):
        return list(self.data[self.packet.codes_start : self.packet.codes_start + self.packet.codes_length])


class Wire:
    """A socket, read packet by packet with our decoder into one receive buffer."""

    def __init__(self, sock):
        self.sock = sock
        sock.settimeout(TIMEOUT_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray(1 << 20)
        self.start = 0
        self.end = 0
        self.packet = BrokerPacket()

    def read(self):
        while True:
            n = decode(self.buf, self.start, self.end, self.packet)
            if n > 0:
                data = bytearray(self.buf[self.start : self.start + n])
                self.start += n
                return Decoded(data)
            if self.start == self.end:
                self.start = self.end = 0
            got = self.sock.recv_into(memoryview(self.buf)[self.end :])
            if not got:
                raise ConnectionError("peer closed the connection")
            self.end += got

    def expect(self, packet_type):
        d = self.read()
        assert d.type == packet_type, "expected type %d, got %r" % (packet_type, d.packet)
        return d

    def send(self, encoder, *args, **kwargs):
        buf = bytearray(1 << 20)
        n = encoder(buf, 0, *args, **kwargs)
        self.sock.sendall(buf[:n])

    def close(self):
        self.sock.close()


def _wait(events, what):
    try:
        return events.get(timeout=TIMEOUT_S)
    except queue.Empty:
        raise AssertionError("paho never reported %s" % what) from None


# ---- paho's packets, decoded here; ours, accepted by paho --------------------------


@pytest.fixture
def paho_and_wire():
    """A paho client connected to a socket we listen on; our side is a Wire."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    events = queue.Queue()
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="paho-codec", protocol=paho.MQTTv311)
    client.username_pw_set("user", "pässword")
    client.will_set("house/lab/node/status", b"offline", qos=1, retain=True)
    client.on_connect = lambda c, u, flags, rc, props: events.put(("connect", rc.value, flags.session_present))
    client.on_publish = lambda c, u, mid, rc, props: events.put(("publish", mid))
    client.on_subscribe = lambda c, u, mid, codes, props: events.put(("subscribe", mid, [r.value for r in codes]))
    client.on_unsubscribe = lambda c, u, mid, codes, props: events.put(("unsubscribe", mid))
    client.on_message = lambda c, u, m: events.put(("message", m.topic, m.payload, m.qos, m.retain, m.mid))
    client.connect("127.0.0.1", server.getsockname()[1], keepalive=42)
    client.loop_start()
    conn, _ = server.accept()
    server.close()
    wire = Wire(conn)
    yield client, wire, events
    client.loop_stop()
    wire.close()


def test_paho_connect_decodes_to_the_fields_paho_was_given_and_paho_accepts_our_connack(paho_and_wire):
    client, wire, events = paho_and_wire
    c = wire.expect(CONNECT)
    assert (c.protocol_level, c.keepalive, c.clean_session) == (4, 42, True)
    assert c.client_id == b"paho-codec"
    assert c.username == b"user" and c.password == "pässword".encode()
    assert c.will_flag and (c.will_qos, c.will_retain) == (1, True)
    assert c.will_topic == b"house/lab/node/status" and c.will_payload == b"offline"
    wire.send(encode_connack, True, 0)
    assert _wait(events, "connect") == ("connect", 0, True)


def test_paho_publishes_decode_here_and_our_acks_complete_them(paho_and_wire):
    client, wire, events = paho_and_wire
    wire.expect(CONNECT)
    wire.send(encode_connack, False, 0)
    _wait(events, "connect")
    cases = [
        ("house/kitchen/temperature", b"21.5", 0, False),
        ("house/kitchen/temperature", b"21.6", 1, True),
        ("maison/séjour/température", b"", 2, False),
        ("big", bytes(range(256)) * 800, 1, False),  # 204800 bytes: a 3-byte remaining length
        ("/", b"\x00", 0, True),
    ]
    for topic, payload, qos, retain in cases:
        info = client.publish(topic, payload, qos=qos, retain=retain)
        p = wire.expect(PUBLISH)
        assert (p.topic, p.payload, p.qos, p.retain, p.dup) == (topic.encode(), payload, qos, retain, False)
        if qos == 0:
            assert p.packet_id == 0
            continue
        assert p.packet_id == info.mid
        if qos == 1:
            wire.send(encode_ack, PUBACK, p.packet_id)
        else:
            wire.send(encode_ack, PUBREC, p.packet_id)
            rel = wire.expect(PUBREL)
            assert (rel.flags, rel.packet_id) == (2, p.packet_id)
            wire.send(encode_ack, PUBCOMP, p.packet_id)
        while True:  # QoS 0 publishes are reported too; wait for this one
            event = _wait(events, "publish")
            if event == ("publish", info.mid):
                break


def test_paho_subscribe_unsubscribe_ping_disconnect_decode_here(paho_and_wire):
    client, wire, events = paho_and_wire
    wire.expect(CONNECT)
    wire.send(encode_connack, False, 0)
    _wait(events, "connect")
    _, mid = client.subscribe([("house/+/set/#", 1), ("$SYS/#", 0), ("#", 2)])
    s = wire.expect(SUBSCRIBE)
    assert (s.flags, s.packet_id) == (2, mid)
    assert s.subscriptions == [(b"house/+/set/#", 1), (b"$SYS/#", 0), (b"#", 2)]
    wire.send(encode_suback, mid, [1, 0x80, 2])
    assert _wait(events, "subscribe") == ("subscribe", mid, [1, 0x80, 2])

    _, mid = client.unsubscribe(["house/+/set/#", "#"])
    u = wire.expect(UNSUBSCRIBE)
    assert (u.flags, u.packet_id, u.filters) == (2, mid, [b"house/+/set/#", b"#"])
    wire.send(encode_ack, UNSUBACK, mid)
    assert _wait(events, "unsubscribe") == ("unsubscribe", mid)

    client._send_pingreq()  # paho's own PINGREQ builder; its timer would take the keepalive
    wire.expect(PINGREQ)
    wire.send(encode_pingresp)

    client.disconnect()
    d = wire.expect(DISCONNECT)
    assert d.length == 2


def test_paho_receives_our_publishes_and_acks_them(paho_and_wire):
    client, wire, events = paho_and_wire
    wire.expect(CONNECT)
    wire.send(encode_connack, False, 0)
    _wait(events, "connect")
    client.subscribe("house/#", 2)
    s = wire.expect(SUBSCRIBE)
    wire.send(encode_suback, s.packet_id, [2])
    _wait(events, "subscribe")

    wire.send(encode_publish, "house/kitchen/temperature", b"21.5", 0, True)
    assert _wait(events, "message")[1:5] == ("house/kitchen/temperature", b"21.5", 0, True)

    wire.send(encode_publish, "house/kitchen/humidity", b"40", 1, False, True, 17)  # a resend: DUP
    assert _wait(events, "message")[1:6] == ("house/kitchen/humidity", b"40", 1, False, 17)
    ack = wire.expect(PUBACK)
    assert ack.packet_id == 17

    wire.send(encode_publish, "house/ünïcode", bytearray(b"payload, part not sent"), 2, False, False, 65535, 7)
    rec = wire.expect(PUBREC)
    assert rec.packet_id == 65535
    wire.send(encode_ack, PUBREL, 65535)
    assert _wait(events, "message")[1:6] == ("house/ünïcode", b"payload", 2, False, 65535)
    comp = wire.expect(PUBCOMP)
    assert comp.packet_id == 65535


# ---- our packets, accepted by mosquitto ---------------------------------------------


class Received:
    """A paho subscriber on the broker, collecting (topic, payload, qos, retain)."""

    def __init__(self, address, topic_filter):
        self.messages = queue.Queue()
        self.subscribed = threading.Event()
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id="sub-" + uuid.uuid4().hex[:8], protocol=paho.MQTTv311
        )
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic_filter, 2)
        self.client.on_subscribe = lambda c, u, mid, codes, p: self.subscribed.set()
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload, m.qos, m.retain))
        self.client.connect(*address)
        self.client.loop_start()
        assert self.subscribed.wait(TIMEOUT_S), "the paho subscriber never subscribed"

    def next(self):
        try:
            return self.messages.get(timeout=TIMEOUT_S)
        except queue.Empty:
            raise AssertionError("the paho subscriber received nothing") from None

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def _raw_connect(address, client_id, **kwargs):
    wire = Wire(socket.create_connection(address, timeout=TIMEOUT_S))
    wire.send(encode_connect, client_id, 30, **kwargs)
    ack = wire.expect(CONNACK)
    assert (ack.return_code, ack.session_present) == (0, False)
    return wire


def test_mosquitto_accepts_our_publishes_and_paho_receives_them(broker):
    prefix = "codec-" + uuid.uuid4().hex[:8]
    sub = Received(broker.address, prefix + "/#")
    wire = _raw_connect(broker.address, prefix + "-pub")
    try:
        wire.send(encode_publish, prefix + "/q0", b"21.5")
        assert sub.next() == (prefix + "/q0", b"21.5", 0, False)

        wire.send(encode_publish, prefix + "/q1", "ünïcode payload", 1, False, False, 1)
        assert wire.expect(PUBACK).packet_id == 1
        assert sub.next() == (prefix + "/q1", "ünïcode payload".encode(), 1, False)

        wire.send(encode_publish, prefix + "/q2", bytes(70000), 2, False, False, 65535)
        assert wire.expect(PUBREC).packet_id == 65535
        wire.send(encode_ack, PUBREL, 65535)
        assert wire.expect(PUBCOMP).packet_id == 65535
        assert sub.next() == (prefix + "/q2", bytes(70000), 2, False)

        scratch = bytearray(b"-3.25 and stale bytes")
        wire.send(encode_publish, prefix + "/retained", scratch, 1, True, False, 2, 5)
        assert wire.expect(PUBACK).packet_id == 2
        # A live subscriber sees retain 0 (3.1.1 section 3.3.1.3); a new one gets the retained copy.
        assert sub.next() == (prefix + "/retained", b"-3.25", 1, False)
        late = Received(broker.address, prefix + "/retained")
        try:
            assert late.next() == (prefix + "/retained", b"-3.25", 1, True)
        finally:
            late.close()
        wire.send(encode_publish, prefix + "/retained", b"", 0, True)  # an empty retained message clears it

        wire.send(encode_pingreq)
        wire.expect(PINGRESP)
        wire.send(encode_disconnect)
        with pytest.raises(ConnectionError):
            wire.read()  # the broker closes after DISCONNECT
    finally:
        wire.close()
        sub.close()


def test_mosquitto_accepts_our_subscribe_and_delivers_paho_publishes(broker):
    prefix = "codec-" + uuid.uuid4().hex[:8]
    wire = _raw_connect(broker.address, prefix + "-sub", clean_session=False)
    try:
        wire.send(encode_subscribe, 9, [(prefix + "/+/q0", 0), (prefix + "/q1/#", 1), (prefix + "/q2", 2)])
        ack = wire.expect(SUBACK)
        assert (ack.packet_id, ack.codes) == (9, [0, 1, 2])
        publisher = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        publisher.connect(*broker.address)
        publisher.loop_start()
        try:
            publisher.publish(prefix + "/x/q0", b"zero", 0)
            p = wire.expect(PUBLISH)
            assert (p.topic, p.payload, p.qos, p.retain) == ((prefix + "/x/q0").encode(), b"zero", 0, False)

            publisher.publish(prefix + "/q1/a/b", b"one", 1)
            p = wire.expect(PUBLISH)
            assert (p.topic, p.payload, p.qos) == ((prefix + "/q1/a/b").encode(), b"one", 1)
            wire.send(encode_ack, PUBACK, p.packet_id)

            publisher.publish(prefix + "/q2", b"two", 2)
            p = wire.expect(PUBLISH)
            assert (p.topic, p.payload, p.qos) == ((prefix + "/q2").encode(), b"two", 2)
            wire.send(encode_ack, PUBREC, p.packet_id)
            rel = wire.expect(PUBREL)
            assert rel.packet_id == p.packet_id
            wire.send(encode_ack, PUBCOMP, p.packet_id)
        finally:
            publisher.disconnect()
            publisher.loop_stop()

        wire.send(encode_unsubscribe, 10, [prefix + "/+/q0", prefix + "/q2"])
        assert wire.expect(UNSUBACK).packet_id == 10
        wire.send(encode_pingreq)
        wire.expect(PINGRESP)  # nothing else arrived in between: the QoS 2 flow was complete
        wire.send(encode_disconnect)
    finally:
        wire.close()


def test_our_will_is_published_when_the_link_drops(broker):
    prefix = "codec-" + uuid.uuid4().hex[:8]
    sub = Received(broker.address, prefix + "/#")
    try:
        wire = _raw_connect(
            broker.address,
            prefix + "-will",
            username="user",
            password=b"\x00secret",
            will_topic=prefix + "/node/status",
            will_payload=b"offline",
            will_qos=1,
            will_retain=False,
        )
        wire.sock.shutdown(socket.SHUT_RDWR)  # no DISCONNECT: the broker must send the will
        wire.close()
        assert sub.next() == (prefix + "/node/status", b"offline", 1, False)
    finally:
        sub.close()


def test_mosquitto_drops_what_the_decoder_also_refuses(broker):
    # A cross-check in the other direction: a PUBLISH with a wildcard topic,
    # which our decoder refuses, is refused by mosquitto too (it closes the link).
    wire = _raw_connect(broker.address, "codec-" + uuid.uuid4().hex[:8])
    try:
        wire.sock.sendall(b"\x30\x05\x00\x03a/#")
        with pytest.raises(ConnectionError):  # not TimeoutError: the broker closes the link
            wire.read()
    finally:
        wire.close()
