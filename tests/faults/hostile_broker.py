"""A tiny broker-side peer, built on lib/mqtt/broker_codec (the codec's broker half),
that misbehaves on purpose (CPython, threads, 127.0.0.1 only).

    broker = HostileBroker(SCENARIOS["invalid_utf8_topic"]).start()
    ... a client connects to 127.0.0.1:broker.port ...
    broker.wait(lambda: len(broker.connections) >= 2, 5)
    broker.close()

Every connection is served by one reader thread: it decodes what the client
sends (broker_codec.decode, on the same code the client decodes with), records it, and
answers as a plain broker would (CONNACK 0, PUBACK / PUBREC / PUBCOMP,
PINGRESP, SUBACK, UNSUBACK) unless the scenario says otherwise. A scenario
is a Scenario(name, act, connack=0): after the CONNECT of each connection,
CONNACK `connack` is sent (None: the scenario sends its own) and
act(connection) runs in its own thread; act looks at connection.index (0 for
the first connection) to misbehave on the first one only and let the
reconnect through.
"""

import socket
import threading
import time
from array import array

from mqtt.broker_codec import (
    BrokerPacket,
    decode,
    encode_connack,
    encode_pingresp,
    encode_suback,
    iter_subscriptions,
)
from mqtt.packet import (
    CONNECT,
    DISCONNECT,
    PINGREQ,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    SUBSCRIBE,
    UNSUBACK,
    UNSUBSCRIBE,
    ProtocolError,
    encode_ack,
    encode_connect,
    encode_pingreq,
    encode_publish,
    encode_subscribe,
    encode_unsubscribe,
)

_ACCEPT_POLL_S = 0.1
_RECV_SIZE = 65536
_LIFETIME_S = 60  # no connection outlives this, whatever the client does
FLOOD_COUNT = 3000  # of each QoS, 0 and 1


_ACK_TYPES = (PUBACK, PUBREC, PUBREL, PUBCOMP)


class Received:
    """One packet the client sent (other than the four acks, which are kept
    as bare ids): type, flags, packet id, and for CONNECT and PUBLISH the
    interesting fields."""

    __slots__ = (
        "type",
        "flags",
        "packet_id",
        "dup",
        "qos",
        "client_id",
        "clean_session",
        "topic",
        "payload",
        "subscriptions",
    )

    def __init__(self, buf, packet):
        self.type = packet.type
        self.flags = packet.flags
        self.packet_id = packet.packet_id
        self.dup = packet.dup
        self.qos = packet.qos
        self.client_id = None
        self.clean_session = None
        self.topic = None
        self.payload = None
        if packet.type == CONNECT:
            start = packet.client_id_start
            self.client_id = bytes(buf[start : start + packet.client_id_length]).decode()
            self.clean_session = packet.clean_session
        elif packet.type == PUBLISH:
            self.topic = bytes(buf[packet.topic_start : packet.topic_start + packet.topic_length]).decode()
            self.payload = bytes(buf[packet.payload_start : packet.payload_start + packet.payload_length])
        self.subscriptions = list(iter_subscriptions(buf, packet)) if packet.type == SUBSCRIBE else None

    def __repr__(self):
        return "<Received type=%d id=%d dup=%s>" % (self.type, self.packet_id, self.dup)


