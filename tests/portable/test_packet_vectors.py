# Byte-exact MQTT 3.1.1 vectors, worked out by hand from the specification,
# one table driving both the encoders and the decoder (as h11's
# tests/test_io.py does). Runs on CPython and on the MicroPython Unix port.
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
    CONNACK_REASONS,
    CONNECT,
    DISCONNECT,
    MAX_REMAINING_LENGTH,
    PINGREQ,
    PINGRESP,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    SUBACK,
    SUBACK_FAILURE,
    SUBSCRIBE,
    UNSUBACK,
    UNSUBSCRIBE,
    Packet,
    ProtocolError,
    decode_header,
    encode_ack,
    encode_connect,
    encode_disconnect,
    encode_pingreq,
    encode_publish,
    encode_remaining_length,
    encode_subscribe,
    encode_unsubscribe,
    put_publish,
    remaining_length_size,
)
from mqtt.packet import decode as client_decode


def h(*parts):
    """Bytes from hex pieces (one piece per field, spaces ignored)."""
    return bytes.fromhex("".join(parts).replace(" ", ""))


# (name, encoder, encoder arguments, decoded fields, bytes)
# Decoded fields named topic, payload, client_id, will_topic, will_payload,
# username, password, codes are the bytes at <name>_start/<name>_length
# (None when the length is -1: absent); subscriptions and filters are what
# iter_subscriptions / iter_filters yield; the others are Packet attributes.
VECTORS = [
    (
        "CONNECT, clean session, client id only",
        encode_connect,
        {"client_id": "node1", "keepalive_s": 60},
        {
            "type": CONNECT,
            "protocol_level": 4,
            "clean_session": True,
            "keepalive": 60,
            "client_id": b"node1",
            "will_flag": False,
            "will_topic": None,
            "will_payload": None,
            "username": None,
            "password": None,
        },
        h(
            "10",  # CONNECT, flags 0
            "11",  # remaining length 17
            "0004 4d515454",  # protocol name "MQTT" (3.1.2.1)
            "04",  # protocol level 4 (3.1.2.2)
            "02",  # connect flags: clean session
            "003c",  # keepalive 60 s
            "0005 6e6f646531",  # client id "node1"
        ),
    ),
    (
        "CONNECT, every field, will QoS 2 retained, binary password",
        encode_connect,
        {
            "client_id": "n",
            "keepalive_s": 0,
            "clean_session": False,
            "username": "u",
            "password": b"\x00\xff",
            "will_topic": "w/t",
            "will_payload": b"off",
            "will_qos": 2,
            "will_retain": True,
        },
        {
            "type": CONNECT,
            "clean_session": False,
            "keepalive": 0,
            "client_id": b"n",
            "will_flag": True,
            "will_qos": 2,
            "will_retain": True,
            "will_topic": b"w/t",
            "will_payload": b"off",
            "username": b"u",
            "password": b"\x00\xff",
        },
        h(
            "10",  # CONNECT
            "1e",  # remaining length 30
            "0004 4d515454",  # "MQTT"
            "04",  # level 4
            "f4",  # user name, password, will retain, will QoS 2, will; no clean session
            "0000",  # keepalive 0: off
            "0001 6e",  # client id "n"
            "0003 772f74",  # will topic "w/t"
            "0003 6f6666",  # will message "off"
            "0001 75",  # user name "u"
            "0002 00ff",  # password, binary
        ),
    ),
    (
        "CONNECT, empty client id, user name without password, empty will QoS 1",
        encode_connect,
        {"client_id": b"", "keepalive_s": 65535, "username": b"user", "will_topic": b"t", "will_qos": 1},
        {
            "type": CONNECT,
            "clean_session": True,
            "keepalive": 65535,
            "client_id": b"",
            "will_flag": True,
            "will_qos": 1,
            "will_retain": False,
            "will_topic": b"t",
            "will_payload": b"",
            "username": b"user",
            "password": None,
        },
        h(
            "10",  # CONNECT
            "17",  # remaining length 23
            "0004 4d515454",  # "MQTT"
            "04",  # level 4
            "8e",  # user name, will QoS 1, will, clean session
            "ffff",  # keepalive 65535
            "0000",  # client id "" (allowed with clean session, 3.1.3.1)
            "0001 74",  # will topic "t"
            "0000",  # will message, empty
            "0004 75736572",  # user name "user"
        ),
    ),
    (
        "CONNACK accepted",
        encode_connack,
        {"session_present": False, "return_code": 0},
        {"type": CONNACK, "session_present": False, "return_code": 0},
        h("20", "02", "00", "00"),  # CONNACK, length 2, no session, accepted
    ),
    (
        "CONNACK accepted, session present",
        encode_connack,
        {"session_present": True, "return_code": 0},
        {"type": CONNACK, "session_present": True, "return_code": 0},
        h("20", "02", "01", "00"),  # CONNACK, length 2, session present, accepted
    ),
    (
        "CONNACK not authorized",
        encode_connack,
        {"session_present": False, "return_code": 5},
        {"type": CONNACK, "session_present": False, "return_code": 5},
        h("20", "02", "00", "05"),  # CONNACK, length 2, no session, 5 not authorized
    ),
    (
        "PUBLISH QoS 0",
        encode_publish,
        {"topic": b"a/b", "payload": b"hi"},
        {"type": PUBLISH, "qos": 0, "dup": False, "retain": False, "packet_id": 0, "topic": b"a/b", "payload": b"hi"},
        h(
            "30",  # PUBLISH, DUP 0, QoS 0, RETAIN 0
            "07",  # remaining length 7
            "0003 612f62",  # topic "a/b"
            "6869",  # payload "hi" (no packet id at QoS 0)
        ),
    ),
    (
        "PUBLISH QoS 1, DUP, RETAIN",
        encode_publish,
        {"topic": "a/b", "payload": "hi", "qos": 1, "retain": True, "dup": True, "packet_id": 10},
        {"type": PUBLISH, "qos": 1, "dup": True, "retain": True, "packet_id": 10, "topic": b"a/b", "payload": b"hi"},
        h(
            "3b",  # PUBLISH, DUP 1, QoS 1, RETAIN 1
            "09",  # remaining length 9
            "0003 612f62",  # topic "a/b"
            "000a",  # packet id 10
            "6869",  # payload "hi"
        ),
    ),
    (
        "PUBLISH QoS 2, empty payload, packet id 65535",
        encode_publish,
        {"topic": b"a/b", "payload": b"", "qos": 2, "packet_id": 65535},
        {"type": PUBLISH, "qos": 2, "dup": False, "retain": False, "packet_id": 65535, "topic": b"a/b", "payload": b""},
        h(
            "34",  # PUBLISH, DUP 0, QoS 2, RETAIN 0
            "07",  # remaining length 7
            "0003 612f62",  # topic "a/b"
            "ffff",  # packet id 65535
        ),
    ),
    (
        "PUBLISH with a UTF-8 topic, payload_len sending part of a bytearray",
        encode_publish,
        {"topic": "température", "payload": bytearray(b"21.5\x00\x00\x00\x00"), "payload_len": 4},
        {"type": PUBLISH, "qos": 0, "topic": b"temp\xc3\xa9rature", "payload": b"21.5"},
        h(
            "30",  # PUBLISH QoS 0
            "12",  # remaining length 18
            "000c 74656d70 c3a9 726174757265",  # topic "température", é is c3 a9
            "32312e35",  # payload "21.5"
        ),
    ),
    (
        "PUBACK",
        encode_ack,
        {"packet_type": PUBACK, "packet_id": 1},
        {"type": PUBACK, "packet_id": 1},
        h("40", "02", "0001"),  # PUBACK, length 2, packet id 1
    ),
    (
        "PUBREC",
        encode_ack,
        {"packet_type": PUBREC, "packet_id": 0x1234},
        {"type": PUBREC, "packet_id": 0x1234},
        h("50", "02", "1234"),  # PUBREC, length 2, packet id 0x1234
    ),
    (
        "PUBREL",
        encode_ack,
        {"packet_type": PUBREL, "packet_id": 0xABCD},
        {"type": PUBREL, "flags": 2, "packet_id": 0xABCD},
        h("62", "02", "abcd"),  # PUBREL with flags 0b0010 (3.6.1), length 2, packet id 0xabcd
    ),
    (
        "PUBCOMP",
        encode_ack,
        {"packet_type": PUBCOMP, "packet_id": 65535},
        {"type": PUBCOMP, "packet_id": 65535},
        h("70", "02", "ffff"),  # PUBCOMP, length 2, packet id 65535
    ),
    (
        "SUBSCRIBE, three filters",
        encode_subscribe,
        {"packet_id": 1, "subscriptions": [("a/+", 0), (b"#", 1), ("x/#", 2)]},
        {"type": SUBSCRIBE, "flags": 2, "packet_id": 1, "subscriptions": [(b"a/+", 0), (b"#", 1), (b"x/#", 2)]},
        h(
            "82",  # SUBSCRIBE with flags 0b0010 (3.8.1)
            "12",  # remaining length 18
            "0001",  # packet id 1
            "0003 612f2b",  # filter "a/+"
            "00",  # requested QoS 0
            "0001 23",  # filter "#"
            "01",  # requested QoS 1
            "0003 782f23",  # filter "x/#"
            "02",  # requested QoS 2
        ),
    ),
    (
        "SUBACK, every return code",
        encode_suback,
        {"packet_id": 1, "return_codes": (0, 1, 2, SUBACK_FAILURE)},
        {"type": SUBACK, "packet_id": 1, "codes": b"\x00\x01\x02\x80"},
        h(
            "90",  # SUBACK
            "06",  # remaining length 6
            "0001",  # packet id 1
            "00 01 02 80",  # granted QoS 0, 1, 2, failure
        ),
    ),
    (
        "UNSUBSCRIBE, two filters",
        encode_unsubscribe,
        {"packet_id": 2, "filters": ["a/+", b"#"]},
        {"type": UNSUBSCRIBE, "flags": 2, "packet_id": 2, "filters": [b"a/+", b"#"]},
        h(
            "a2",  # UNSUBSCRIBE with flags 0b0010 (3.10.1)
            "0a",  # remaining length 10
            "0002",  # packet id 2
            "0003 612f2b",  # filter "a/+"
            "0001 23",  # filter "#"
        ),
    ),
    (
        "UNSUBACK",
        encode_ack,
        {"packet_type": UNSUBACK, "packet_id": 7},
        {"type": UNSUBACK, "packet_id": 7},
        h("b0", "02", "0007"),  # UNSUBACK, length 2, packet id 7
    ),
    ("PINGREQ", encode_pingreq, {}, {"type": PINGREQ}, h("c0", "00")),  # PINGREQ, length 0
    ("PINGRESP", encode_pingresp, {}, {"type": PINGRESP}, h("d0", "00")),  # PINGRESP, length 0
    ("DISCONNECT", encode_disconnect, {}, {"type": DISCONNECT}, h("e0", "00")),  # DISCONNECT, length 0
]

