# The codec's parts (mqtt.packet) a node that publishes at QoS 0 and 1 never
# runs: the decoder, the client's half (the Packet record and decode() for
# every packet a broker sends), the acks a client sends (PUBACK, PUBREC,
# PUBREL, PUBCOMP), DISCONNECT, and the packet types and flags as public
# names. Loaded at the first packet that the session does not take itself
# (it reads CONNACK accepted, PUBACK and PINGRESP straight from the receive
# buffer), or the first of these names asked for. Reached as
# mqtt.packet.decode, mqtt.packet.PUBLISH and so on too.
#
# The decoder fills a reused Packet record with ints: offsets into the
# receive buffer, never copies. Anything malformed from the peer is a
# ProtocolError, and nothing else can come out of it for any input bytes. It
# never sizes anything by the peer's length fields: it only reads the bytes
# the caller already has. Decoding PUBLISH, PUBACK and PINGRESP allocates
# nothing on MicroPython.

from compat import const
from mqtt.errors import ProtocolError
from mqtt.packet import _check_fits
from mqtt.topic import TOPIC_NAME, scan

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

# 3.1.1 section 2.2.3: four 7-bit groups at most.
MAX_REMAINING_LENGTH = const(268435455)
PROTOCOL_LEVEL = const(4)  # 3.1.1 section 3.1.2.2: 3.1.1 is level 4
_MAX_PACKET_ID = const(65535)

# CONNECT flags (3.1.1 section 3.1.2.3), as the broker half reads them.
CONNECT_CLEAN_SESSION = const(0x02)
CONNECT_WILL = const(0x04)
CONNECT_WILL_RETAIN = const(0x20)
CONNECT_PASSWORD = const(0x40)
CONNECT_USERNAME = const(0x80)

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


MAX_QOS = const(2)

# First-byte flags (3.1.1 section 2.2.2).
_DUP = const(0x08)
_QOS_MASK = const(0x06)
_RETAIN = const(0x01)
_FLAGS_PUBREL = const(0x02)  # PUBREL, SUBSCRIBE, UNSUBSCRIBE

# 3.1.1 section 2.2.1: the types only a client sends, one bit each.
_CLIENT_ONLY = const(1 << CONNECT | 1 << SUBSCRIBE | 1 << UNSUBSCRIBE | 1 << PINGREQ | 1 << DISCONNECT)


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


# ---- what a node that only publishes at QoS 0 and 1 never sends ----------------


def _check_packet_id(packet_id, name):
    # 3.1.1 section 2.3.1: packet identifiers are nonzero 16-bit ints.
    if packet_id < 1 or packet_id > _MAX_PACKET_ID:
        from mqtt.error_text import bad_packet_id

        raise bad_packet_id(name, packet_id)


def encode_ack(buf, offset, packet_type, packet_id):
    """PUBACK, PUBREC, PUBREL, PUBCOMP or UNSUBACK: 4 bytes (3.1.1 sections
    3.4-3.7, 3.11)."""
    if packet_type == PUBREL:
        first = 0x62  # 3.1.1 section 3.6.1: PUBREL's flags are 0b0010
    elif packet_type == PUBACK or packet_type == PUBREC or packet_type == PUBCOMP or packet_type == UNSUBACK:
        first = packet_type << 4
    else:
        from mqtt.error_text import bad_ack_type

        raise bad_ack_type(packet_type)
    if packet_id < 1 or packet_id > _MAX_PACKET_ID:
        _check_packet_id(packet_id, PACKET_NAMES[packet_type])
    if offset < 0 or offset + 4 > len(buf):
        _check_fits(buf, offset, 4, PACKET_NAMES[packet_type])
    buf[offset] = first
    buf[offset + 1] = 2
    buf[offset + 2] = packet_id >> 8
    buf[offset + 3] = packet_id & 0xFF
    return 4


def encode_disconnect(buf, offset):
    """DISCONNECT (3.1.1 section 3.14): E0 00."""
    if offset < 0 or offset + 2 > len(buf):
        _check_fits(buf, offset, 2, "DISCONNECT")
    buf[offset] = DISCONNECT << 4
    buf[offset + 1] = 0
    return 2


# What mqtt.packet hands over (its __getattr__ calls this): the decoder's
# names, the packet types and flags and the encoders above from here, the
# other encoders from their modules.
_HANDED_OVER = PACKET_NAMES[CONNECT : DISCONNECT + 1] + (  # the packet types, by name
    "MAX_REMAINING_LENGTH",
    "PROTOCOL_LEVEL",
    "CONNECT_CLEAN_SESSION",
    "CONNECT_WILL",
    "CONNECT_WILL_RETAIN",
    "CONNECT_PASSWORD",
    "CONNECT_USERNAME",
    "Packet",
    "decode",
    "decode_header",
    "PACKET_NAMES",
    "CONNACK_REASONS",
    "SUBACK_FAILURE",
    "MAX_QOS",
    "ProtocolError",
    "_packet_id",
    "_fixed_remaining_length",
    "encode_ack",
    "encode_disconnect",
    "_check_packet_id",
)


def handed_over(name):
    if name in _HANDED_OVER:
        return globals()[name]
    if name == "encode_publish":
        from mqtt.checked_publish import encode_publish

        return encode_publish
    if name == "encode_subscribe" or name == "encode_unsubscribe":
        from mqtt import subscribe

        return getattr(subscribe, name)
    raise AttributeError(name)