class Connection:
    def __init__(self, broker, index, sock):
        self.broker = broker
        self.index = index
        self.sock = sock
        self.received = []
        # Ack ids as 16-bit ints, not objects: a flood's thousands of PUBACKs
        # must not weigh on the tracemalloc figures of the client under test.
        self.acks = {kind: array("H") for kind in _ACK_TYPES}
        self.auto_ack = True  # answer PUBLISH, PUBREL as a broker would
        self.error = None  # a ProtocolError in what the client sent
        self.closed = threading.Event()
        self.connected = threading.Event()  # CONNECT received
        self._send_lock = threading.Lock()
        self._changed = threading.Condition()

    # ---- what the scenarios call ---------------------------------------

    def sending(self):
        """Holds back every other send (acks, PINGRESP) while a scenario
        writes one packet in pieces, as a broker's single output stream does."""
        return self._send_lock

    def send(self, data):
        """Send bytes; False if the client is gone."""
        try:
            with self._send_lock:
                self.sock.sendall(data)
            return True
        except OSError:
            return False

    def connack(self, return_code=0, session_present=False):
        buf = bytearray(4)
        encode_connack(buf, 0, session_present, return_code)
        return self.send(buf)

    def close(self):
        if not self.closed.is_set():
            self.closed.set()
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()

    def count(self, packet_type, qos=None):
        with self._changed:
            if packet_type in self.acks:
                return len(self.acks[packet_type])
            return sum(1 for r in self.received if r.type == packet_type and (qos is None or r.qos == qos))

    def of_type(self, packet_type):
        """Received records of that type (not for acks: see ack_ids)."""
        with self._changed:
            return [r for r in self.received if r.type == packet_type]

    def ack_ids(self, packet_type):
        """Packet ids of the PUBACK / PUBREC / PUBREL / PUBCOMP received, in order."""
        with self._changed:
            return list(self.acks[packet_type])

    def wait(self, condition, timeout_s):
        """True once condition() holds, False at the timeout or when closed."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0 or self.closed.is_set():
                    return condition()
                self._changed.wait(min(left, 0.05))
            return True

    # ---- the reader thread ---------------------------------------------

    def serve(self):
        buf = bytearray()
        packet = BrokerPacket()
        self.sock.settimeout(0.1)
        deadline = time.monotonic() + _LIFETIME_S
        try:
            while not self.closed.is_set() and time.monotonic() < deadline:
                try:
                    data = self.sock.recv(_RECV_SIZE)
                except TimeoutError:
                    continue
                if not data:
                    break
                buf += data
                while buf:
                    n = decode(buf, 0, len(buf), packet)
                    if n < 0:
                        break
                    self._handle(buf, packet)
                    del buf[:n]
        except ProtocolError as e:
            self.error = e
        except OSError:
            pass
        finally:
            self.close()
            with self._changed:
                self._changed.notify_all()

    def _handle(self, buf, packet):
        kind = packet.type
        record = None
        with self._changed:
            if kind in self.acks:
                self.acks[kind].append(packet.packet_id)
            else:
                record = Received(buf, packet)
                self.received.append(record)
            self._changed.notify_all()
        if kind == CONNECT:
            self.broker._on_connect(self)
        elif kind == PUBLISH and self.auto_ack and packet.qos:
            self._ack(PUBACK if packet.qos == 1 else PUBREC, packet.packet_id)
        elif kind == PUBREL and self.auto_ack:
            self._ack(PUBCOMP, packet.packet_id)
        elif kind == PINGREQ:
            out = bytearray(2)
            encode_pingresp(out, 0)
            self.send(out)
        elif kind == SUBSCRIBE:
            out = bytearray(260)
            n = encode_suback(out, 0, packet.packet_id, [qos for _, qos in record.subscriptions])
            self.send(out[:n])
        elif kind == UNSUBSCRIBE:
            self._ack(UNSUBACK, packet.packet_id)
        elif kind == DISCONNECT:
            self.close()

    def _ack(self, packet_type, packet_id):
        out = bytearray(4)
        encode_ack(out, 0, packet_type, packet_id)
        self.send(out)


class Scenario:
    def __init__(self, name, act=None, connack=0, expect=None):
        """expect: what the client should see, for the tests: a dict with
        "error" (exception class name of the first disconnect, None for
        none), "message" (a substring of it), "reconnect" (a second CONNECT
        expected)."""
        self.name = name
        self.act = act
        self.connack = connack
        self.expect = expect or {}


class HostileBroker:
    def __init__(self, scenario):
        self.scenario = scenario
        self.port = None
        self.connections = []
        self.errors = []  # exceptions raised by scenario acts
        self._listener = None
        self._threads = []
        self._stopping = threading.Event()
        self._changed = threading.Condition()

    def start(self):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(_ACCEPT_POLL_S)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._thread(self._accept_loop, "hostile-accept")
        return self

    def close(self):
        self._stopping.set()
        for connection in list(self.connections):
            connection.close()
        for thread in list(self._threads):
            thread.join(5)
        if self._listener is not None:
            self._listener.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def _thread(self, target, name, *args):
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def _accept_loop(self):
        deadline = time.monotonic() + _LIFETIME_S
        while not self._stopping.is_set() and time.monotonic() < deadline:
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._changed:
                connection = Connection(self, len(self.connections), sock)
                self.connections.append(connection)
                self._changed.notify_all()
            self._thread(connection.serve, "hostile-conn-%d" % connection.index)

    def _on_connect(self, connection):
        if self.scenario.connack is not None:
            connection.connack(self.scenario.connack)
        connection.connected.set()
        with self._changed:
            self._changed.notify_all()
        if self.scenario.act is not None:
            self._thread(self._run_act, "hostile-act-%d" % connection.index, connection)

    def _run_act(self, connection):
        try:
            self.scenario.act(connection)
        except Exception as e:  # noqa: BLE001 - a broken scenario must fail the test, not vanish
            self.errors.append(e)

    def connects(self):
        """CONNECT packets seen, over all connections."""
        return sum(c.count(CONNECT) for c in list(self.connections))

    def client_ids(self):
        return [r.client_id for c in list(self.connections) for r in c.of_type(CONNECT)]

    def wait(self, condition, timeout_s):
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    return condition()
                self._changed.wait(min(left, 0.05))
            return True


# ---- packets the scenarios send -----------------------------------------------


def publish_bytes(topic, payload, qos=0, packet_id=0, dup=False):
    buf = bytearray(16 + len(topic) + len(payload))
    n = encode_publish(buf, 0, topic, payload, qos, False, dup, packet_id)
    return bytes(buf[:n])


def raw_publish(topic_bytes, payload=b"x", qos=0, packet_id=1):
    """A PUBLISH whose topic bytes are not checked (the encoder would not
    check them either, but this makes the intent plain)."""
    body = bytes([len(topic_bytes) >> 8, len(topic_bytes) & 0xFF]) + topic_bytes
    if qos:
        body += bytes([packet_id >> 8, packet_id & 0xFF])
    body += payload
    return bytes([0x30 | (qos << 1), len(body)]) + body


def ack_bytes(packet_type, packet_id):
    buf = bytearray(4)
    encode_ack(buf, 0, packet_type, packet_id)
    return bytes(buf)


def _encoded(encoder, *args):
    buf = bytearray(256)
    n = encoder(buf, 0, *args)
    return bytes(buf[:n])


def client_only_packets():
    """Packets that only a client sends, well formed, by name."""
    return {
        "CONNECT": _encoded(encode_connect, "intruder", 30),
        "SUBSCRIBE": _encoded(encode_subscribe, 7, [("house/#", 1)]),
        "UNSUBSCRIBE": _encoded(encode_unsubscribe, 8, ["house/#"]),
        "PINGREQ": _encoded(encode_pingreq),
        "DISCONNECT": bytes([DISCONNECT << 4, 0]),
    }


# ---- scenario acts ---------------------------------------------------------------


def send_on_first(data, then_close=False):
    """Send `data` on the first connection (after CONNACK); later
    connections are served normally."""

    def act(connection):
        if connection.index == 0:
            connection.send(data)
            if then_close:
                time.sleep(0.05)
                connection.close()

    return act


def refuse_first(return_code):
    """CONNACK with a refusal on the first connection, then close it (3.1.1
    section 3.2.2.3); CONNACK 0 on the next."""

    def act(connection):
        if connection.index == 0:
            connection.connack(return_code)
            time.sleep(0.05)
            connection.close()
        else:
            connection.connack(0)

    return act


def raw_connack_first(data):
    """A hand-made CONNACK (or anything else) as the first answer to CONNECT."""

    def act(connection):
        if connection.index == 0:
            connection.send(data)
        else:
            connection.connack(0)

    return act


def oversize_publish_then_close(declared_extra=0xFFFFFFF, junk=4096):
    """A PUBLISH header declaring 268 MB (0xFF 0xFF 0xFF 0x7F), some bytes
    of it, then the broker hangs up."""

    def act(connection):
        if connection.index == 0:
            connection.send(b"\x30\xff\xff\xff\x7f" + bytes(junk))
            time.sleep(0.2)
            connection.close()

    return act


def oversize_publish_then_valid(size=2000, qos=0):
    """A whole PUBLISH larger than the client's receive buffer, then a
    small valid one: the client drains the first and delivers the second."""
    payload = bytes(range(256)) * (size // 256 + 1)
    big = publish_bytes("house/test/big", payload[:size], qos, 77 if qos else 0)
    small = publish_bytes("house/test/after-big", b"small", 0)

    def act(connection):
        if connection.index == 0:
            connection.send(big + small)

    return act


def oversize_publish_trickled(size=3000, chunk=100, gap_s=0.15):
    """As oversize_publish_then_valid, but the big PUBLISH comes 100 bytes
    every 150 ms (4.5 s), as over a slow link: longer than 1.5 x a 2 s
    keepalive. A broker answers a PINGREQ only after the packet it is in the
    middle of, so no PINGRESP goes out meanwhile: the bytes themselves must
    count as hearing from the broker."""
    payload = bytes(range(256)) * (size // 256 + 1)
    big = publish_bytes("house/test/big", payload[:size], 0, 0)
    small = publish_bytes("house/test/after-big", b"small", 0)

    def act(connection):
        if connection.index != 0:
            return
        with connection.sending():
            try:
                for at in range(0, len(big), chunk):
                    connection.sock.sendall(big[at : at + chunk])
                    time.sleep(gap_s)
                connection.sock.sendall(small)
            except OSError:
                pass  # the client hung up: the test reports why

    return act


def unknown_ack(packet_type, packet_id=4242):
    def act(connection):
        if connection.index == 0:
            connection.send(ack_bytes(packet_type, packet_id))

    return act


def duplicate_puback_after_dup_resend(connection):
    """First connection: take the client's QoS 1 PUBLISH, never ack it, hang
    up. Second: the client resends it with DUP; ack it twice (legal: the
    first PUBLISH may have reached the broker too)."""
    if connection.index == 0:
        connection.auto_ack = False
        connection.wait(lambda: connection.count(PUBLISH, qos=1) >= 1, 5)
        time.sleep(0.05)
        connection.close()
    elif connection.index == 1:
        if connection.wait(lambda: connection.count(PUBLISH, qos=1) >= 1, 5):
            first = connection.of_type(PUBLISH)[0]
            time.sleep(0.05)  # after the auto PUBACK
            connection.send(ack_bytes(PUBACK, first.packet_id))


def flood(count=FLOOD_COUNT, topic="house/test/flood"):
    """count QoS 0 and count QoS 1 PUBLISH, interleaved, as fast as the
    socket takes them; payloads 0..2*count-1 in order."""
    parts = []
    for i in range(2 * count):
        qos = i & 1
        parts.append(publish_bytes(topic, b"%d" % i, qos, (i >> 1) % 65535 + 1 if qos else 0))
    data = b"".join(parts)

    def act(connection):
        if connection.index == 0:
            chunk = 4096
            for i in range(0, len(data), chunk):
                if not connection.send(data[i : i + chunk]):
                    return

    return act


INBOUND_QOS2_BURST = 200


def inbound_qos2_without_pubrel(count=INBOUND_QOS2_BURST):
    """QoS 2 PUBLISH after PUBLISH, no PUBREL: legal (3.1.1 sets no limit on
    how many a broker sends before them); the client holds each id (method B)
    and takes them all."""

    def act(connection):
        if connection.index == 0:
            connection.auto_ack = False
            connection.send(b"".join(publish_bytes("house/test/q2", b"%d" % i, 2, i + 1) for i in range(count)))

    return act


def publish_before_connack(connection):
    if connection.index == 0:
        connection.send(publish_bytes("house/test/early", b"early", 0))
        connection.connack(0)
    else:
        connection.connack(0)


def _pubrec_unknown_and_pubcomp_unknown(connection):
    if connection.index == 0:
        connection.send(ack_bytes(PUBREC, 4243) + ack_bytes(PUBCOMP, 4244))


# ---- the catalogue -----------------------------------------------------------------


def _drop(message, error="ProtocolError"):
    return {"error": error, "message": message, "reconnect": True}


def _build():
    s = {}

    def add(name, act, expect, connack=0):
        s[name] = Scenario(name, act, connack, expect)

    # Malformed packets (3.1.1 section 2 and each packet's section).
    add("reserved_type_0", send_on_first(b"\x00\x00"), _drop("packet type 0 is reserved"))
    add("reserved_type_15", send_on_first(b"\xf0\x00"), _drop("packet type 15 is reserved"))
    add("publish_qos_3", send_on_first(b"\x36\x05\x00\x01a\x00\x01"), _drop("PUBLISH QoS is 3"))
    add("publish_qos0_with_dup", send_on_first(b"\x38\x03\x00\x01a"), _drop("PUBLISH QoS 0 has DUP set"))
    add("puback_length_3", send_on_first(b"\x40\x03\x00\x01\x00"), _drop("PUBACK remaining length must be 2, got 3"))
    add("pingresp_length_1", send_on_first(b"\xd0\x01\x00"), _drop("PINGRESP remaining length must be 0, got 1"))
    add(
        "remaining_length_5_bytes",
        send_on_first(b"\x30\xff\xff\xff\xff\x01"),
        _drop("remaining length continues past 4 bytes"),
    )
    add("pubrel_flags_0", send_on_first(b"\x60\x02\x00\x01"), _drop("PUBREL flags must be 0b0010, got 0x0"))
    add("puback_flags_set", send_on_first(b"\x41\x02\x00\x01"), _drop("PUBACK flags must be 0, got 0x1"))
    add("publish_packet_id_0", send_on_first(b"\x32\x05\x00\x01a\x00\x00"), _drop("PUBLISH packet id is 0"))
    add("puback_packet_id_0", send_on_first(b"\x40\x02\x00\x00"), _drop("PUBACK packet id is 0"))
    add(
        "publish_topic_overruns_packet",
        send_on_first(b"\x30\x04\x00\x09ab"),
        _drop("PUBLISH topic length 9 exceeds the 2 byte(s) left"),
    )
    add("publish_no_room_for_topic", send_on_first(b"\x30\x01\x00"), _drop("leaves no room for a topic"))
    add("publish_empty_topic", send_on_first(b"\x30\x02\x00\x00"), _drop("PUBLISH topic is empty"))
    add(
        "publish_wildcard_topic",
        send_on_first(raw_publish(b"house/+/x")),
        _drop("PUBLISH topic contains the wildcard '+' at byte 6"),
    )
    add("suback_bad_code", send_on_first(b"\x90\x03\x00\x01\x03"), _drop("SUBACK return code 0x03"))
    add("suback_no_codes", send_on_first(b"\x90\x02\x00\x01"), _drop("SUBACK has no return codes"))
    add(
        "second_connack",
        send_on_first(b"\x20\x02\x00\x00"),
        _drop("CONNACK received while already connected"),
    )
    # CONNACK itself malformed: connect() raises, poll() reconnects.
    add(
        "connack_reserved_flags",
        raw_connack_first(b"\x20\x02\x02\x00"),
        _drop("CONNACK acknowledge flags has reserved bits set: 0x02"),
        connack=None,
    )
    add("connack_code_6", raw_connack_first(b"\x20\x02\x00\x06"), _drop("CONNACK return code 6 is reserved"), None)
    add(
        "connack_refused_with_session_present",
        raw_connack_first(b"\x20\x02\x01\x05"),
        _drop("CONNACK session present is 1 with return code 5"),
        None,
    )
    add("publish_before_connack", publish_before_connack, _drop("not an MQTT broker: expected CONNACK, got"), None)
    # The 268 MB remaining length (0xFF 0xFF 0xFF 0x7F, the largest 3.1.1
    # allows): on a fixed-size packet it is refused at once; on a PUBLISH it
    # is legal, so the client drains it without buffering and counts it.
    add(
        "puback_268mb_header",
        send_on_first(b"\x40\xff\xff\xff\x7f"),
        _drop("PUBACK remaining length must be 2, got 268435455"),
    )
    add(
        "publish_268mb_header",
        oversize_publish_then_close(),
        _drop("connection closed by the broker", error="OSError"),
    )
    # Invalid UTF-8 and other string faults in a PUBLISH topic (3.1.1 section 1.5.3).
    add(
        "invalid_utf8_topic",
        send_on_first(raw_publish(b"house/\xff/t")),
        _drop("PUBLISH topic is not valid UTF-8 at byte 6"),
    )
    add(
        "overlong_utf8_topic",
        send_on_first(raw_publish(b"house/\xc0\xaf")),
        _drop("PUBLISH topic is not valid UTF-8 at byte 6"),
    )
    add(
        "surrogate_utf8_topic",
        send_on_first(raw_publish(b"house/\xed\xa0\x80")),
        _drop("PUBLISH topic is not valid UTF-8 at byte 6"),
    )
    add(
        "truncated_utf8_topic",
        send_on_first(raw_publish(b"house/\xe2\x82")),
        _drop("PUBLISH topic is not valid UTF-8 at byte 6"),
    )
    add("nul_in_topic", send_on_first(raw_publish(b"house/\x00")), _drop("PUBLISH topic contains U+0000 at byte 6"))
    # Packets that only a client sends (3.1.1 section 2.2.1 directions).
    for name, data in client_only_packets().items():
        add(
            "client_only_" + name,
            send_on_first(data),
            _drop("%s is sent by clients only" % name),
        )
    # Refusals, each code of 3.1.1 section 3.2.2.3.
    for code in range(1, 6):
        add("connack_refused_%d" % code, refuse_first(code), _drop("CONNACK code %d" % code, "ConnectRefused"), None)
    # Not errors: counted and ignored, the link stays up.
    add("unknown_puback", unknown_ack(PUBACK), {"error": None, "reconnect": False, "unknown_acks": 1})
    add(
        "unknown_pubrec_and_pubcomp",
        _pubrec_unknown_and_pubcomp_unknown,
        {"error": None, "reconnect": False, "unknown_acks": 2},
    )
    add(
        "duplicate_puback_after_dup_resend",
        duplicate_puback_after_dup_resend,
        {"error": "OSError", "reconnect": True, "unknown_acks": 1},
    )
    add("flood", flood(), {"error": None, "reconnect": False})
    add(
        "inbound_qos2_burst",
        inbound_qos2_without_pubrel(),
        {"error": None, "reconnect": False},
    )
    add(
        "oversize_publish_then_valid",
        oversize_publish_then_valid(),
        {"error": None, "reconnect": False, "oversize_dropped": 1},
    )
    add(
        "oversize_publish_trickled",
        oversize_publish_trickled(),
        {"error": None, "reconnect": False, "oversize_dropped": 1},
    )
    add(
        "oversize_qos1_publish",
        oversize_publish_then_valid(qos=1),
        {"error": None, "reconnect": False, "oversize_dropped": 1},
    )
    return s


SCENARIOS = _build()
