# The MQTT 3.1.1 codec, the client's half: what a connected client runs, in
# buffers the caller owns. No I/O, no clock. mqtt.broker_codec is the other
# half (what only a broker sends or reads), kept apart so that a node does
# not load it; so are the parts a node that publishes at QoS 0 and 1 never
# calls: in mqtt.packet_more, the decoder and its Packet record (loaded at
# the first packet the session does not read itself: anything but CONNACK
# accepted, PUBACK and PINGRESP), the acks a node sends (PUBACK, PUBREC,
# PUBREL, PUBCOMP), DISCONNECT, and the packet types and flags as public
# names; the encoders in mqtt.subscribe (SUBSCRIBE, UNSUBSCRIBE: loaded at
# the first subscribe) and mqtt.checked_publish (encode_publish, every
# argument checked: for tests and tools; the session checks a publish once
# and writes it with put_publish). `from mqtt.packet import decode`, `...
# import PUBLISH` still work: this module hands those names over when asked
# (__getattr__ at the bottom), and so does `from mqtt.packet import
# ProtocolError` (the exceptions are in mqtt.errors, made when first raised
# or asked for).
#
# Encoders write one whole packet at buf[offset:] and return its length.
# Illegal input from our own caller is a ValueError raised before a byte is
# written. The hot-path encoders (publish, ping) allocate nothing on
# MicroPython: index stores, slice assignment, no slicing reads.

from compat import const
from mqtt.topic import STRING, TOPIC_NAME, checked

# 3.1.1 section 2.2.1: the control packet types this module writes (all of
# them, public: mqtt.packet_more).
_CONNECT = const(1)
_PINGREQ = const(12)

# 3.1.1 section 2.2.3: four 7-bit groups at most.
_MAX_REMAINING_LENGTH = const(268435455)
_PROTOCOL_LEVEL = const(4)  # 3.1.1 section 3.1.2.2: 3.1.1 is level 4
_MAX_FIELD = const(65535)

# CONNECT flags (3.1.1 section 3.1.2.3).
_CONNECT_CLEAN_SESSION = const(0x02)
_CONNECT_WILL = const(0x04)
_CONNECT_WILL_RETAIN = const(0x20)
_CONNECT_PASSWORD = const(0x40)
_CONNECT_USERNAME = const(0x80)

# Variable header of CONNECT: 00 04 'M' 'Q' 'T' 'T' level flags keepalive(2).
_CONNECT_HEADER_LENGTH = const(10)


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
    if remaining_length < 0 or remaining_length > _MAX_REMAINING_LENGTH:
        from mqtt.error_text import remaining_length_out_of_range

        raise remaining_length_out_of_range(remaining_length)
    i = offset
    while remaining_length > 0x7F:
        buf[i] = (remaining_length & 0x7F) | 0x80
        remaining_length >>= 7
        i += 1
    buf[i] = remaining_length
    return i + 1 - offset


def _check_fits(buf, offset, size, name):
    if offset < 0 or offset + size > len(buf):
        from mqtt.error_text import does_not_fit

        raise does_not_fit(name, size, offset, len(buf))


def _check_qos(qos, what):
    if qos != 0 and qos != 1 and qos != 2:
        from mqtt.error_text import bad_qos

        raise bad_qos(what, qos)


def _binary(value, what):
    # Binary data (3.1.1 section 1.5.3's 2-byte length prefix, no UTF-8 rule).
    data = value.encode() if isinstance(value, str) else value
    if len(data) > _MAX_FIELD:
        from mqtt.error_text import field_too_long

        raise field_too_long(what, len(data))
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
    if remaining_length > _MAX_REMAINING_LENGTH:
        from mqtt.error_text import remaining_length_too_long

        raise remaining_length_too_long(name, remaining_length)
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
        from mqtt.error_text import empty_client_id

        raise empty_client_id()
    if keepalive_s < 0 or keepalive_s > 65535:
        from mqtt.error_text import bad_keepalive_s

        raise bad_keepalive_s(keepalive_s)
    flags = _CONNECT_CLEAN_SESSION if clean_session else 0
    remaining = _CONNECT_HEADER_LENGTH + 2 + len(client_id)
    if will_topic is None:
        # 3.1.1 section 3.1.2.5-3.1.2.7: no will, so no will QoS, retain or message.
        if will_payload is not None or will_qos or will_retain:
            from mqtt.error_text import will_without_topic

            raise will_without_topic(will_payload, will_qos, will_retain)
    else:
        will_topic = checked(will_topic, TOPIC_NAME, "will_topic")
        will_payload = _binary(b"" if will_payload is None else will_payload, "will_payload")
        _check_qos(will_qos, "will_qos")
        flags |= _CONNECT_WILL | (will_qos << 3)
        if will_retain:
            flags |= _CONNECT_WILL_RETAIN
        remaining += 4 + len(will_topic) + len(will_payload)
    if username is None:
        # 3.1.1 section 3.1.2.9: if the User Name Flag is 0, the Password Flag MUST be 0.
        if password is not None:
            from mqtt.error_text import password_without_username

            raise password_without_username()
    else:
        username = checked(username, STRING, "username")
        flags |= _CONNECT_USERNAME
        remaining += 2 + len(username)
        if password is not None:
            password = _binary(password, "password")
            flags |= _CONNECT_PASSWORD
            remaining += 2 + len(password)
    size = _packet_size(remaining, "CONNECT")
    _check_fits(buf, offset, size, "CONNECT")
    i = _put_header(buf, offset, _CONNECT << 4, remaining)
    i = _put_field(buf, i, b"MQTT")  # 3.1.1 section 3.1.2.1
    buf[i] = _PROTOCOL_LEVEL
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


def _encode_empty(buf, offset, packet_type):
    if offset < 0 or offset + 2 > len(buf):
        from mqtt.packet_more import PACKET_NAMES

        _check_fits(buf, offset, 2, PACKET_NAMES[packet_type])
    buf[offset] = packet_type << 4
    buf[offset + 1] = 0
    return 2


def encode_pingreq(buf, offset):
    """PINGREQ (3.1.1 section 3.12): C0 00."""
    return _encode_empty(buf, offset, _PINGREQ)


# The decoder, ProtocolError and the encoders kept in other modules, for
# `from mqtt.packet import ...` (PEP 562's module __getattr__; MicroPython
# has it too): mqtt.packet_more, loaded when first asked, knows where each is
# (names as string literals here would take heap).
def __getattr__(name):
    if name.startswith("__"):  # CPython's import asks for __path__: not one of ours
        raise AttributeError(name)
    from mqtt import packet_more

    return packet_more.handed_over(name)
