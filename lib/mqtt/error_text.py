# The words of the errors the modules a node always holds (mqtt.client,
# mqtt.session, mqtt.transport) raise: a string literal longer than a few
# characters is an object in the heap on MicroPython, so the texts live
# here, loaded with the first such error, and each raise site calls one of
# these for the exception to raise. The exception classes are in
# mqtt.errors, which the decoder loads with itself; this module only when
# there is something to say.

from mqtt.errors import (
    InflightFull,
    KeepaliveTimeout,
    MQTTTimeout,
    NotConnected,
    ProtocolError,
    with_context,
)

# What each deadline within a connect is for, by MQTTClient._time_left's step
# (0: CONNACK, 1: DNS, 2: TCP connect, 3: TLS handshake).
_STEPS = (
    "no CONNACK from",
    "no DNS answer for",
    "no time left to TCP connect to",
    "no time left for the TLS handshake with",
)
# The waits MQTTClient takes, as _check_wait_ms numbers them.
_WAITS = ("connect_timeout_ms", "io_timeout_ms", "publish_timeout_ms", "timeout_ms")


# lwIP's blocking connect (ESP32, Pico W) says EINPROGRESS, not ETIMEDOUT,
# when its time is up.
_LWIP_EINPROGRESS = 119


def tcp_connect_failed(error, client):
    step = "TCP connect to %s:%d" % (client.host, client.port)
    if error.args and error.args[0] == _LWIP_EINPROGRESS:
        return MQTTTimeout("%s timed out" % step)
    return with_context(error, step)


def connect_deadline(client, step):
    return MQTTTimeout(
        "%s %s:%d within the %d ms connect deadline"
        % (_STEPS[step], client.host, client.port, client.connect_timeout_ms)
    )


def bad_wait(which, value, longest):
    return ValueError("%s must be 1 to %d ms (a board's ticks limit), got %r" % (_WAITS[which], longest, value))


def qos0_not_connected():
    return NotConnected("not connected: a QoS 0 message cannot wait")


def closed_by_broker():
    return OSError("connection closed by the broker")


def write_blocked(io_timeout_ms):
    return MQTTTimeout("socket write blocked for %d ms" % io_timeout_ms)


def inflight_full(count, publish_timeout_ms):
    return InflightFull("in-flight table full: %d messages unacknowledged for %d ms" % (count, publish_timeout_ms))


def inflight_full_disconnected(count):
    return InflightFull(
        "in-flight table full: %d messages unacknowledged, and no reconnect is scheduled (disconnect() was "
        "called): connect() first" % count
    )


def inflight_full_in_callback(count):
    return InflightFull(
        "in-flight table full: %d messages unacknowledged, and a callback cannot wait for their acks (they are "
        "read after it returns): publish from the loop, or when session.inflight_free() is not 0" % count
    )


def output_queue_full():
    return ValueError("output queue full: the client must write out pending bytes first")


def connack_while_connected():
    return ProtocolError("CONNACK received while already connected")


def bad_qos(what, qos):
    return ValueError("%s must be 0, 1 or 2, got %r" % (what, qos))


def bad_payload_len(size, payload_len):
    return ValueError("payload_len must be -1 or 0..%d, got %d" % (size, payload_len))


def publish_over_tx_size(size, tx_size):
    return ValueError("a PUBLISH of %d bytes does not fit the %d-byte transmit buffer: raise tx_size" % (size, tx_size))


def publish_over_max_packet(size, max_packet, qos):
    return ValueError(
        "a PUBLISH of %d bytes does not fit max_packet (%d bytes) for QoS %d: raise max_packet"
        % (size, max_packet, qos)
    )


def not_a_broker(buf, start, end):
    return ProtocolError("not an MQTT broker: expected CONNACK, got %r" % (bytes(buf[start : min(end, start + 16)]),))


def keepalive_timeout(silent, keepalive_ms):
    return KeepaliveTimeout("no packet from the broker for %d ms (keepalive %d s)" % (silent, keepalive_ms // 1000))


def remaining_length_out_of_range(remaining_length):
    return ValueError("remaining length must be 0..268435455, got %d" % remaining_length)


def does_not_fit(name, size, offset, buf_length):
    return ValueError("%s of %d bytes does not fit at offset %d of a %d-byte buffer" % (name, size, offset, buf_length))


def bad_packet_id(name, packet_id):
    return ValueError("%s packet_id must be 1..65535, got %d" % (name, packet_id))


def field_too_long(what, length):
    return ValueError("%s is %d bytes, more than 65535" % (what, length))


def remaining_length_too_long(name, remaining_length):
    return ValueError("%s remaining length %d exceeds 268435455" % (name, remaining_length))


def empty_client_id():
    return ValueError("an empty client_id needs clean_session=True (3.1.1 section 3.1.3.1)")


def bad_keepalive_s(keepalive_s):
    return ValueError("keepalive_s must be 0..65535, got %d" % keepalive_s)


def will_without_topic(will_payload, will_qos, will_retain):
    return ValueError(
        "will_payload, will_qos and will_retain need a will_topic, got %r, %r, %r"
        % (will_payload, will_qos, will_retain)
    )


def password_without_username():
    return ValueError("a password needs a username in MQTT 3.1.1 (section 3.1.2.9)")


def bad_ack_type(packet_type):
    return ValueError("packet_type must be PUBACK, PUBREC, PUBREL, PUBCOMP or UNSUBACK, got %r" % (packet_type,))
