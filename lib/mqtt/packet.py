# The MQTT 3.1.1 codec, the client's half: what a connected client runs, in
# buffers the caller owns. No I/O, no clock. mqtt.broker_codec is the other
# half (what only a broker sends or reads), kept apart so that a node does
# not load it; so are the encoders a publishing node never calls, in
# mqtt.subscribe (SUBSCRIBE, UNSUBSCRIBE: loaded at the first subscribe) and
# mqtt.checked_publish (encode_publish, every argument checked: for tests
# and tools; the session checks a publish once and writes it with
# put_publish). `from mqtt.packet import encode_subscribe` still works: this
# module hands those names over when asked (__getattr__ at the bottom).
#
# Encoders write one whole packet at buf[offset:] and return its length.
# Illegal input from our own caller is a ValueError raised before a byte is
# written. The hot-path encoders (publish, ack, ping) and the decoder for the
# packets a connected node receives (PUBLISH, PUBACK, PINGRESP) allocate
# nothing on MicroPython: index stores, slice assignment, no slicing reads.
#
# The decoder fills a reused Packet record with ints: offsets into the
# receive buffer, never copies. Anything malformed from the peer is a
# ProtocolError, and nothing else can come out of it for any input bytes. It
# never sizes anything by the peer's length fields: it only reads the bytes
# the caller already has.

from compat import const
from mqtt.topic import STRING, TOPIC_NAME, checked, scan

# 3.1.1 section 2.2.1: control packet types.
CONNECT = const(1)
CONNACK = const(2)
PUBLISH = const(3)
PUBACK = const(4)
PUBREC = const(5)
PUBREL = const(6)
PUBCOMP = const(7)
SUBSCRIBE = const(8)
SUBACK = const(9)
UNSUBSCRIBE = const(10)
UNSUBACK = const(11)
PINGREQ = const(12)
PINGRESP = const(13)
DISCONNECT = const(14)

PACKET_NAMES = (
    "reserved (0)",
    "CONNECT",
    "CONNACK",
    "PUBLISH",
    "PUBACK",
    "PUBREC",
    "PUBREL",
    "PUBCOMP",
    "SUBSCRIBE",
    "SUBACK",
    "UNSUBSCRIBE",
    "UNSUBACK",
    "PINGREQ",
    "PINGRESP",
    "DISCONNECT",
    "reserved (15)",
)

# 3.1.1 section 2.2.3: four 7-bit groups at most.
MAX_REMAINING_LENGTH = const(268435455)
# 3.1.1 section 3.2.2.3, indexed by return code.
CONNACK_REASONS = (
    "accepted",
    "unacceptable protocol version",
    "identifier rejected",
    "server unavailable",
    "bad user name or password",
    "not authorized",
)
# 3.1.1 section 3.9.3
SUBACK_FAILURE = const(0x80)

PROTOCOL_LEVEL = const(4)  # 3.1.1 section 3.1.2.2: 3.1.1 is level 4
_MAX_FIELD = const(65535)
_MAX_PACKET_ID = const(65535)
MAX_QOS = const(2)

# First-byte flags (3.1.1 section 2.2.2).
_DUP = const(0x08)
_QOS_MASK = const(0x06)
_RETAIN = const(0x01)
_FLAGS_PUBREL = const(0x02)  # PUBREL, SUBSCRIBE, UNSUBSCRIBE

# CONNECT flags (3.1.1 section 3.1.2.3); public, as the broker half reads them.
CONNECT_CLEAN_SESSION = const(0x02)
CONNECT_WILL = const(0x04)
CONNECT_WILL_RETAIN = const(0x20)
CONNECT_PASSWORD = const(0x40)
CONNECT_USERNAME = const(0x80)

# 3.1.1 section 2.2.1: the types only a client sends, one bit each.
_CLIENT_ONLY = const(1 << CONNECT | 1 << SUBSCRIBE | 1 << UNSUBSCRIBE | 1 << PINGREQ | 1 << DISCONNECT)

# Variable header of CONNECT: 00 04 'M' 'Q' 'T' 'T' level flags keepalive(2).
_CONNECT_HEADER_LENGTH = const(10)


class ProtocolError(Exception):
    """The peer sent something 3.1.1 does not allow: drop the connection."""