# Remaining length boundaries (3.1.1 section 2.2.3, table 2.4): value, bytes.
VARINTS = [
    (0, h("00")),
    (127, h("7f")),
    (128, h("80 01")),
    (16383, h("ff 7f")),
    (16384, h("80 80 01")),
    (2097151, h("ff ff 7f")),
    (2097152, h("80 80 80 01")),
    (268435455, h("ff ff ff 7f")),
]

_BYTE_FIELDS = ("topic", "payload", "client_id", "will_topic", "will_payload", "username", "password", "codes")


def check_fields(buf, packet, fields, name):
    for key in fields:
        want = fields[key]
        if key in _BYTE_FIELDS:
            start = getattr(packet, key + "_start")
            length = getattr(packet, key + "_length")
            got = None if length < 0 else bytes(buf[start : start + length])
        elif key == "subscriptions":
            got = list(iter_subscriptions(buf, packet))
        elif key == "filters":
            got = list(iter_filters(buf, packet))
        else:
            got = getattr(packet, key)
        assert got == want, "%s: %s is %r, expected %r" % (name, key, got, want)


def raises(exc_type, fn, *args, **kwargs):
    """The message of the exc_type (exactly that type) fn raises."""
    try:
        fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - the type is checked just below
        assert type(e) is exc_type, "expected %s, got %s: %s" % (exc_type.__name__, type(e).__name__, e)
        return str(e)
    raise AssertionError("%s not raised" % exc_type.__name__)


