# The broker's half of the MQTT 3.1.1 codec: decoding the packets only a
# client sends (CONNECT, SUBSCRIBE, UNSUBSCRIBE) and encoding the broker's
# answers (CONNACK, SUBACK, PINGRESP). A node never imports it, so a board
# keeps its RAM for the client half in mqtt.packet; the test brokers and
# the codec's own tests use it.
#
# Same rules as mqtt.packet: caller buffers, ValueError for our own bad
# input, ProtocolError for anything malformed from the peer.

from compat import const
from mqtt.errors import ProtocolError
from mqtt.explain import describe, show
from mqtt.packet import _check_fits, _encode_empty, _packet_size, _put_header
from mqtt.packet_more import (
    CONNACK,
    CONNACK_REASONS,
    CONNECT,
    CONNECT_CLEAN_SESSION,
    CONNECT_PASSWORD,
    CONNECT_USERNAME,
    CONNECT_WILL,
    CONNECT_WILL_RETAIN,
    MAX_QOS,
    PACKET_NAMES,
    PINGRESP,
    PROTOCOL_LEVEL,
    SUBACK,
    SUBACK_FAILURE,
    SUBSCRIBE,
    UNSUBSCRIBE,
    Packet,
    _check_packet_id,
    _packet_id,
)
from mqtt.packet_more import decode as _client_decode
from mqtt.subscribe import _nonempty_sequence
from mqtt.topic import STRING, TOPIC_FILTER, TOPIC_NAME, scan

# 3.1.1 section 3.1.2.3: the CONNECT flag a client MUST leave 0.
_CONNECT_RESERVED = const(0x01)


def _field(buf, p, end, what):
    # Length of the 2-byte-length-prefixed field at buf[p], checked against
    # the packet's end; its bytes start at p + 2.
    if end - p < 2:
        raise ProtocolError("%s length is cut off: %d byte(s) left in the packet" % (what, end - p))
    n = (buf[p] << 8) | buf[p + 1]
    if n > end - p - 2:
        raise ProtocolError("%s length %d exceeds the %d byte(s) left in the packet" % (what, n, end - p - 2))
    return n


def _string(buf, p, end, rules, what):
    # An MQTT UTF-8 string at buf[p] (3.1.1 section 1.5.3); returns its length.
    n = _field(buf, p, end, what)
    if n == 0 and rules != STRING:
        raise ProtocolError("%s is empty (3.1.1 section 4.7.3)" % what)
    bad = scan(buf, p + 2, p + 2 + n, rules)
    if bad >= 0:
        raise ProtocolError("%s %s" % (what, describe(buf, bad, p + 2, rules)))
    return n


class BrokerPacket(Packet):
    """A Packet that also holds what a client sends: the CONNECT fields and
    the SUBSCRIBE / UNSUBSCRIBE body (walk it with iter_subscriptions /
    iter_filters)."""

    def clear(self):
        Packet.clear(self)
        # SUBSCRIBE, UNSUBSCRIBE
        self.body_start = 0
        self.body_end = 0
        # CONNECT
        self.protocol_level = 0
        self.clean_session = False
        self.keepalive = 0
        self.client_id_start = 0
        self.client_id_length = 0
        self.will_flag = False
        self.will_qos = 0
        self.will_retain = False
        self.will_topic_start = -1
        self.will_topic_length = -1
        self.will_payload_start = -1
        self.will_payload_length = -1
        self.username_start = -1
        self.username_length = -1
        self.password_start = -1
        self.password_length = -1


# ---- encoding ----------------------------------------------------------------


def encode_connack(buf, offset, session_present, return_code):
    """CONNACK (3.1.1 section 3.2), the broker's answer to CONNECT."""
    if return_code < 0 or return_code >= len(CONNACK_REASONS):
        raise ValueError("return_code must be 0..5, got %d" % return_code)
    # 3.1.1 section 3.2.2.2: a refusal has Session Present 0.
    if session_present and return_code:
        raise ValueError("session_present must be False with return_code %d" % return_code)
    _check_fits(buf, offset, 4, "CONNACK")
    buf[offset] = CONNACK << 4
    buf[offset + 1] = 2
    buf[offset + 2] = 1 if session_present else 0
    buf[offset + 3] = return_code
    return 4


def encode_suback(buf, offset, packet_id, return_codes):
    """SUBACK (3.1.1 section 3.9): one return code (0, 1, 2 or 0x80) per filter."""
    _check_packet_id(packet_id, "SUBACK")
    _nonempty_sequence(return_codes, "return_codes")
    for code in return_codes:
        if code != 0 and code != 1 and code != 2 and code != SUBACK_FAILURE:
            raise ValueError("SUBACK return code must be 0, 1, 2 or 0x80, got %r" % (code,))
    remaining = 2 + len(return_codes)
    size = _packet_size(remaining, "SUBACK")
    _check_fits(buf, offset, size, "SUBACK")
    i = _put_header(buf, offset, SUBACK << 4, remaining)
    buf[i] = packet_id >> 8
    buf[i + 1] = packet_id & 0xFF
    i += 2
    for code in return_codes:
        buf[i] = code
        i += 1
    return size


def encode_pingresp(buf, offset):
    """PINGRESP (3.1.1 section 3.13): D0 00."""
    return _encode_empty(buf, offset, PINGRESP)


# ---- decoding ----------------------------------------------------------------


def decode(buf, start, end, packet):
    """mqtt.packet.decode for all 14 packet types, into a BrokerPacket."""
    return _client_decode(buf, start, end, packet, _decode_client_only)