class Packet:
    """One decoded packet: ints (offsets into the receive buffer, lengths,
    flags), reset by every decode that returns a length. Make one, reuse it."""

    def __init__(self):
        self.type = 0
        self.flags = 0
        self.header_length = 0
        self.remaining_length = 0
        self.length = 0
        self.clear()

    def clear(self):
        # Every field below the fixed header, to its "absent" value.
        self.dup = False
        self.qos = 0
        self.retain = False
        self.packet_id = 0
        # PUBLISH
        self.topic_start = 0
        self.topic_length = 0
        self.payload_start = 0
        self.payload_length = 0
        # CONNACK
        self.session_present = False
        self.return_code = 0
        # SUBACK
        self.codes_start = 0
        self.codes_length = 0

    def __repr__(self):
        return "<Packet %s length=%d flags=0x%x packet_id=%d>" % (
            PACKET_NAMES[self.type & 15],
            self.length,
            self.flags,
            self.packet_id,
        )


# ---- encoding ----------------------------------------------------------------


def remaining_length_size(remaining_length):
    """Bytes the remaining-length field takes (3.1.1 section 2.2.3)."""
    if remaining_length < 0x80:
        return 1
    if remaining_length < 0x4000:
        return 2
    if remaining_length < 0x200000:
        return 3
    return 4


def encode_remaining_length(buf, offset, remaining_length):
    """Writes the variable-length remaining length (3.1.1 section 2.2.3),
    least significant 7 bits first; returns the bytes written (1..4)."""
    if remaining_length < 0 or remaining_length > MAX_REMAINING_LENGTH:
        raise ValueError("remaining length must be 0..268435455, got %d" % remaining_length)
    i = offset
    while remaining_length > 0x7F:
        buf[i] = (remaining_length & 0x7F) | 0x80
        remaining_length >>= 7
        i += 1
    buf[i] = remaining_length
    return i + 1 - offset


def _check_fits(buf, offset, size, name):
    if offset < 0 or offset + size > len(buf):
        raise ValueError(
            "%s of %d bytes does not fit at offset %d of a %d-byte buffer" % (name, size, offset, len(buf))
        )


def _check_packet_id(packet_id, name):
    # 3.1.1 section 2.3.1: packet identifiers are nonzero 16-bit ints.
    if packet_id < 1 or packet_id > _MAX_PACKET_ID:
        raise ValueError("%s packet_id must be 1..65535, got %d" % (name, packet_id))


def _check_qos(qos, what):
    if qos != 0 and qos != 1 and qos != 2:
        raise ValueError("%s must be 0, 1 or 2, got %r" % (what, qos))


def _binary(value, what):
    # Binary data (3.1.1 section 1.5.3's 2-byte length prefix, no UTF-8 rule).
    data = value.encode() if isinstance(value, str) else value
    if len(data) > _MAX_FIELD:
        raise ValueError("%s is %d bytes, more than 65535" % (what, len(data)))
    return data


def _put_field(buf, i, data):
    # A 2-byte big-endian length, then the bytes; returns the next index.
    n = len(data)
    buf[i] = n >> 8
    buf[i + 1] = n & 0xFF
    buf[i + 2 : i + 2 + n] = data
    return i + 2 + n


def _put_header(buf, offset, first_byte, remaining_length):
    buf[offset] = first_byte
    return offset + 1 + encode_remaining_length(buf, offset + 1, remaining_length)


def _packet_size(remaining_length, name):
    if remaining_length > MAX_REMAINING_LENGTH:
        raise ValueError("%s remaining length %d exceeds 268435455" % (name, remaining_length))
    return 1 + remaining_length_size(remaining_length) + remaining_length


