"""Property tests of the codec on CPython (hypothesis): every packet type
round-trips through encode and decode over the full range of its fields,
decoding is the same however the bytes are split, and the byte-level
checker agrees with Python's own UTF-8 decoder and a reference topic matcher."""

import re

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

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
    MAX_REMAINING_LENGTH,
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
    remaining_length_size,
)
from mqtt.topic import STRING, TOPIC_NAME, scan, topic_matches, validate_topic_filter

# Per test, not a global profile: other modules' hypothesis settings stay theirs.
codec_settings = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# ---- strategies ----------------------------------------------------------------

# Any Unicode scalar value but U+0000 (3.1.1 section 1.5.3); surrogates cannot be encoded.
_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
_NAME_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00+#")


def _utf8(text_strategy, min_bytes=0):
    return text_strategy.map(str.encode).filter(lambda b: min_bytes <= len(b) <= 65535)


def _long(fill):
    # The far end of the 2-byte length range: up to 65535 bytes.
    return st.integers(60000, 65535).map(lambda n: fill * n)


strings = st.one_of(_utf8(st.text(_CHARS, max_size=40)), _long(b"s"))
topic_names = st.one_of(_utf8(st.text(_NAME_CHARS, min_size=1, max_size=40), 1), _long(b"t"), st.just(b"/"))
binary = st.one_of(st.binary(max_size=300), st.integers(60000, 65535).map(bytes))
packet_ids = st.integers(1, 65535)
qos_levels = st.integers(0, 2)


@st.composite
def topic_filters(draw):
    levels = draw(st.lists(st.one_of(st.just("+"), st.text(_NAME_CHARS, max_size=8)), min_size=1, max_size=6))
    if draw(st.booleans()):
        levels.append("#")
    data = "/".join(levels).encode()
    assume(0 < len(data) <= 65535)
    return data


@st.composite
def payloads(draw):
    # Mostly small; sometimes past each remaining-length boundary, up to the 4-byte form.
    size = draw(
        st.one_of(
            st.integers(0, 200),
            st.integers(16300, 16500),
            st.integers(2097000, 2097200),
            st.sampled_from([0, 1, 120, 125, 126, 16380, 16381, 2097148, 2097149]),
        )
    )
    return bytes([draw(st.integers(0, 255))]) * size


def decoded(data, offset=0):
    """decode() of data placed at `offset` in a larger buffer: (packet, buffer)."""
    buf = bytearray(offset) + data + b"\xff\xff"
    packet = BrokerPacket()
    n = decode(buf, offset, offset + len(data), packet)
    assert n == len(data) == packet.length
    assert decode(buf, offset, offset + len(data) - 1, packet) == -1
    assert decode(buf, offset, offset + len(data), packet) == n
    return packet, buf


def field(buf, packet, name):
    length = getattr(packet, name + "_length")
    if length < 0:
        return None
    start = getattr(packet, name + "_start")
    return bytes(buf[start : start + length])


def encoded(encoder, *args, size=400000, **kwargs):
    buf = bytearray(size)
    n = encoder(buf, 0, *args, **kwargs)
    return bytes(buf[:n])


# ---- round trips, every type ---------------------------------------------------


@codec_settings
@given(
    topic=topic_names,
    payload=payloads(),
    qos=qos_levels,
    retain=st.booleans(),
    dup=st.booleans(),
    packet_id=packet_ids,
    offset=st.integers(0, 9),
    cut=st.integers(0, 10),
)
@example(topic=b"t" * 65535, payload=b"", qos=2, retain=True, dup=True, packet_id=65535, offset=0, cut=0)
def test_publish_round_trip(topic, payload, qos, retain, dup, packet_id, offset, cut):
    dup = dup and qos > 0
    size = len(topic) + len(payload) + 16
    data = encoded(encode_publish, topic, payload, qos, retain, dup, packet_id, size=size)
    # Sending a prefix of the payload is the same as sending that prefix.
    payload_len = max(0, len(payload) - cut)
    prefix = encoded(encode_publish, topic, payload[:payload_len], qos, retain, dup, packet_id, size=size)
    assert encoded(encode_publish, topic, payload, qos, retain, dup, packet_id, payload_len, size=size) == prefix
    packet, buf = decoded(data, offset)
    assert packet.type == PUBLISH
    assert (packet.qos, packet.retain, packet.dup) == (qos, retain, dup)
    assert packet.packet_id == (packet_id if qos else 0)
    assert field(buf, packet, "topic") == topic
    assert field(buf, packet, "payload") == payload
    assert packet.header_length == 1 + remaining_length_size(packet.remaining_length)


