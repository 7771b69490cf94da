# Topic names, topic filters and matching (MQTT 3.1.1 section 4.7), on
# CPython and on the MicroPython Unix port.
import support
from mqtt.topic import (
    STRING,
    TOPIC_FILTER,
    TOPIC_NAME,
    scan,
    topic_matches,
    topic_matches_at,
    validate_topic_filter,
    validate_topic_name,
)


def raises_value_error(fn, *args):
    try:
        fn(*args)
    except ValueError as e:
        return str(e)
    raise AssertionError("no ValueError for %r" % (args,))


# ---- names -----------------------------------------------------------------


def test_valid_topic_names_pass_as_str_bytes_bytearray_and_memoryview():
    for name in ("house/kitchen/temperature", "/", "a", "//", "$SYS/broker", "température/°C", "a b/c"):
        encoded = name.encode()
        for value in (name, encoded, bytearray(encoded), memoryview(encoded)):
            assert validate_topic_name(value) is None


def test_topic_name_of_65535_bytes_passes_and_65536_fails():
    validate_topic_name(b"a" * 65535)
    message = raises_value_error(validate_topic_name, b"a" * 65536)
    assert message.startswith("topic name is 65536 bytes, more than 65535: 'aaaa"), message
    assert message.endswith("'..."), message  # the value, shortened


def test_invalid_topic_names_say_what_and_show_the_value():
    cases = [
        ("", "topic name is empty"),
        ("house/#/x", "topic name contains the wildcard '#' at byte 6: 'house/#/x'"),
        ("house/+", "topic name contains the wildcard '+' at byte 6: 'house/+'"),
        ("#", "topic name contains the wildcard '#' at byte 0: '#'"),
        ("a\x00b", "topic name contains U+0000 at byte 1: 'a\\x00b'"),
        (b"a/\xff", "topic name is not valid UTF-8 at byte 2: b'a/\\xff'"),
        (b"\xc0\xaf", "topic name is not valid UTF-8 at byte 0: b'\\xc0\\xaf'"),  # overlong "/"
        (b"a\xed\xb0\x80", "topic name is not valid UTF-8 at byte 1: b'a\\xed\\xb0\\x80'"),  # surrogate U+DC00
        (b"ab\xe2\x82", "topic name is not valid UTF-8 at byte 2: b'ab\\xe2\\x82'"),  # cut-off euro sign
    ]
    for value, expected in cases:
        message = raises_value_error(validate_topic_name, value)
        assert message == expected, "%r: %r" % (value, message)


# ---- filters ----------------------------------------------------------------


def test_valid_topic_filters_pass():
    for value in (
        "#",
        "+",
        "+/+",
        "/+",
        "+/",
        "a/#",
        "a/+/b",
        "a/+/#",
        "+/+/+/#",
        "sport/tennis/player1",
        "/",
        "$SYS/#",
    ):
        validate_topic_filter(value)
        validate_topic_filter(value.encode())


def test_invalid_topic_filters_say_what_and_show_the_value():
    cases = [
        ("", "topic filter is empty"),
        ("a/#/b", "topic filter has '#' at byte 2, not alone as the last level: 'a/#/b'"),
        ("sport/tennis#", "topic filter has '#' at byte 12, not alone as the last level: 'sport/tennis#'"),
        ("#/", "topic filter has '#' at byte 0, not alone as the last level: '#/'"),
        ("##", "topic filter has '#' at byte 0, not alone as the last level: '##'"),
        ("sport+", "topic filter has '+' at byte 5, not alone in its level: 'sport+'"),
        ("a/+b", "topic filter has '+' at byte 2, not alone in its level: 'a/+b'"),
        ("++", "topic filter has '+' at byte 0, not alone in its level: '++'"),
        ("a/\x00", "topic filter contains U+0000 at byte 2: 'a/\\x00'"),
        (
            b"\xf8\x88\x80\x80\x80",
            "topic filter is not valid UTF-8 at byte 0: b'\\xf8\\x88\\x80\\x80\\x80'",
        ),  # 5-byte form
    ]
    for value, expected in cases:
        message = raises_value_error(validate_topic_filter, value)
        assert message == expected, "%r: %r" % (value, message)
    assert "65536 bytes" in raises_value_error(validate_topic_filter, "a" * 65536)


# ---- the byte-level checker both sides share ----------------------------------