def feed(data):
    """decode() on a receive buffer that holds data, as a fresh Packet."""
    packet = BrokerPacket()
    buf = bytearray(data)
    return decode(buf, 0, len(buf), packet), packet


# ---- the table, both ways ----------------------------------------------------


def test_every_packet_type_has_a_vector():
    types = set()
    for _, _, _, fields, _ in VECTORS:
        types.add(fields["type"])
    assert types == set(range(1, 15)), sorted(types)


def test_encoders_write_the_vector_bytes():
    for name, encoder, args, _, data in VECTORS:
        buf = bytearray(len(data))
        n = encoder(buf, 0, **args)
        assert n == len(data), "%s: wrote %d bytes, expected %d" % (name, n, len(data))
        assert bytes(buf) == data, "%s: %s" % (name, bytes(buf).hex())


def test_encoders_write_at_an_offset_and_nothing_around_it():
    for name, encoder, args, _, data in VECTORS:
        buf = bytearray(b"\xaa" * (len(data) + 10))
        n = encoder(buf, 3, **args)
        assert n == len(data), name
        assert bytes(buf[3 : 3 + n]) == data, name
        assert buf[:3] == b"\xaa\xaa\xaa" and buf[3 + n :] == b"\xaa" * 7, name


def test_encoders_write_into_a_memoryview():
    for name, encoder, args, _, data in VECTORS:
        buf = bytearray(len(data) + 4)
        n = encoder(memoryview(buf)[2:], 0, **args)
        assert bytes(buf[2 : 2 + n]) == data, name


def test_decoder_reads_the_vector_fields():
    for name, _, _, fields, data in VECTORS:
        n, packet = feed(data)
        assert n == len(data), "%s: decode returned %d" % (name, n)
        assert packet.length == len(data) and packet.remaining_length == len(data) - packet.header_length, name
        check_fields(data, packet, fields, name)


def test_decoder_fed_one_byte_at_a_time():
    # The receive buffer fills one byte per read: incomplete until the last
    # byte, and the shortfall is exact once the fixed header is in.
    packet = BrokerPacket()
    for name, _, _, fields, data in VECTORS:
        buf = bytearray(len(data))
        for have in range(len(data)):
            buf[have] = data[have]
            got = decode(buf, 0, have, packet)
            missing = len(data) - have
            assert got < 0 and -got <= missing, "%s: %d bytes in, decode returned %d" % (name, have, got)
            if decode_header(buf, 0, have, packet) > 0:
                assert -got == missing, "%s: %d bytes in, header known, decode returned %d" % (name, have, got)
        assert decode(buf, 0, len(data), packet) == len(data), name
        check_fields(buf, packet, fields, name)


def test_decoder_walks_a_stream_of_every_vector_at_offsets():
    stream = bytearray(b"\xee\xee")  # not a packet: decoding starts at offset 2
    for _, _, _, _, data in VECTORS:
        stream += data
    packet = BrokerPacket()
    start = 2
    for name, _, _, fields, data in VECTORS:
        n = decode(stream, start, len(stream), packet)
        assert n == len(data), name
        check_fields(stream, packet, fields, name)
        start += n
    assert start == len(stream)
    assert decode(stream, start, len(stream), packet) == -2


