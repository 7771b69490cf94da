# The client against the real mosquitto the harness started, on CPython and
# on the Unix port. Each test uses its own client ids and topics.
from compat import mem_free
from mqtt.client import ConnectRefused, MQTTClient, NotConnected, TLSError
from support import allocated_by, broker_address, heap_locked, poll_until, refusing_broker_address, unique_id

SMALL_HEAP = True


def make_client(name, **kwargs):
    host, port = broker_address()
    return MQTTClient(unique_id(name), host, port, **kwargs)


class Inbox:
    def __init__(self, client):
        self.messages = []
        self.granted = []
        client.on_message = self.on_message
        client.on_subscribe = self.on_subscribe

    def on_message(self, client, userdata, message):
        self.messages.append((message.topic, message.payload, message.qos, message.retain))

    def on_subscribe(self, client, userdata, packet_id, granted):
        self.granted.append(granted)


def subscribed(name, topic, qos, **kwargs):
    # Subscribers are small, so that two clients fit in a board-sized heap.
    client = make_client(name, inflight_max=2, max_packet=64, tx_size=128, **kwargs)
    inbox = Inbox(client)
    client.connect()
    client.subscribe(topic, qos)
    assert poll_until(client, lambda: inbox.granted), "no SUBACK"
    assert inbox.granted == [(qos,)]
    return client, inbox


def test_connect_and_disconnect():
    client = make_client("connect")
    assert client.connect() is False
    assert client.connected
    client.disconnect()
    assert not client.connected


def test_refused_connect_raises_with_reason():
    host, port = refusing_broker_address()
    client = MQTTClient(unique_id("refused"), host, port)
    try:
        client.connect()
    except ConnectRefused as e:
        assert e.return_code == 5
        assert "not authorized" in str(e)
    else:
        raise AssertionError("connect was not refused")
    assert not client.connected


def test_connect_to_closed_port_raises_oserror():
    client = MQTTClient(unique_id("closed"), "127.0.0.1", 1, connect_timeout_ms=2000)
    try:
        client.connect()
    except OSError as e:
        assert "127.0.0.1:1" in str(e)
        return
    raise AssertionError("connect to a closed port succeeded")


def _publish_and_receive(topic, qos):
    sub, inbox = subscribed("sub%d" % qos, topic, 2)
    pub = make_client("pub%d" % qos)
    acked = []
    pub.on_publish = lambda c, u, mid: acked.append(mid)
    pub.connect()
    mid = pub.publish(topic, b"21.5", qos)
    assert poll_until([pub, sub], lambda: inbox.messages and (qos == 0 or acked))
    assert inbox.messages == [(topic, b"21.5", qos, False)]
    if qos:
        assert acked == [mid]
        assert pub.session.inflight_count() == 0
    pub.disconnect()
    sub.disconnect()


def test_publish_each_qos_reaches_a_subscriber():
    topic = "house/test/%s" % unique_id("qos")
    for qos in (0, 1, 2):
        _publish_and_receive(topic + "/%d" % qos, qos)


def test_incoming_qos2_delivered_exactly_once():
    topic = "house/test/%s" % unique_id("in2")
    sub, inbox = subscribed("sub", topic, 2)
    pub = make_client("pub")
    pub.connect()
    for i in range(20):
        pub.publish(topic, ("%d" % i).encode(), 2)
    assert poll_until([pub, sub], lambda: len(inbox.messages) >= 20 and not pub.session.inflight_count())
    poll_until([pub, sub], lambda: False, 200)  # anything extra would arrive now
    assert [m[1] for m in inbox.messages] == [("%d" % i).encode() for i in range(20)]


def test_retained_message_reaches_later_subscriber():
    topic = "house/test/%s/status" % unique_id("ret")
    pub = make_client("pub")
    pub.connect()
    pub.publish(topic, b"online", 1, True)
    pub.wait_for_acks(5000)
    sub, inbox = subscribed("sub", topic, 1)
    assert poll_until(sub, lambda: inbox.messages)
    assert inbox.messages == [(topic, b"online", 1, True)]
    pub.publish(topic, b"", 1, True)  # clear it
    pub.wait_for_acks(5000)


def test_last_will_sent_when_socket_dies():
    topic = "house/test/%s/status" % unique_id("will")
    sub, inbox = subscribed("sub", topic, 1)
    node = make_client("node", keepalive=5)
    node.will_set(topic, b"offline", 1, False)
    node.connect()
    node._sock.close()  # no DISCONNECT: the broker must publish the will
    assert poll_until(sub, lambda: inbox.messages, 5000)
    assert inbox.messages == [(topic, b"offline", 1, False)]


def test_clean_disconnect_sends_no_will():
    topic = "house/test/%s/status" % unique_id("nowill")
    sub, inbox = subscribed("sub", topic, 1)
    node = make_client("node")
    node.will_set(topic, b"offline", 1, False)
    node.connect()
    node.disconnect()
    poll_until(sub, lambda: inbox.messages, 500)
    assert inbox.messages == []