def _decode_client_only(buf, p, end, packet):
    if packet.type == SUBSCRIBE or packet.type == UNSUBSCRIBE:
        _decode_subscribe(buf, p, end, packet)
    elif packet.type == CONNECT:
        _decode_connect(buf, p, end, packet)
    # PINGREQ, DISCONNECT: the fixed header is all there is.


def _decode_subscribe(buf, p, end, packet):
    packet_type = packet.type
    name = PACKET_NAMES[packet_type]
    packet.packet_id = _packet_id(buf, p, end, name)
    p += 2
    packet.body_start = p
    packet.body_end = end
    # 3.1.1 sections 3.8.3 and 3.10.3: at least one topic filter.
    if p >= end:
        raise ProtocolError("%s has no topic filters" % name)
    count = 0
    while p < end:
        count += 1
        n = _string(buf, p, end, TOPIC_FILTER, "%s topic filter %d" % (name, count))
        p += 2 + n
        if packet_type == SUBSCRIBE:
            if p >= end:
                raise ProtocolError("SUBSCRIBE topic filter %d has no requested QoS byte" % count)
            # 3.1.1 section 3.8.3.1: upper 6 bits reserved, QoS 0..2.
            qos = buf[p]
            if qos > MAX_QOS:
                raise ProtocolError("SUBSCRIBE topic filter %d requested QoS byte is 0x%02x" % (count, qos))
            p += 1


def _decode_connect(buf, p, end, packet):
    # 3.1.1 section 3.1.2.1: protocol name "MQTT".
    n = _field(buf, p, end, "CONNECT protocol name")
    if n != 4 or buf[p + 2] != 0x4D or buf[p + 3] != 0x51 or buf[p + 4] != 0x54 or buf[p + 5] != 0x54:
        raise ProtocolError("CONNECT protocol name is not 'MQTT': %s" % show(bytes(buf[p + 2 : p + 2 + n])))
    p += 6
    if end - p < 4:
        raise ProtocolError("CONNECT variable header is cut off: %d byte(s) after the protocol name" % (end - p))
    level = buf[p]
    flags = buf[p + 1]
    # 3.1.1 section 3.1.2.2: level 4 is 3.1.1.
    if level != PROTOCOL_LEVEL:
        raise ProtocolError("CONNECT protocol level must be 4, got %d" % level)
    # 3.1.1 section 3.1.2.3: the reserved flag MUST be 0.
    if flags & _CONNECT_RESERVED:
        raise ProtocolError("CONNECT reserved flag is set: flags 0x%02x" % flags)
    will = (flags & CONNECT_WILL) != 0
    will_qos = (flags >> 3) & 3
    will_retain = (flags & CONNECT_WILL_RETAIN) != 0
    # 3.1.1 sections 3.1.2.6 and 3.1.2.7: QoS 3 is invalid; no will, then no will QoS or retain.
    if will_qos == 3:
        raise ProtocolError("CONNECT will QoS is 3: flags 0x%02x" % flags)
    if not will and (will_qos or will_retain):
        raise ProtocolError("CONNECT has will QoS or retain without the will flag: flags 0x%02x" % flags)
    # 3.1.1 section 3.1.2.9: if the User Name Flag is 0, the Password Flag MUST be 0.
    if flags & CONNECT_PASSWORD and not flags & CONNECT_USERNAME:
        raise ProtocolError("CONNECT has the password flag without the user name flag: flags 0x%02x" % flags)
    packet.protocol_level = level
    packet.clean_session = (flags & CONNECT_CLEAN_SESSION) != 0
    packet.will_flag = will
    packet.will_qos = will_qos
    packet.will_retain = will_retain
    packet.keepalive = (buf[p + 2] << 8) | buf[p + 3]
    p += 4
    # 3.1.1 section 3.1.3: client id, will topic, will message, user name, password, in this order.
    n = _string(buf, p, end, STRING, "CONNECT client id")
    # 3.1.1 section 3.1.3.1: a zero-byte client id needs CleanSession 1.
    if n == 0 and not packet.clean_session:
        raise ProtocolError("CONNECT client id is empty with clean session 0")
    packet.client_id_start = p + 2
    packet.client_id_length = n
    p += 2 + n
    if will:
        n = _string(buf, p, end, TOPIC_NAME, "CONNECT will topic")
        packet.will_topic_start = p + 2
        packet.will_topic_length = n
        p += 2 + n
        n = _field(buf, p, end, "CONNECT will message")
        packet.will_payload_start = p + 2
        packet.will_payload_length = n
        p += 2 + n
    if flags & CONNECT_USERNAME:
        n = _string(buf, p, end, STRING, "CONNECT user name")
        packet.username_start = p + 2
        packet.username_length = n
        p += 2 + n
    if flags & CONNECT_PASSWORD:
        n = _field(buf, p, end, "CONNECT password")
        packet.password_start = p + 2
        packet.password_length = n
        p += 2 + n
    if p != end:
        raise ProtocolError("CONNECT has %d byte(s) after its last field" % (end - p))


# ---- SUBSCRIBE / UNSUBSCRIBE bodies (broker side; these allocate) -------------


def iter_subscriptions(buf, packet):
    """(topic filter bytes, requested QoS) of a decoded SUBSCRIBE."""
    p = packet.body_start
    end = packet.body_end
    while p < end:
        n = (buf[p] << 8) | buf[p + 1]
        yield bytes(buf[p + 2 : p + 2 + n]), buf[p + 2 + n]
        p += 3 + n


def iter_filters(buf, packet):
    """Topic filter bytes of a decoded UNSUBSCRIBE."""
    p = packet.body_start
    end = packet.body_end
    while p < end:
        n = (buf[p] << 8) | buf[p + 1]
        yield bytes(buf[p + 2 : p + 2 + n])
        p += 2 + n