def encode_connect(
    buf,
    offset,
    client_id,
    keepalive_s,
    clean_session=True,
    username=None,
    password=None,
    will_topic=None,
    will_payload=None,
    will_qos=0,
    will_retain=False,
):
    """CONNECT (3.1.1 section 3.1). Strings may be str or bytes-likes."""
    client_id = checked(client_id, STRING, "client_id")
    # 3.1.1 section 3.1.3.1: a zero-byte client id needs CleanSession 1.
    if len(client_id) == 0 and not clean_session:
        raise ValueError("an empty client_id needs clean_session=True (3.1.1 section 3.1.3.1)")
    if keepalive_s < 0 or keepalive_s > 65535:
        raise ValueError("keepalive_s must be 0..65535, got %d" % keepalive_s)
    flags = CONNECT_CLEAN_SESSION if clean_session else 0
    remaining = _CONNECT_HEADER_LENGTH + 2 + len(client_id)
    if will_topic is None:
        # 3.1.1 section 3.1.2.5-3.1.2.7: no will, so no will QoS, retain or message.
        if will_payload is not None or will_qos or will_retain:
            raise ValueError(
                "will_payload, will_qos and will_retain need a will_topic, got %r, %r, %r"
                % (will_payload, will_qos, will_retain)
            )
    else:
        will_topic = checked(will_topic, TOPIC_NAME, "will_topic")
        will_payload = _binary(b"" if will_payload is None else will_payload, "will_payload")
        _check_qos(will_qos, "will_qos")
        flags |= CONNECT_WILL | (will_qos << 3)
        if will_retain:
            flags |= CONNECT_WILL_RETAIN
        remaining += 4 + len(will_topic) + len(will_payload)
    if username is None:
        # 3.1.1 section 3.1.2.9: if the User Name Flag is 0, the Password Flag MUST be 0.
        if password is not None:
            raise ValueError("a password needs a username in MQTT 3.1.1 (section 3.1.2.9)")
    else:
        username = checked(username, STRING, "username")
        flags |= CONNECT_USERNAME
        remaining += 2 + len(username)
        if password is not None:
            password = _binary(password, "password")
            flags |= CONNECT_PASSWORD
            remaining += 2 + len(password)
    size = _packet_size(remaining, "CONNECT")
    _check_fits(buf, offset, size, "CONNECT")
    i = _put_header(buf, offset, CONNECT << 4, remaining)
    i = _put_field(buf, i, b"MQTT")  # 3.1.1 section 3.1.2.1
    buf[i] = PROTOCOL_LEVEL
    buf[i + 1] = flags
    buf[i + 2] = keepalive_s >> 8
    buf[i + 3] = keepalive_s & 0xFF
    # 3.1.1 section 3.1.3: client id, will topic, will message, user name, password, in this order.
    i = _put_field(buf, i + 4, client_id)
    if will_topic is not None:
        i = _put_field(buf, i, will_topic)
        i = _put_field(buf, i, will_payload)
    if username is not None:
        i = _put_field(buf, i, username)
        if password is not None:
            i = _put_field(buf, i, password)
    return size


def put_publish(buf, offset, limit, first, topic, payload, length, packet_id):
    """PUBLISH (3.1.1 section 3.3) from arguments the caller has checked (the
    session checks each topic once, and the QoS): `first` is the first byte
    (type, DUP, QoS, RETAIN), topic and payload bytes-likes, payload[0:length]
    sent, packet_id 0 for QoS 0. Returns the packet's size; or, when it would
    not end by buf[limit], minus its size, and writes nothing."""
    topic_length = len(topic)
    remaining = 2 + topic_length + length
    if packet_id:
        remaining += 2
    # The fixed header: the first byte and 1..4 bytes of remaining length.
    if remaining < 0x80:
        size = remaining + 2
    elif remaining < 0x4000:
        size = remaining + 3
    elif remaining < 0x200000:
        size = remaining + 4
    else:
        size = remaining + 5
    if offset + size > limit:
        return -size
    buf[offset] = first
    i = offset + 1
    while remaining > 0x7F:
        buf[i] = (remaining & 0x7F) | 0x80
        remaining >>= 7
        i += 1
    buf[i] = remaining
    buf[i + 1] = topic_length >> 8
    buf[i + 2] = topic_length & 0xFF
    i += 3
    buf[i : i + topic_length] = topic
    i += topic_length
    if packet_id:
        buf[i] = packet_id >> 8
        buf[i + 1] = packet_id & 0xFF
        i += 2
    if length == len(payload):
        buf[i : i + length] = payload
    else:
        # Part of the payload: a copy loop, since slicing the source would allocate.
        j = 0
        while j < length:
            buf[i + j] = payload[j]
            j += 1
    return size


def encode_ack(buf, offset, packet_type, packet_id):
    """PUBACK, PUBREC, PUBREL, PUBCOMP or UNSUBACK: 4 bytes (3.1.1 sections
    3.4-3.7, 3.11)."""
    if packet_type == PUBREL:
        first = 0x62  # 3.1.1 section 3.6.1: PUBREL's flags are 0b0010
    elif packet_type == PUBACK or packet_type == PUBREC or packet_type == PUBCOMP or packet_type == UNSUBACK:
        first = packet_type << 4
    else:
        raise ValueError("packet_type must be PUBACK, PUBREC, PUBREL, PUBCOMP or UNSUBACK, got %r" % (packet_type,))
    if packet_id < 1 or packet_id > _MAX_PACKET_ID:
        _check_packet_id(packet_id, PACKET_NAMES[packet_type])
    if offset < 0 or offset + 4 > len(buf):
        _check_fits(buf, offset, 4, PACKET_NAMES[packet_type])
    buf[offset] = first
    buf[offset + 1] = 2
    buf[offset + 2] = packet_id >> 8
    buf[offset + 3] = packet_id & 0xFF
    return 4