def test_persistent_session_receives_what_was_published_while_away():
    topic = "house/test/%s/cmd" % unique_id("away")
    sub, inbox = subscribed("away", topic, 1, clean_session=False)
    sub.disconnect()
    pub = make_client("pub", inflight_max=4, max_packet=64)
    pub.connect()
    for i in range(10):
        pub.publish(topic, ("%d" % i).encode(), 1)
    assert pub.wait_for_acks(5000)
    sub = pub = None
    again = make_client("away", clean_session=False, inflight_max=2, max_packet=64, tx_size=128)
    inbox = Inbox(again)
    assert again.connect() is True  # session present
    assert poll_until(again, lambda: len(inbox.messages) >= 10)
    assert [m[1] for m in inbox.messages] == [("%d" % i).encode() for i in range(10)]
    # Leave no session behind on the shared broker.
    again.disconnect()
    MQTTClient(unique_id("away"), *broker_address(), clean_session=True).connect()


def test_keepalive_pings_keep_an_idle_link_up():
    client = make_client("idle", keepalive=1)
    client.connect()
    poll_until(client, lambda: False, 3500)
    assert client.connected
    assert client.disconnects == 0
    assert client.session.pings >= 2


def test_qos0_publish_while_disconnected_raises():
    client = make_client("offline")
    try:
        client.publish("house/test/x", b"1", 0)
    except NotConnected:
        return
    raise AssertionError("QoS 0 publish without a link did not raise")


def test_bad_topic_and_qos_raise_value_error():
    client = make_client("bad")
    client.connect()
    for topic, qos in (("house/#", 0), ("house/+/x", 1), ("", 0), ("house/x", 3)):
        try:
            client.publish(topic, b"1", qos)
        except ValueError as e:
            assert str(e)
            continue
        raise AssertionError("accepted topic %r qos %r" % (topic, qos))
    assert client.connected


TOPIC = b"house/kitchen/temperature"


def _publish_burst(client, count):
    for _ in range(count):
        client.publish(TOPIC, b"21.5", 0)
        client.publish(TOPIC, b"21.5", 1)
        client.poll(0)
    # Collect the remaining PUBACKs without a deadline computation that allocates.
    while client.session.inflight_count():
        client.poll(100)


def test_publish_and_acks_after_connect_allocate_nothing():
    client = make_client("alloc", keepalive=60)
    client.connect()
    _publish_burst(client, 20)  # warm up
    assert allocated_by(_publish_burst, client, 1000) == 0
    heap_locked(_publish_burst, client, 200)
    assert client.connected
    assert client.disconnects == 0


class _FailingTLS:
    """Stands in for an SSLContext whose handshake fails the way a board's does."""

    def __init__(self, error):
        self.error = error

    def wrap_socket(self, sock, server_hostname=None):
        raise self.error


def _tls_error(error):
    client = make_client("tls", ssl_context=_FailingTLS(error))
    logged = []
    client.on_log = lambda c, u, message: logged.append(message)
    try:
        client.connect()
    except OSError as e:  # TLSError is one
        assert not client.connected
        return str(e), logged, isinstance(e, TLSError)
    raise AssertionError("no TLSError for %r" % (error,))


def test_tls_out_of_memory_says_so_and_what_to_change():
    # mbedtls reports a failed allocation as MBEDTLS_ERR_SSL_ALLOC_FAILED (-0x7F00);
    # MicroPython's own heap as MemoryError.
    for error in (OSError(-0x7F00), MemoryError()):
        message, logged, is_tls = _tls_error(error)
        assert is_tls
        assert "out of memory" in message and "ECDSA" in message, message
        assert "TLS handshake with 127.0.0.1:" in message
        # The free heap was logged before the handshake began.
        assert logged and "free heap" in logged[0], logged


def test_tls_other_failures_keep_their_cause():
    message, _, _ = _tls_error(ValueError("The certificate is not correctly signed by the trusted CA"))
    assert "TLS handshake with 127.0.0.1:" in message
    assert "not correctly signed" in message


def test_unsubscribed_filter_receives_nothing_more():
    topic = "house/test/%s" % unique_id("unsub")
    sub, inbox = subscribed("unsub", topic, 1)
    pub = make_client("unsub-pub", inflight_max=2, max_packet=64)
    pub.connect()
    pub.publish(topic, b"before", 1)
    assert poll_until([pub, sub], lambda: inbox.messages)
    unsubacked = []
    sub.session.on_unsuback = unsubacked.append
    packet_id = sub.unsubscribe(topic)
    assert poll_until(sub, lambda: unsubacked)
    assert unsubacked == [packet_id]
    pub.publish(topic, b"after", 1)
    assert pub.wait_for_acks(5000)
    poll_until([pub, sub], lambda: False, 300)
    assert [m[1] for m in inbox.messages] == [b"before"]


def test_caller_mistakes_raise_value_error_naming_the_value():
    client = make_client("mistakes", max_packet=128, tx_size=128)
    client.connect()
    cases = (
        ("house/a\x00b", b"1", 1, "U+0000"),  # 3.1.1 section 1.5.3: no U+0000 in strings
        ("house/kitchen/big", b"x" * 200, 1, "does not fit"),  # over the in-flight slot (max_packet)
        ("house/kitchen/big", b"x" * 200, 0, "does not fit"),  # over the transmit buffer
        ("house/kitchen/q", b"1", 3, "3"),
    )
    if mem_free() < 0 or mem_free() > 200000:  # a 64 KB topic does not fit a board-sized heap
        cases += (("h" * 65536, b"1", 0, "65536"),)  # longer than a 2-byte length can say
    for topic, payload, qos, fragment in cases:
        try:
            client.publish(topic, payload, qos)
        except ValueError as e:
            assert fragment in str(e), (fragment, str(e))
            continue
        raise AssertionError("accepted %r" % ((topic[:20], len(payload), qos),))
    assert client.connected
    assert client.session.inflight_count() == 0
