# What a publishing node loads: the client, its session and codec, and no
# more. QoS 2, SUBSCRIBE / UNSUBSCRIBE, TLS, the checked PUBLISH encoder,
# topic matching, the words for a bad string, the client's seldom-used
# methods and the session's, the exceptions and the general decoder (the
# session reads CONNACK, PUBACK and PINGRESP itself) each load when first
# used.
# Through a stream that answers as a broker would, written out here: the
# test brokers load the codec's other modules themselves.
import sys

import mqtt
from mqtt.client import MQTTClient

SMALL_HEAP = True

LAZY = (
    "mqtt.qos2",
    "mqtt.subscribe",
    "mqtt.tls",
    "mqtt.checked_publish",
    "mqtt.topic_match",
    "mqtt.explain",
    "mqtt.client_more",
    "mqtt.errors",
    "mqtt.packet_more",
    "mqtt.session_more",
    "mqtt.error_text",
)
CONNACK = b"\x20\x02\x00\x00"
TOPIC = b"house/kitchen/temperature"


class AnsweringStream:
    """CONNACK for CONNECT; PUBACK, PUBREC, PUBCOMP, SUBACK as a broker
    answers each packet it is written (one packet per write, as the client
    writes them here)."""

    handshake = None

    def __init__(self):
        self.out = bytearray()

    def write(self, buf, offset, length):
        first = buf[offset]
        kind = first >> 4
        if kind == 1:  # CONNECT
            self.out += CONNACK
        elif kind == 3 and first & 0x06:  # PUBLISH QoS 1 or 2: its packet id is after the topic
            at = offset + 2 + 2 + ((buf[offset + 2] << 8) | buf[offset + 3])
            self.out += bytes([0x40 if first & 0x06 == 0x02 else 0x50, 2, buf[at], buf[at + 1]])
        elif kind == 6:  # PUBREL
            self.out += bytes([0x70, 2, buf[offset + 2], buf[offset + 3]])
        elif kind == 8:  # SUBSCRIBE: grant QoS 1
            self.out += bytes([0x90, 3, buf[offset + 2], buf[offset + 3], 1])
        return length

    def readinto(self, buf, length):
        n = min(length, len(self.out))
        buf[:n] = self.out[:n]
        self.out = self.out[n:]
        return n or None

    def wait_readable(self, timeout_ms):
        return bool(self.out)

    def wait_writable(self, timeout_ms):
        return True

    def close(self):
        pass


def unloaded(names):
    """Takes the modules out of sys.modules and the package, as if never
    imported, and the methods they put on MQTTClient and Session off the
    classes; returns what to put back."""
    from mqtt import client_more, session_more
    from mqtt.session import Session

    for cls, module in ((MQTTClient, client_more), (Session, session_more)):
        for method in module.METHODS:
            if method in cls.__dict__:
                delattr(cls, method)
    saved = {}
    for name in names:
        if name in sys.modules:
            saved[name] = sys.modules.pop(name)
        attribute = name.split(".")[1]
        if attribute in mqtt.__dict__:
            saved.setdefault(name, getattr(mqtt, attribute))
            delattr(mqtt, attribute)
    return saved


def restore(saved):
    for name, module in saved.items():
        sys.modules[name] = module
        setattr(mqtt, name.split(".")[1], module)


def loaded(names):
    return [name for name in names if name in sys.modules]


def connected_client():
    client = MQTTClient("kitchen-node", "broker.invalid", transport=lambda client, deadline: AnsweringStream())
    client.connect()
    return client


def test_publishing_at_qos0_and_qos1_loads_no_module_it_does_not_use():
    saved = unloaded(LAZY)
    try:
        client = connected_client()
        acked = []
        client.on_publish = lambda c, userdata, packet_id: acked.append(packet_id)
        client.publish(TOPIC, b"21.50", 0)
        packet_id = client.publish(TOPIC, b"21.75", 1)
        assert client.wait_for_acks(1000) and acked == [packet_id]
        assert loaded(LAZY) == [], loaded(LAZY)
        client.subscribe("house/kitchen/kitchen-node/set/+", 1)
        client.poll(0)  # its SUBACK: the decoder's first packet
        # The decoder's module raises its errors: they come with it.
        expected = ["mqtt.subscribe", "mqtt.client_more", "mqtt.errors", "mqtt.packet_more", "mqtt.session_more"]
        assert loaded(LAZY) == expected, loaded(LAZY)
        client.publish(TOPIC, b"22.00", 2)
        assert client.wait_for_acks(1000) and len(acked) == 2
        assert loaded(LAZY) == ["mqtt.qos2"] + expected, loaded(LAZY)
    finally:
        unloaded(LAZY)
        restore(saved)