def _encode_empty(buf, offset, packet_type):
    if offset < 0 or offset + 2 > len(buf):
        _check_fits(buf, offset, 2, PACKET_NAMES[packet_type])
    buf[offset] = packet_type << 4
    buf[offset + 1] = 0
    return 2


def encode_pingreq(buf, offset):
    """PINGREQ (3.1.1 section 3.12): C0 00."""
    return _encode_empty(buf, offset, PINGREQ)


def encode_disconnect(buf, offset):
    """DISCONNECT (3.1.1 section 3.14): E0 00."""
    return _encode_empty(buf, offset, DISCONNECT)


# ---- decoding ----------------------------------------------------------------


def decode_header(buf, start, end, packet):
    """Parses the fixed header at buf[start:end] into packet.type, flags,
    remaining_length, header_length and length. Returns header_length, or -N:
    incomplete, at least N more bytes needed."""
    if start >= end:
        return -2
    first = buf[start]
    packet_type = first >> 4
    flags = first & 0x0F
    # 3.1.1 section 2.2.2: flags are fixed for every type but PUBLISH.
    if packet_type == PUBLISH:
        # 3.1.1 section 3.3.1.2: QoS 3 is a protocol violation.
        if flags & _QOS_MASK == _QOS_MASK:
            raise ProtocolError("PUBLISH QoS is 3 (first byte 0x%02x)" % first)
        # 3.1.1 section 3.3.1.1: DUP MUST be 0 for QoS 0.
        if flags & (_DUP | _QOS_MASK) == _DUP:
            raise ProtocolError("PUBLISH QoS 0 has DUP set (first byte 0x%02x)" % first)
    elif packet_type == PUBREL or packet_type == SUBSCRIBE or packet_type == UNSUBSCRIBE:
        if flags != _FLAGS_PUBREL:
            raise ProtocolError("%s flags must be 0b0010, got 0x%x" % (PACKET_NAMES[packet_type], flags))
    elif packet_type == 0 or packet_type == 15:
        raise ProtocolError("packet type %d is reserved (first byte 0x%02x)" % (packet_type, first))
    elif flags:
        raise ProtocolError("%s flags must be 0, got 0x%x" % (PACKET_NAMES[packet_type], flags))
    # 3.1.1 section 2.2.3: remaining length, 7 bits a byte, at most 4 bytes.
    remaining = 0
    shift = 0
    i = start + 1
    while True:
        if i >= end:
            return -1
        b = buf[i]
        remaining |= (b & 0x7F) << shift
        i += 1
        if b < 0x80:
            break
        shift += 7
        if shift == 28:
            raise ProtocolError("remaining length continues past 4 bytes (4th byte 0x%02x)" % b)
    header_length = i - start
    packet.type = packet_type
    packet.flags = flags
    packet.remaining_length = remaining
    packet.header_length = header_length
    packet.length = header_length + remaining
    return header_length


def _packet_id(buf, p, end, name):
    # 3.1.1 section 2.3.1: a nonzero 16-bit packet identifier.
    if end - p < 2:
        raise ProtocolError("%s has no room for its packet id (%d byte(s) left)" % (name, end - p))
    packet_id = (buf[p] << 8) | buf[p + 1]
    if packet_id == 0:
        raise ProtocolError("%s packet id is 0" % name)
    return packet_id


def _fixed_remaining_length(packet_type):
    # Remaining length of the fixed-size packets, -1 for the others.
    if packet_type == CONNACK or (packet_type >= PUBACK and packet_type <= PUBCOMP) or packet_type == UNSUBACK:
        return 2
    if packet_type >= PINGREQ:
        return 0
    return -1