def test_scan_reports_the_first_offending_index_within_the_range():
    buf = b"xx" + "é/+".encode() + b"\x00yy"
    # "é" is 2 bytes: the range 2..6 holds "é/+", the NUL sits just outside it.
    assert scan(buf, 2, 6, STRING) == -1
    assert scan(buf, 2, 6, TOPIC_FILTER) == -1
    assert scan(buf, 2, 6, TOPIC_NAME) == 5
    assert scan(buf, 2, 7, STRING) == 6
    assert scan(buf, 3, 6, STRING) == 3  # starts inside "é": a lone continuation byte


def test_scan_accepts_every_utf8_length_and_the_extremes():
    for text in ("\u0080", "\u07ff", "\u0800", "\uffff", "\ud7ff", "\ue000", "\U00010000", "\U0010ffff", "\x7f"):
        data = text.encode()
        assert scan(data, 0, len(data), STRING) == -1, data


def test_scan_refuses_what_rfc_3629_refuses():
    for data in (
        b"\xc1\xbf",
        b"\xe0\x9f\xbf",
        b"\xed\xa0\x80",
        b"\xf0\x8f\xbf\xbf",
        b"\xf4\x90\x80\x80",
        b"\xf5\x80\x80\x80",
        b"\xff",
        b"\xe2\x28\xa1",
        b"\xf0\x90\x28\xbc",
        b"\xf0\x90\x80",
    ):
        assert scan(data, 0, len(data), STRING) == 0, data


# ---- matching (3.1.1 section 4.7) ----------------------------------------------

MATCHES = [
    # 4.7.1.2 multi-level wildcard
    ("sport/tennis/player1/#", "sport/tennis/player1", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
    ("sport/#", "sport", True),
    ("sport/#", "sport/", True),
    ("#", "sport/tennis", True),
    ("#", "/", True),
    ("sport/#", "sports", False),
    ("sport/tennis/#", "sport/tennis2/x", False),
    # 4.7.1.3 single-level wildcard
    ("sport/tennis/+", "sport/tennis/player1", True),
    ("sport/tennis/+", "sport/tennis/player2", True),
    ("sport/tennis/+", "sport/tennis/player1/ranking", False),
    ("sport/+", "sport", False),
    ("sport/+", "sport/", True),
    ("+", "sport", True),
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+", "/finance", False),
    ("+/tennis/#", "sport/tennis/player1", True),
    ("sport/+/player1", "sport/golf/player1", True),
    ("+/+/#", "a", False),
    ("+/#", "a", True),
    # exact
    ("house/kitchen/temperature", "house/kitchen/temperature", True),
    ("house/kitchen/temperature", "house/kitchen/temp", False),
    ("house/kitchen", "house/kitchen/temperature", False),
    ("house/kitchen/temperature", "house/kitchen", False),
    ("House/kitchen", "house/kitchen", False),  # 4.7.3: case-sensitive
    ("/", "/", True),
    ("a//b", "a//b", True),
    ("a/+/b", "a//b", True),
    ("température/+", "température/x", True),
    # 4.7.2 topics beginning with $
    ("#", "$SYS/broker/clients", False),
    ("+/monitor/Clients", "$SYS/monitor/Clients", False),
    ("+", "$SYS", False),
    ("$SYS/#", "$SYS/broker/clients", True),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
    ("$SYS", "$SYS", True),
    ("a/#", "a/$b", True),  # only the first level is special
    ("a/+", "a/$b", True),
]


def test_topic_matches_the_spec_examples_as_str_and_bytes():
    for topic_filter, topic, expected in MATCHES:
        assert topic_matches(topic_filter, topic) is expected, (topic_filter, topic)
        assert topic_matches(topic_filter.encode(), topic.encode()) is expected, (topic_filter, topic)
        assert topic_matches(topic_filter, bytearray(topic.encode())) is expected, (topic_filter, topic)


def test_topic_matches_at_reads_the_topic_in_place():
    buf = bytearray(b"\x30\x10\x00\x0chouse/x/temp21.5")
    assert topic_matches_at(b"house/+/temp", buf, 4, 12)
    assert topic_matches_at("house/#", buf, 4, 12)
    assert not topic_matches_at(b"house/+", buf, 4, 12)
    assert topic_matches_at(b"house/x/te", buf, 4, 10)


def test_checking_and_matching_bytes_allocate_nothing():
    topic = b"house/kitchen/temperature"
    filters = (b"house/+/temperature", b"house/#", b"#", b"house/kitchen/temperature", b"garden/+")

    def run():
        i = 0
        while i < 1000:
            validate_topic_name(topic)
            validate_topic_filter(b"house/+/temperature")
            for f in filters:
                topic_matches(f, topic)
            i += 1

    assert support.allocated_by(run) == 0
    support.heap_locked(run)