def test_decode_resets_fields_from_the_previous_packet():
    packet = BrokerPacket()
    decode(h("3b 09 0003 612f62 000a 6869"), 0, 11, packet)  # PUBLISH QoS 1, DUP, RETAIN, id 10
    assert packet.packet_id == 10 and packet.retain
    decode(h("d0 00"), 0, 2, packet)  # PINGRESP
    assert packet.type == PINGRESP
    assert packet.packet_id == 0 and not packet.retain and not packet.dup and packet.qos == 0
    assert packet.topic_length == 0 and packet.payload_length == 0 and packet.username_length == -1


def test_encoders_accept_str_bytes_bytearray_and_memoryview_alike():
    want = bytearray(64)
    n = encode_publish(want, 0, b"house/x", b"21.5", 1, True, False, 3)
    for topic in ("house/x", b"house/x", bytearray(b"house/x"), memoryview(b"house/x")):
        for payload in ("21.5", b"21.5", bytearray(b"21.5"), memoryview(b"21.5")):
            buf = bytearray(64)
            assert encode_publish(buf, 0, topic, payload, 1, True, False, 3) == n
            assert buf == want, (topic, payload)
    buf = bytearray(64)
    m = encode_connect(buf, 0, memoryview(b"id"), 5, True, bytearray(b"u"), memoryview(b"p"))
    other = bytearray(64)
    assert encode_connect(other, 0, "id", 5, True, "u", "p") == m and buf == other


def test_publish_payload_none_is_empty():
    buf = bytearray(16)
    assert encode_publish(buf, 0, "t", None) == 5
    assert bytes(buf[:5]) == h("30 03 0001 74")  # PUBLISH, length 3, topic "t", no payload