def decode(buf, start, end, packet, client_only=None):
    """Decodes one packet from buf[start:end] into packet. Returns the bytes
    it takes (packet.length), or -N: incomplete, N more bytes needed (at
    least N while the fixed header itself is incomplete). A packet only a
    client sends (CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT) is a
    ProtocolError: a client never receives one (mqtt.broker_codec.decode
    decodes them)."""
    if start < 0 or start > end or end > len(buf):
        raise ValueError("decode range %d..%d is not within a %d-byte buffer" % (start, end, len(buf)))
    header_length = decode_header(buf, start, end, packet)
    if header_length < 0:
        return header_length
    packet_type = packet.type
    # A fixed-size packet with another length is refused now, before
    # waiting for a body that may never come.
    fixed = _fixed_remaining_length(packet_type)
    if fixed >= 0 and packet.remaining_length != fixed:
        raise ProtocolError(
            "%s remaining length must be %d, got %d" % (PACKET_NAMES[packet_type], fixed, packet.remaining_length)
        )
    length = packet.length
    if length > end - start:
        return end - start - length
    packet.clear()
    p = start + header_length
    end = start + length
    if packet_type == PUBLISH:
        _decode_publish(buf, p, end, packet)
    elif fixed == 2:
        if packet_type == CONNACK:
            _decode_connack(buf, p, packet)
        else:
            packet.packet_id = _packet_id(buf, p, end, PACKET_NAMES[packet_type])
    elif packet_type == SUBACK:
        _decode_suback(buf, p, end, packet)
    elif _CLIENT_ONLY >> packet_type & 1:
        # 3.1.1 section 2.2.1: only a client sends these. The broker half of
        # the codec (mqtt.broker_codec) passes the decoder for their bodies.
        if client_only is None:
            raise ProtocolError("%s is sent by clients only" % PACKET_NAMES[packet_type])
        client_only(buf, p, end, packet)
    # PINGRESP: the fixed header is all there is.
    return length


def _decode_publish(buf, p, end, packet):
    flags = packet.flags
    qos = (flags >> 1) & 3
    packet.qos = qos
    packet.dup = (flags & _DUP) != 0
    packet.retain = (flags & _RETAIN) != 0
    # 3.1.1 section 3.3.2.1: the topic name is a UTF-8 string without wildcards.
    if end - p < 2:
        raise ProtocolError("PUBLISH remaining length %d leaves no room for a topic" % (end - p))
    topic_length = (buf[p] << 8) | buf[p + 1]
    p += 2
    if topic_length == 0:
        raise ProtocolError("PUBLISH topic is empty (3.1.1 section 4.7.3)")
    if topic_length > end - p:
        raise ProtocolError(
            "PUBLISH topic length %d exceeds the %d byte(s) left in the packet" % (topic_length, end - p)
        )
    bad = scan(buf, p, p + topic_length, TOPIC_NAME)
    if bad >= 0:
        from mqtt.explain import describe

        raise ProtocolError("PUBLISH topic " + describe(buf, bad, p, TOPIC_NAME))
    packet.topic_start = p
    packet.topic_length = topic_length
    p += topic_length
    if qos:
        packet.packet_id = _packet_id(buf, p, end, "PUBLISH")
        p += 2
    packet.payload_start = p
    packet.payload_length = end - p


def _decode_connack(buf, p, packet):
    ack_flags = buf[p]
    return_code = buf[p + 1]
    # 3.1.1 section 3.2.2.1: bits 7-1 are reserved, 0.
    if ack_flags & 0xFE:
        raise ProtocolError("CONNACK acknowledge flags has reserved bits set: 0x%02x" % ack_flags)
    # 3.1.1 section 3.2.2.3: 6..255 are reserved.
    if return_code >= len(CONNACK_REASONS):
        raise ProtocolError("CONNACK return code %d is reserved" % return_code)
    # 3.1.1 section 3.2.2.2: a refusal has Session Present 0.
    if return_code and ack_flags:
        raise ProtocolError("CONNACK session present is 1 with return code %d" % return_code)
    packet.session_present = ack_flags == 1
    packet.return_code = return_code


def _decode_suback(buf, p, end, packet):
    packet.packet_id = _packet_id(buf, p, end, "SUBACK")
    p += 2
    # 3.1.1 section 3.9.3: one return code per filter (a SUBSCRIBE has at least one).
    if p >= end:
        raise ProtocolError("SUBACK has no return codes")
    packet.codes_start = p
    packet.codes_length = end - p
    while p < end:
        code = buf[p]
        if code > MAX_QOS and code != SUBACK_FAILURE:
            raise ProtocolError("SUBACK return code 0x%02x is not 0, 1, 2 or 0x80" % code)
        p += 1


# The encoders kept in other modules, for `from mqtt.packet import ...`
# (PEP 562's module __getattr__; MicroPython has it too): each module loads
# only when first asked for.
def __getattr__(name):
    if name == "encode_publish":
        from mqtt.checked_publish import encode_publish

        return encode_publish
    if name == "encode_subscribe" or name == "encode_unsubscribe":
        from mqtt import subscribe

        return getattr(subscribe, name)
    raise AttributeError(name)