def test_the_codecs_other_encoders_are_still_importable_from_mqtt_packet_and_topic():
    from mqtt import packet_more
    from mqtt.checked_publish import encode_publish as checked
    from mqtt.packet import Packet, decode, decode_header, encode_publish, encode_subscribe, encode_unsubscribe
    from mqtt.subscribe import encode_subscribe as subscribe
    from mqtt.topic import topic_matches, topic_matches_at

    assert encode_publish is checked and encode_subscribe is subscribe and callable(encode_unsubscribe)
    assert (Packet, decode, decode_header) == (packet_more.Packet, packet_more.decode, packet_more.decode_header)
    assert topic_matches("house/+", "house/kitchen") and topic_matches_at(b"#", b"x", 0, 1)
    try:
        from mqtt.packet import encode_nothing  # noqa: F401
    except (ImportError, AttributeError):
        return
    raise AssertionError("a name mqtt.packet does not have was imported")


def test_the_clients_exceptions_and_message_are_still_importable_from_mqtt_client():
    from mqtt import errors
    from mqtt.client import InflightFull, Message, MQTTTimeout, NotConnected, TLSError
    from mqtt.client_more import Message as message

    assert (MQTTTimeout, NotConnected, InflightFull, TLSError) == (
        errors.MQTTTimeout,
        errors.NotConnected,
        errors.InflightFull,
        errors.TLSError,
    )
    assert issubclass(TLSError, OSError) and issubclass(MQTTTimeout, OSError) and Message is message
    try:
        from mqtt.client import NoSuchError  # noqa: F401
    except (ImportError, AttributeError):
        pass
    else:
        raise AssertionError("a name mqtt.client does not have was imported")


def test_a_method_the_client_does_not_have_is_an_attribute_error():
    client = MQTTClient("kitchen-node", "broker.invalid", transport=lambda client, deadline: AnsweringStream())
    assert not hasattr(client, "no_such_method") and not hasattr(client, "METHODS")
    assert callable(client.will_set) and callable(client.subscribe) and callable(client.disconnect)
    session = client.session
    assert not hasattr(session, "no_such_method") and not hasattr(session, "METHODS")
    assert callable(session.will_set) and callable(session.subscribe) and callable(session.ack_dropped)


def test_the_exceptions_are_one_class_each_wherever_imported_from():
    from mqtt import errors
    from mqtt.client import ConnectRefused as client_refused
    from mqtt.client import KeepaliveTimeout as client_keepalive
    from mqtt.packet import ProtocolError
    from mqtt.session import ConnectRefused, KeepaliveTimeout

    assert ProtocolError is errors.ProtocolError and not issubclass(ProtocolError, OSError)
    assert ConnectRefused is errors.ConnectRefused is client_refused
    assert KeepaliveTimeout is errors.KeepaliveTimeout is client_keepalive
    refused = ConnectRefused(5, "not authorized")
    assert refused.return_code == 5 and "not authorized (CONNACK code 5)" in str(refused)


def test_the_reconnect_backoff_is_made_at_the_first_reconnect_and_checked_at_once():
    client = connected_client()
    assert client.backoff is None  # the link held: no backoff made
    client.abort(OSError("link cut by the test"))
    assert client.backoff is not None and client.backoff.attempts == 1
    assert 0 < client.reconnect_in_ms() <= 500  # the first step: half to all of reconnect_min_ms
    for low, high in ((0, 1000), (2000, 1000)):
        try:
            MQTTClient(
                "kitchen-node",
                "broker.invalid",
                reconnect_min_ms=low,
                reconnect_max_ms=high,
                transport=lambda client, deadline: AnsweringStream(),
            )
        except ValueError as e:
            assert "%r" % low in str(e) and "%r" % high in str(e), str(e)
        else:
            raise AssertionError("reconnect_min_ms=%d, reconnect_max_ms=%d taken" % (low, high))