@codec_settings
@given(
    client_id=strings,
    keepalive=st.integers(0, 65535),
    clean=st.booleans(),
    username=st.none() | strings,
    password=st.none() | binary,
    will=st.none() | st.tuples(topic_names, binary, qos_levels, st.booleans()),
)
def test_connect_round_trip(client_id, keepalive, clean, username, password, will):
    clean = clean or not client_id
    if username is None:
        password = None
    will_topic, will_payload, will_qos, will_retain = will or (None, None, 0, False)
    data = encoded(
        encode_connect, client_id, keepalive, clean, username, password, will_topic, will_payload, will_qos, will_retain
    )
    packet, buf = decoded(data)
    assert packet.type == CONNECT and packet.protocol_level == 4
    assert (packet.keepalive, packet.clean_session) == (keepalive, clean)
    assert field(buf, packet, "client_id") == client_id
    assert field(buf, packet, "username") == username
    assert field(buf, packet, "password") == password
    assert packet.will_flag == (will is not None)
    assert field(buf, packet, "will_topic") == will_topic
    assert field(buf, packet, "will_payload") == will_payload
    assert (packet.will_qos, packet.will_retain) == (will_qos, will_retain)


@codec_settings
@given(session_present=st.booleans(), return_code=st.integers(0, 5))
def test_connack_round_trip(session_present, return_code):
    session_present = session_present and return_code == 0
    packet, _ = decoded(encoded(encode_connack, session_present, return_code))
    assert packet.type == CONNACK
    assert (packet.session_present, packet.return_code) == (session_present, return_code)


@codec_settings
@given(packet_type=st.sampled_from([PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK]), packet_id=packet_ids)
@example(packet_type=PUBACK, packet_id=1)
@example(packet_type=PUBREL, packet_id=65535)
def test_ack_round_trip(packet_type, packet_id):
    data = encoded(encode_ack, packet_type, packet_id)
    assert len(data) == 4
    packet, _ = decoded(data)
    assert (packet.type, packet.packet_id) == (packet_type, packet_id)


@codec_settings
@given(packet_id=packet_ids, subscriptions=st.lists(st.tuples(topic_filters(), qos_levels), min_size=1, max_size=20))
def test_subscribe_round_trip(packet_id, subscriptions):
    packet, buf = decoded(encoded(encode_subscribe, packet_id, subscriptions))
    assert (packet.type, packet.flags, packet.packet_id) == (SUBSCRIBE, 2, packet_id)
    assert list(iter_subscriptions(buf, packet)) == subscriptions


@codec_settings
@given(packet_id=packet_ids, codes=st.lists(st.sampled_from([0, 1, 2, 0x80]), min_size=1, max_size=300))
def test_suback_round_trip(packet_id, codes):
    packet, buf = decoded(encoded(encode_suback, packet_id, codes))
    assert (packet.type, packet.packet_id) == (SUBACK, packet_id)
    assert list(buf[packet.codes_start : packet.codes_start + packet.codes_length]) == codes


@codec_settings
@given(packet_id=packet_ids, filters=st.lists(topic_filters(), min_size=1, max_size=20))
def test_unsubscribe_round_trip(packet_id, filters):
    packet, buf = decoded(encoded(encode_unsubscribe, packet_id, filters))
    assert (packet.type, packet.flags, packet.packet_id) == (UNSUBSCRIBE, 2, packet_id)
    assert list(iter_filters(buf, packet)) == filters


def test_empty_packets_round_trip():
    for encoder, packet_type in (
        (encode_pingreq, PINGREQ),
        (encode_pingresp, PINGRESP),
        (encode_disconnect, DISCONNECT),
    ):
        packet, _ = decoded(encoded(encoder))
        assert packet.type == packet_type and packet.length == 2


