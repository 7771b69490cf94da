# The client's errors, on CPython and the Unix port: refusals, unreachable
# brokers, TLS failures and caller mistakes, each named with its cause.
from compat import mem_free
from mqtt.client import ConnectRefused, MQTTClient, NotConnected, TLSError
from support import broker_address, refusing_broker_address, unique_id

NEEDS_NETWORK = True  # a broker or sockets: not on the 32-bit runtime

SMALL_HEAP = True


def make_client(name, **kwargs):
    # Not imported from test_client: loading that module too would not fit the small heap.
    host, port = broker_address()
    return MQTTClient(unique_id(name), host, port, **kwargs)


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


class _FailingTLS:
    """Stands in for an SSLContext whose handshake fails the way a board's does."""

    def __init__(self, error):
        self.error = error

    def wrap_socket(self, sock, server_hostname=None, do_handshake_on_connect=True):
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


def test_a_tcp_connect_that_lwip_gives_up_on_is_a_timeout():
    # A board's lwIP ends a blocking connect whose time is up with
    # EINPROGRESS (119 on ESP32 and the Pico W), not ETIMEDOUT.
    from mqtt.client import MQTTTimeout
    from mqtt.error_text import tcp_connect_failed

    client = MQTTClient("lwip", "192.0.2.7", 1883)
    error = tcp_connect_failed(OSError(119), client)
    assert isinstance(error, MQTTTimeout), repr(error)
    assert str(error) == "TCP connect to 192.0.2.7:1883 timed out", str(error)
    refused = tcp_connect_failed(OSError(111, "ECONNREFUSED"), client)
    assert not isinstance(refused, MQTTTimeout) and refused.args[0] == 111, repr(refused)