def test_put_publish_writes_what_encode_publish_writes():
    # The session writes with put_publish (its arguments checked once);
    # encode_publish checks them every time. The same bytes either way, at
    # each size of the remaining-length field.
    for payload_size in (0, 4, 100, 16400):
        payload = bytearray(0x30 + i % 10 for i in range(payload_size))
        for qos, retain, dup, packet_id, payload_len in (
            (0, False, False, 0, -1),
            (1, True, False, 7, -1),
            (2, False, True, 65535, -1),
            (1, False, False, 300, payload_size // 2),
        ):
            expected = bytearray(payload_size + 40)
            n = encode_publish(expected, 3, b"house/t", payload, qos, retain, dup, packet_id, payload_len)
            got = bytearray(payload_size + 40)
            first = 0x30 | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
            length = payload_size if payload_len < 0 else payload_len
            assert put_publish(got, 3, len(got), first, b"house/t", payload, length, packet_id) == n
            assert got == expected, (payload_size, qos)


def test_put_publish_that_would_not_end_by_the_limit_returns_minus_its_size_and_writes_nothing():
    buf = bytearray(b"\xaa" * 64)
    # 2 + 2 + 7 + 2 + 20 = 33 bytes.
    assert put_publish(buf, 10, 42, 0x32, b"house/t", b"x" * 20, 20, 1) == -33
    assert put_publish(buf, 10, 43, 0x32, b"house/t", b"x" * 20, 20, 1) == 33
    assert buf[:10] == b"\xaa" * 10 and buf[43:] == b"\xaa" * 21
    buf = bytearray(b"\xaa" * 64)
    assert put_publish(buf, 0, 64, 0x30, b"t", b"x" * 200, 200, 0) == -206  # 3 + 2 + 1 + 200
    assert buf == b"\xaa" * 64


# ---- remaining length --------------------------------------------------------


def test_remaining_length_boundaries_encode():
    for value, data in VARINTS:
        buf = bytearray(4)
        assert remaining_length_size(value) == len(data), value
        assert encode_remaining_length(buf, 0, value) == len(data), value
        assert bytes(buf[: len(data)]) == data, value


def test_remaining_length_boundaries_decode_from_a_header_alone():
    packet = BrokerPacket()
    for value, data in VARINTS:
        header = bytearray(b"\x30") + data  # a PUBLISH header, body still to come
        assert decode_header(header, 0, len(header), packet) == len(header), value
        assert packet.type == PUBLISH and packet.remaining_length == value, value
        assert packet.header_length == len(header) and packet.length == len(header) + value
        if value:
            assert decode(header, 0, len(header), packet) == -value, value
        # Every prefix of the header is incomplete: at least one more byte.
        for have in range(len(header)):
            assert decode_header(header, 0, have, packet) < 0, (value, have)


def test_remaining_length_boundaries_through_whole_publish_packets():
    # Topic "t" and no packet id: remaining length = 3 + payload bytes.
    buf = bytearray(16384 + 8)
    packet = BrokerPacket()
    for value, data in VARINTS[1:5]:
        payload = bytearray(value - 3)
        n = encode_publish(buf, 0, b"t", payload)
        assert n == 1 + len(data) + value, value
        assert buf[0] == 0x30 and bytes(buf[1 : 1 + len(data)]) == data, value
        assert decode(buf, 0, n, packet) == n and packet.payload_length == value - 3, value
        assert decode(buf, 0, n - 1, packet) == -1, value


def test_remaining_length_decoding_is_a_loop_that_stops_at_4_bytes():
    # 3.1.1 section 2.2.3: at most 4 bytes; a 4th byte with the continuation bit is malformed.
    message = raises(ProtocolError, feed, h("30 ff ff ff ff 01"))
    assert "remaining length continues past 4 bytes (4th byte 0xff)" in message, message
    message = raises(ProtocolError, feed, h("c0 80 80 80 80"))
    assert "4th byte 0x80" in message, message
    # A non-minimal encoding is not forbidden by 3.1.1 and is read as its value.
    n, packet = feed(h("c0 80 00"))  # PINGREQ, remaining length 0 in two bytes
    assert n == 3 and packet.type == PINGREQ and packet.header_length == 3


def test_remaining_length_out_of_range_is_a_value_error():
    buf = bytearray(8)
    assert "got 268435456" in raises(ValueError, encode_remaining_length, buf, 0, MAX_REMAINING_LENGTH + 1)
    assert "got -1" in raises(ValueError, encode_remaining_length, buf, 0, -1)


# ---- peer garbage: ProtocolError naming the field and the value -----------------

# (bytes, what the message says)
MALFORMED = [
    # Fixed header (3.1.1 section 2.2).
    (h("00 00"), "packet type 0 is reserved (first byte 0x00)"),
    (h("f0 00"), "packet type 15 is reserved (first byte 0xf0)"),
    (h("36 05 0001 61 0001"), "PUBLISH QoS is 3 (first byte 0x36)"),
    (h("38 05 0003 612f62"), "PUBLISH QoS 0 has DUP set (first byte 0x38)"),
    (h("11 00"), "CONNECT flags must be 0, got 0x1"),
    (h("22 02 0000"), "CONNACK flags must be 0, got 0x2"),
    (h("41 02 0001"), "PUBACK flags must be 0, got 0x1"),
    (h("58 02 0001"), "PUBREC flags must be 0, got 0x8"),
    (h("60 02 0001"), "PUBREL flags must be 0b0010, got 0x0"),
    (h("72 02 0001"), "PUBCOMP flags must be 0, got 0x2"),
    (h("80 06 0001 0001 61 00"), "SUBSCRIBE flags must be 0b0010, got 0x0"),
    (h("93 03 0001 00"), "SUBACK flags must be 0, got 0x3"),
    (h("a3 05 0001 0001 61"), "UNSUBSCRIBE flags must be 0b0010, got 0x3"),
    (h("b4 02 0001"), "UNSUBACK flags must be 0, got 0x4"),
    (h("c1 00"), "PINGREQ flags must be 0, got 0x1"),
    (h("d2 00"), "PINGRESP flags must be 0, got 0x2"),
    (h("e8 00"), "DISCONNECT flags must be 0, got 0x8"),
    # Fixed-size packets with another remaining length, refused before the body arrives.
    (h("20 03"), "CONNACK remaining length must be 2, got 3"),
    (h("40 01"), "PUBACK remaining length must be 2, got 1"),
    (h("50 00"), "PUBREC remaining length must be 2, got 0"),
    (h("62 ff ff ff 7f"), "PUBREL remaining length must be 2, got 268435455"),
    (h("70 03 0001 00"), "PUBCOMP remaining length must be 2, got 3"),
    (h("b0 04"), "UNSUBACK remaining length must be 2, got 4"),
    (h("c0 01 00"), "PINGREQ remaining length must be 0, got 1"),
    (h("d0 7f"), "PINGRESP remaining length must be 0, got 127"),
    (h("e0 01"), "DISCONNECT remaining length must be 0, got 1"),
    # Packet identifiers (3.1.1 section 2.3.1).
    (h("40 02 0000"), "PUBACK packet id is 0"),
    (h("50 02 0000"), "PUBREC packet id is 0"),
    (h("62 02 0000"), "PUBREL packet id is 0"),
    (h("70 02 0000"), "PUBCOMP packet id is 0"),
    (h("b0 02 0000"), "UNSUBACK packet id is 0"),
    # PUBLISH (3.1.1 section 3.3).
    (h("30 00"), "PUBLISH remaining length 0 leaves no room for a topic"),
    (h("30 01 00"), "PUBLISH remaining length 1 leaves no room for a topic"),
    (h("30 02 0000"), "PUBLISH topic is empty"),
    (h("30 04 0005 6162"), "PUBLISH topic length 5 exceeds the 2 byte(s) left in the packet"),
    (h("30 05 0003 612b62"), "PUBLISH topic contains the wildcard '+' at byte 1"),
    (h("30 05 0003 612f23"), "PUBLISH topic contains the wildcard '#' at byte 2"),
    (h("30 05 0003 610062"), "PUBLISH topic contains U+0000 at byte 1"),
    (h("30 05 0003 61ff62"), "PUBLISH topic is not valid UTF-8 at byte 1"),
    (h("30 06 0004 61 c080 62"), "PUBLISH topic is not valid UTF-8 at byte 1"),  # overlong "\0"
    (h("30 05 0003 eda080"), "PUBLISH topic is not valid UTF-8 at byte 0"),  # surrogate U+D800
    (h("30 06 0004 f4908080"), "PUBLISH topic is not valid UTF-8 at byte 0"),  # above U+10FFFF
    (h("30 04 0002 61e2"), "PUBLISH topic is not valid UTF-8 at byte 1"),  # cut-off sequence
    (h("30 05 0003 61 80 62"), "PUBLISH topic is not valid UTF-8 at byte 1"),  # lone continuation
    (h("32 05 0003 612f62"), "PUBLISH has no room for its packet id (0 byte(s) left)"),
    (h("34 06 0003 612f62 00"), "PUBLISH has no room for its packet id (1 byte(s) left)"),
    (h("32 07 0003 612f62 0000"), "PUBLISH packet id is 0"),
    # CONNACK (3.1.1 section 3.2).
    (h("20 02 02 00"), "CONNACK acknowledge flags has reserved bits set: 0x02"),
    (h("20 02 00 06"), "CONNACK return code 6 is reserved"),
    (h("20 02 00 ff"), "CONNACK return code 255 is reserved"),
    (h("20 02 01 05"), "CONNACK session present is 1 with return code 5"),
    # SUBACK (3.1.1 section 3.9).
    (h("90 02 0001"), "SUBACK has no return codes"),
    (h("90 03 0000 00"), "SUBACK packet id is 0"),
    (h("90 04 0001 00 03"), "SUBACK return code 0x03 is not 0, 1, 2 or 0x80"),
    (h("90 03 0001 81"), "SUBACK return code 0x81 is not 0, 1, 2 or 0x80"),
    (h("90 01 00"), "SUBACK has no room for its packet id (1 byte(s) left)"),
    # SUBSCRIBE (3.1.1 section 3.8).
    (h("82 02 0001"), "SUBSCRIBE has no topic filters"),
    (h("82 06 0000 0001 61 00"), "SUBSCRIBE packet id is 0"),
    (h("82 05 0001 0001 61"), "SUBSCRIBE topic filter 1 has no requested QoS byte"),
    (h("82 06 0001 0001 61 03"), "SUBSCRIBE topic filter 1 requested QoS byte is 0x03"),
    (h("82 06 0001 0001 61 04"), "SUBSCRIBE topic filter 1 requested QoS byte is 0x04"),  # reserved bits
    (h("82 05 0001 0000 00"), "SUBSCRIBE topic filter 1 is empty"),
    (h("82 05 0001 0005 61"), "SUBSCRIBE topic filter 1 length 5 exceeds the 1 byte(s) left in the packet"),
    (h("82 03 0001 00"), "SUBSCRIBE topic filter 1 length is cut off: 1 byte(s) left in the packet"),
    (h("82 07 0001 0002 612b 00"), "SUBSCRIBE topic filter 1 has '+' at byte 1, not alone in its level"),
    (h("82 0b 0001 0001 61 00 0002 2361 01"), "SUBSCRIBE topic filter 2 has '#' at byte 0, not alone as the last"),
    (h("82 06 0001 0001 00 00"), "SUBSCRIBE topic filter 1 contains U+0000 at byte 0"),
    (h("82 06 0001 0001 c3 00"), "SUBSCRIBE topic filter 1 is not valid UTF-8 at byte 0"),
    # UNSUBSCRIBE (3.1.1 section 3.10).
    (h("a2 02 0001"), "UNSUBSCRIBE has no topic filters"),
    (h("a2 05 0000 0001 61"), "UNSUBSCRIBE packet id is 0"),
    (h("a2 06 0001 0002 2361"), "UNSUBSCRIBE topic filter 1 has '#' at byte 0, not alone as the last level"),
    (h("a2 04 0001 0000"), "UNSUBSCRIBE topic filter 1 is empty"),
    # CONNECT (3.1.1 section 3.1).
    (h("10 01 00"), "CONNECT protocol name length is cut off: 1 byte(s) left in the packet"),
    (h("10 0f 0006 4d5149736470 03 02 003c 0001 61"), "CONNECT protocol name is not 'MQTT': 'MQIsdp'"),
    (h("10 0d 0004 4d515454 05 02 003c 0001 61"), "CONNECT protocol level must be 4, got 5"),
    (h("10 0d 0004 4d515444 04 02 003c 0001 61"), "CONNECT protocol name is not 'MQTT': 'MQTD'"),
    (h("10 08 0004 4d515454 04 02"), "CONNECT variable header is cut off: 2 byte(s) after the protocol name"),
    (h("10 0d 0004 4d515454 04 03 003c 0001 61"), "CONNECT reserved flag is set: flags 0x03"),
    (h("10 0d 0004 4d515454 04 1e 003c 0001 61"), "CONNECT will QoS is 3: flags 0x1e"),
    (h("10 0d 0004 4d515454 04 0a 003c 0001 61"), "will QoS or retain without the will flag: flags 0x0a"),
    (h("10 0d 0004 4d515454 04 22 003c 0001 61"), "will QoS or retain without the will flag: flags 0x22"),
    (h("10 10 0004 4d515454 04 42 003c 0001 61 0001 70"), "password flag without the user name flag: flags 0x42"),
    (h("10 0c 0004 4d515454 04 00 003c 0000"), "CONNECT client id is empty with clean session 0"),
    (h("10 0d 0004 4d515454 04 02 003c 0009 61"), "CONNECT client id length 9 exceeds the 1 byte(s) left"),
    (h("10 0d 0004 4d515454 04 02 003c 0001 ff"), "CONNECT client id is not valid UTF-8 at byte 0"),
    (h("10 0e 0004 4d515454 04 02 003c 0001 61 00"), "CONNECT has 1 byte(s) after its last field"),
    (h("10 0d 0004 4d515454 04 82 003c 0001 61"), "CONNECT user name length is cut off: 0 byte(s) left"),
    (h("10 0d 0004 4d515454 04 06 003c 0001 61"), "CONNECT will topic length is cut off: 0 byte(s) left"),
    (h("10 12 0004 4d515454 04 06 003c 0001 61 0001 23 0000"), "CONNECT will topic contains the wildcard '#'"),
    (h("10 10 0004 4d515454 04 06 003c 0001 61 0001 74"), "CONNECT will message length is cut off"),
    (h("10 11 0004 4d515454 04 c2 003c 0001 61 0001 75 00"), "CONNECT password length is cut off: 1 byte(s)"),
    (h("10 11 0004 4d515454 04 82 003c 0001 61 0002 0000"), "CONNECT user name contains U+0000 at byte 0"),
]


def test_malformed_packets_are_protocol_errors_naming_field_and_value():
    for data, expected in MALFORMED:
        message = raises(ProtocolError, feed, data)
        assert expected in message, "%s: %r, expected %r" % (data.hex(), message, expected)


def test_malformed_bytes_fed_one_at_a_time_fail_or_wait_never_else():
    # Any prefix either waits (negative) or fails the same way the whole does.
    packet = BrokerPacket()
    for data, expected in MALFORMED:
        buf = bytearray(data)
        for have in range(len(data) + 1):
            try:
                got = decode(buf, 0, have, packet)
            except ProtocolError as e:
                assert expected in str(e), "%s[:%d]: %s" % (data.hex(), have, e)
                break
            assert got < 0, "%s[:%d] decoded as %d" % (data.hex(), have, got)
        else:
            raise AssertionError("%s: never failed" % data.hex())


def test_protocol_error_is_not_a_value_error():
    # The client drops the link on ProtocolError, and reports ValueError to the caller.
    assert not issubclass(ProtocolError, ValueError)


def test_the_client_half_refuses_what_only_a_client_sends():
    # 3.1.1 section 2.2.1: a broker never sends CONNECT, SUBSCRIBE or
    # UNSUBSCRIBE. The client's decoder has no code for their bodies (a board
    # does not load it); the broker half decodes the same bytes.
    for name, encoder, args in (
        ("CONNECT", encode_connect, ("node", 30)),
        ("SUBSCRIBE", encode_subscribe, (7, [("house/#", 1)])),
        ("UNSUBSCRIBE", encode_unsubscribe, (8, ["house/#"])),
    ):
        buf = bytearray(64)
        n = encoder(buf, 0, *args)
        message = raises(ProtocolError, client_decode, buf, 0, n, Packet())
        assert message == name + " is sent by clients only", message
        assert decode(buf, 0, n, BrokerPacket()) == n, name


def test_decode_range_outside_the_buffer_is_a_value_error():
    buf = bytearray(4)
    packet = BrokerPacket()
    assert "decode range 0..5 is not within a 4-byte buffer" in raises(ValueError, decode, buf, 0, 5, packet)
    assert "decode range 3..2" in raises(ValueError, decode, buf, 3, 2, packet)
    assert "decode range -1..2" in raises(ValueError, decode, buf, -1, 2, packet)


# ---- caller mistakes: ValueError naming the value, nothing written -------------


# (encoder, positional arguments after buf and offset, keyword arguments, what the message says),
# made one case at a time: five of them hold a 64 KiB value, more than a
# board's heap holds at once.
def illegal_cases():
    yield (encode_publish, ("t", b"x"), {"qos": 3}, "qos must be 0, 1 or 2, got 3")
    yield (encode_publish, ("t", b"x"), {"qos": -1}, "qos must be 0, 1 or 2, got -1")
    yield (encode_publish, ("t", b"x"), {"qos": 1}, "packet_id must be 1..65535 for QoS 1, got 0")
    yield (
        encode_publish,
        ("t", b"x"),
        {"qos": 2, "packet_id": 65536},
        "packet_id must be 1..65535 for QoS 2, got 65536",
    )
    yield (encode_publish, ("t", b"x"), {"dup": True}, "dup must be False for QoS 0, got True")
    yield (encode_publish, ("", b"x"), {}, "topic must be 1..65535 bytes, got 0")
    yield (encode_publish, (b"t" * 65536, b"x"), {}, "topic must be 1..65535 bytes, got 65536")
    yield (encode_publish, ("t", b"1234"), {"payload_len": 5}, "payload_len must be -1 or 0..4, got 5")
    yield (encode_publish, ("t", b"1234"), {"payload_len": -2}, "payload_len must be -1 or 0..4, got -2")
    yield (encode_publish, ("t", b"x" * 60), {}, "PUBLISH of 65 bytes does not fit at offset 0 of a 64-byte buffer")
    yield (encode_ack, (PUBLISH, 1), {}, "packet_type must be PUBACK, PUBREC, PUBREL, PUBCOMP or UNSUBACK, got 3")
    yield (encode_ack, (PUBACK, 0), {}, "PUBACK packet_id must be 1..65535, got 0")
    yield (encode_ack, (PUBREL, 65536), {}, "PUBREL packet_id must be 1..65535, got 65536")
    yield (encode_connect, ("", 60), {"clean_session": False}, "an empty client_id needs clean_session=True")
    yield (encode_connect, ("id", 65536), {}, "keepalive_s must be 0..65535, got 65536")
    yield (encode_connect, ("id", -1), {}, "keepalive_s must be 0..65535, got -1")
    yield (
        encode_connect,
        ("id", 60),
        {"password": b"pw"},
        "a password needs a username in MQTT 3.1.1 (section 3.1.2.9)",
    )
    yield (encode_connect, ("id", 60), {"will_payload": b"x"}, "need a will_topic, got b'x', 0, False")
    yield (encode_connect, ("id", 60), {"will_qos": 1}, "need a will_topic, got None, 1, False")
    yield (encode_connect, ("id", 60), {"will_retain": True}, "need a will_topic, got None, 0, True")
    yield (encode_connect, ("id", 60), {"will_topic": "w", "will_qos": 3}, "will_qos must be 0, 1 or 2, got 3")
    yield (encode_connect, ("id", 60), {"will_topic": "a/#"}, "will_topic contains the wildcard '#' at byte 2: 'a/#'")
    yield (encode_connect, ("id", 60), {"will_topic": ""}, "will_topic is empty")
    yield (encode_connect, ("id", 60), {"will_topic": "w", "will_payload": bytes(65536)}, "will_payload is 65536 bytes")
    yield (encode_connect, ("i\x00d", 60), {}, "client_id contains U+0000 at byte 1: 'i\\x00d'")
    yield (encode_connect, (b"\xc3(", 60), {}, "client_id is not valid UTF-8 at byte 0: b'\\xc3('")
    yield (encode_connect, ("x" * 65536, 60), {}, "client_id is 65536 bytes, more than 65535: 'xxxxx")
    yield (encode_connect, ("id", 60), {"username": b"\xff"}, "username is not valid UTF-8 at byte 0: b'\\xff'")
    yield (encode_connect, ("id", 60), {"username": "u", "password": bytes(65536)}, "password is 65536 bytes")
    yield (encode_connect, ("id" * 30, 60), {}, "CONNECT of 74 bytes does not fit at offset 0 of a 64-byte buffer")
    yield (encode_subscribe, (0, [("a", 0)]), {}, "SUBSCRIBE packet_id must be 1..65535, got 0")
    yield (encode_subscribe, (1, []), {}, "subscriptions must be a non-empty sequence, got []")
    yield (encode_subscribe, (1, "a/b"), {}, "subscriptions must be a non-empty sequence, got 'a/b'")
    yield (
        encode_subscribe,
        (1, [("a/#/b", 0)]),
        {},
        "topic filter has '#' at byte 2, not alone as the last level: 'a/#/b'",
    )
    yield (encode_subscribe, (1, [("a+", 0)]), {}, "topic filter has '+' at byte 1, not alone in its level: 'a+'")
    yield (encode_subscribe, (1, [("", 0)]), {}, "topic filter is empty")
    yield (encode_subscribe, (1, [("a", 3)]), {}, "requested qos must be 0, 1 or 2, got 3")
    yield (encode_subscribe, (1, [("a" * 60, 0)]), {}, "SUBSCRIBE of 67 bytes does not fit")
    yield (encode_unsubscribe, (65536, ["a"]), {}, "UNSUBSCRIBE packet_id must be 1..65535, got 65536")
    yield (encode_unsubscribe, (1, ()), {}, "filters must be a non-empty sequence, got ()")
    yield (encode_unsubscribe, (1, b"a/b"), {}, "filters must be a non-empty sequence, got b'a/b'")
    yield (encode_unsubscribe, (1, ["a/\x00"]), {}, "topic filter contains U+0000 at byte 2: 'a/\\x00'")
    yield (encode_connack, (False, 6), {}, "return_code must be 0..5, got 6")
    yield (encode_connack, (True, 1), {}, "session_present must be False with return_code 1")
    yield (encode_suback, (1, [0, 3]), {}, "SUBACK return code must be 0, 1, 2 or 0x80, got 3")
    yield (encode_suback, (1, []), {}, "return_codes must be a non-empty sequence, got []")
    yield (encode_suback, (0, [0]), {}, "SUBACK packet_id must be 1..65535, got 0")


def test_illegal_caller_input_is_a_value_error_and_writes_nothing():
    for encoder, args, kwargs, expected in illegal_cases():
        buf = bytearray(b"\xaa" * 64)
        message = raises(ValueError, encoder, buf, 0, *args, **kwargs)
        assert expected in message, "%r: %r, expected %r" % (args, message, expected)
        assert buf == b"\xaa" * 64, "%r wrote before refusing" % (args,)


def test_no_room_is_a_value_error_for_every_encoder():
    # Each vector's encoder, one byte short, and at an offset past the end.
    for name, encoder, args, _, data in VECTORS:
        buf = bytearray(b"\xaa" * (len(data) + 1))
        message = raises(ValueError, encoder, buf, 2, **args)
        expected = "of %d bytes does not fit at offset 2 of a %d-byte buffer" % (len(data), len(data) + 1)
        assert expected in message, "%s: %s" % (name, message)
        assert buf == b"\xaa" * (len(data) + 1), name
        assert "at offset -1" in raises(ValueError, encoder, bytearray(64), -1, **args), name


def test_connack_reasons_are_indexed_by_return_code():
    assert len(CONNACK_REASONS) == 6
    assert CONNACK_REASONS[0] == "accepted" and CONNACK_REASONS[5] == "not authorized"