def test_subscribe_with_many_long_filters_needs_a_four_byte_remaining_length():
    # 40 filters of 65535 bytes: remaining length 2621562, past 2097151.
    subscriptions = [(b"f" * 65535, i % 3) for i in range(40)]
    buf = bytearray(2700000)
    n = encode_subscribe(buf, 0, 7, subscriptions)
    assert buf[1] & 0x80 and buf[2] & 0x80 and buf[3] & 0x80 and not buf[4] & 0x80
    packet = BrokerPacket()
    assert decode(buf, 0, n, packet) == n and packet.header_length == 5
    assert list(iter_subscriptions(buf, packet)) == subscriptions


# ---- the largest packets, without building them --------------------------------


class _Sized:
    """A payload that only has a length: the encoder refuses before reading it."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


def test_publish_at_the_remaining_length_limit_is_refused_for_size_not_for_range():
    buf = bytearray(64)
    # remaining = 2 + 1 + payload: exactly the maximum is legal, only too big for buf...
    with pytest.raises(ValueError, match="PUBLISH of 268435460 bytes does not fit at offset 0 of a 64-byte buffer"):
        encode_publish(buf, 0, b"t", _Sized(MAX_REMAINING_LENGTH - 3))
    # ...one byte more is past what the remaining length can say.
    with pytest.raises(ValueError, match="PUBLISH remaining length 268435456 exceeds 268435455"):
        encode_publish(buf, 0, b"t", _Sized(MAX_REMAINING_LENGTH - 2))
    assert buf == bytearray(64)


# ---- how the bytes arrive does not matter ---------------------------------------


@st.composite
def any_packet(draw):
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return encoded(
            encode_publish, draw(topic_names), draw(st.binary(max_size=200)), 1, False, False, draw(packet_ids)
        )
    if kind == 1:
        return encoded(encode_publish, draw(topic_names), draw(st.binary(max_size=200)))
    if kind == 2:
        return encoded(encode_ack, draw(st.sampled_from([PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK])), draw(packet_ids))
    if kind == 3:
        return encoded(encode_connect, draw(strings), draw(st.integers(0, 65535)), True, b"u", draw(binary))
    if kind == 4:
        return encoded(
            encode_subscribe,
            draw(packet_ids),
            draw(st.lists(st.tuples(topic_filters(), qos_levels), min_size=1, max_size=3)),
        )
    if kind == 5:
        return encoded(encode_unsubscribe, draw(packet_ids), draw(st.lists(topic_filters(), min_size=1, max_size=3)))
    if kind == 6:
        return encoded(encode_suback, draw(packet_ids), draw(st.lists(st.sampled_from([0, 1, 2, 0x80]), min_size=1)))
    if kind == 7:
        return encoded(encode_connack, False, draw(st.integers(0, 5)))
    return encoded(draw(st.sampled_from([encode_pingreq, encode_pingresp, encode_disconnect])))


@codec_settings
@given(packets=st.lists(any_packet(), min_size=1, max_size=8), data=st.data())
def test_a_stream_decodes_the_same_whatever_the_read_boundaries(packets, data):
    stream = b"".join(packets)
    # Reads of random sizes into one receive buffer; decode whatever is complete.
    buf = bytearray(len(stream))
    have = 0
    start = 0
    lengths = []
    packet = BrokerPacket()
    while have < len(stream):
        chunk = data.draw(st.integers(1, len(stream) - have))
        buf[have : have + chunk] = stream[have : have + chunk]
        have += chunk
        while True:
            n = decode(buf, start, have, packet)
            if n < 0:
                if decode_header(buf, start, have, packet) > 0:
                    assert -n == packet.length - (have - start)
                else:
                    assert 0 < -n <= 2
                break
            lengths.append(n)
            start += n
    assert lengths == [len(p) for p in packets]
    assert start == len(stream)


# ---- remaining length -------------------------------------------------------------


def _reference_varint(n):
    # 3.1.1 section 2.2.3, the spec's encoding algorithm, verbatim in Python.
    out = bytearray()
    while True:
        digit = n % 128
        n //= 128
        if n > 0:
            digit |= 0x80
        out.append(digit)
        if n == 0:
            return bytes(out)


@codec_settings
@given(st.integers(0, MAX_REMAINING_LENGTH))
@example(0)
@example(127)
@example(128)
@example(16383)
@example(16384)
@example(2097151)
@example(2097152)
@example(MAX_REMAINING_LENGTH)
def test_remaining_length_round_trip_over_the_whole_range(n):
    buf = bytearray(5)
    buf[0] = 0x30
    size = encode_remaining_length(buf, 1, n)
    assert bytes(buf[1 : 1 + size]) == _reference_varint(n)
    assert size == remaining_length_size(n)
    packet = BrokerPacket()
    assert decode_header(buf, 0, 1 + size, packet) == 1 + size
    assert packet.remaining_length == n and packet.length == 1 + size + n


# ---- the byte-level checker agrees with Python -------------------------------------


def _python_verdict(data, rules):
    """Index of the first offending byte by Python's own UTF-8 decoder and
    the NUL / wildcard rules, or -1."""
    try:
        text = data.decode("utf-8")
        bad_utf8 = -1
    except UnicodeDecodeError as e:
        bad_utf8 = e.start
        text = data[: e.start].decode("utf-8")
    forbidden = "\x00+#" if rules == TOPIC_NAME else "\x00"
    for i, ch in enumerate(text):
        if ch in forbidden:
            return len(text[:i].encode())
    return bad_utf8


@codec_settings
@given(st.binary(max_size=40), st.sampled_from([STRING, TOPIC_NAME]))
@example(b"\xf0\x9f\x98\x80a+", TOPIC_NAME)
@example(b"\xed\x9f\xbf\xee\x80\x80", STRING)
def test_scan_agrees_with_pythons_utf8_decoder(data, rules):
    assert scan(data, 0, len(data), rules) == _python_verdict(data, rules), data


@codec_settings
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=30))
def test_scan_accepts_exactly_the_nul_free_strings_python_encodes(text):
    data = text.encode()
    assert (scan(data, 0, len(data), STRING) == -1) == ("\x00" not in text)


def _reference_filter_ok(text):
    if not text or "\x00" in text:
        return False
    levels = text.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True


@codec_settings
@given(st.text(st.sampled_from("ab/+#\x00é"), max_size=12))
def test_filter_validation_agrees_with_the_level_by_level_reading(text):
    try:
        validate_topic_filter(text)
        ok = True
    except ValueError:
        ok = False
    assert ok == _reference_filter_ok(text), text


# ---- matching agrees with a regular expression built from the spec ----------------


def _reference_match(topic_filter, topic):
    # 3.1.1 section 4.7: '+' is one level, '#' the parent and any children,
    # and wildcards in the first level skip '$' topics (4.7.2).
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    pattern = ""
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if level == "#":
            pattern = pattern[:-1] + "(/.*)?" if i else ".*"
            break
        pattern += "[^/]*" if level == "+" else re.escape(level)
        if i < len(levels) - 1:
            pattern += "/"
    return re.fullmatch(pattern, topic, re.DOTALL) is not None


_level = st.sampled_from(["a", "b", "", "$x", "ab"])


@codec_settings
@given(
    st.lists(st.one_of(_level, st.just("+")), min_size=1, max_size=4).flatmap(
        lambda levels: st.sampled_from(["/".join(levels), "/".join(levels + ["#"])])
    ),
    st.lists(_level, min_size=1, max_size=5).map("/".join),
)
def test_topic_matches_agrees_with_a_regular_expression(topic_filter, topic):
    assume(topic)
    assert topic_matches(topic_filter, topic) == _reference_match(topic_filter, topic), (topic_filter, topic)
    assert topic_matches(topic_filter.encode(), topic.encode()) == _reference_match(topic_filter, topic)


def test_decoder_refuses_what_the_reference_filter_reading_refuses():
    # The same checker serves the decoder: a SUBSCRIBE with a bad filter is a ProtocolError.
    for text in ("a+", "#/a", "a/#b", "+a/b"):
        data = text.encode()
        body = b"\x00\x01" + len(data).to_bytes(2, "big") + data + b"\x00"
        packet = bytes([0x82, len(body)]) + body
        try:
            decode(bytearray(packet), 0, len(packet), BrokerPacket())
        except ProtocolError as e:
            assert "SUBSCRIBE topic filter 1 has" in str(e)
        else:
            raise AssertionError(text)
