# Session's methods a publishing node calls seldom or never: the last will,
# DISCONNECT, SUBSCRIBE and UNSUBSCRIBE, and what the decoder hands over
# (every packet but CONNACK accepted, PUBACK and PINGRESP, which
# Session.receive reads itself); and the words for settings out of range. Loaded at the first call of one of them:
# Session.__getattr__ puts each on the class when first asked for, so that
# later calls cost what any method does.

from compat import const
from mqtt.packet_more import CONNACK, PINGRESP, PUBACK, PUBLISH, PUBREC, SUBACK, UNSUBACK, encode_ack, encode_disconnect
from mqtt.topic import validate_topic_name

# Session states (mqtt.session).
DISCONNECTED = const(0)
CONNECTING = const(1)

# What Session.__getattr__ takes from here.
METHODS = ("will_set", "disconnect", "subscribe", "unsubscribe", "_handle", "_on_publish", "ack_dropped")


def will_set(self, topic, payload, qos=0, retain=False):
    validate_topic_name(topic)
    if qos not in (0, 1, 2):
        raise ValueError("will qos must be 0, 1 or 2, got %r" % (qos,))
    self.will_topic = topic
    self.will_payload = payload
    self.will_qos = qos
    self.will_retain = retain


def disconnect(self):
    n = encode_disconnect(self._scratch, self._scratch_end)
    self._queue_scratch(n)
    self.state = DISCONNECTED


def subscribe(self, subscriptions, now):
    """subscriptions: sequence of (filter, qos). Returns the packet id."""
    from mqtt.subscribe import encode_subscribe

    packet_id = self._new_packet_id()
    self._queue_scratch(encode_subscribe(self._scratch, self._scratch_end, packet_id, subscriptions))
    return packet_id


def unsubscribe(self, filters, now):
    from mqtt.subscribe import encode_unsubscribe

    packet_id = self._new_packet_id()
    self._queue_scratch(encode_unsubscribe(self._scratch, self._scratch_end, packet_id, filters))
    return packet_id


def _handle(self, buf, packet, now):
    kind = packet.type
    if self.state == CONNECTING and kind != CONNACK:
        # 3.1.1 section 3.2: the first packet from the broker is CONNACK.
        from mqtt.errors import ProtocolError

        raise ProtocolError("packet type %d received before CONNACK" % kind)
    if kind == PUBACK:
        self._on_puback(packet.packet_id)
    elif kind == PINGRESP:
        self._ping_outstanding = False
    elif kind == PUBLISH:
        self._on_publish(buf, packet)
    elif kind == CONNACK:
        self._on_connack(packet.session_present, packet.return_code, now)
    elif kind == SUBACK:
        if self.on_suback is not None:
            self.on_suback(packet.packet_id, buf, packet.codes_start, packet.codes_length)
    elif kind == UNSUBACK:
        if self.on_unsuback is not None:
            self.on_unsuback(packet.packet_id)
    else:  # PUBREC, PUBREL, PUBCOMP: decode() refuses the packets only a client sends
        from mqtt import qos2

        qos2.received(self, kind, packet.packet_id, now)


def _on_publish(self, buf, packet):
    qos = packet.qos
    if qos == 2:
        from mqtt import qos2

        qos2.received_publish(self, buf, packet)
        return
    if self.on_message is not None:
        self.on_message(buf, packet)
    # Not once the callback has disconnected: the ack would wait in the
    # queue for a connection that is gone (the broker sends it again).
    if qos and self.state != DISCONNECTED:
        self._queue_scratch(encode_ack(self._scratch, self._scratch_end, PUBACK, packet.packet_id))


def ack_dropped(self, qos, packet_id):
    """Acknowledge an incoming PUBLISH the client could not take (too
    large for its buffer), so the broker does not resend it forever."""
    kind = PUBACK if qos == 1 else PUBREC
    self._queue_scratch(encode_ack(self._scratch, self._scratch_end, kind, packet_id))


def connack_reason(code):
    from mqtt.packet_more import CONNACK_REASONS

    if 0 <= code < len(CONNACK_REASONS):
        return CONNACK_REASONS[code]
    return "unknown return code"


def refuse_settings(keepalive_s, inflight_max, max_packet, scratch_size, pool):
    """The ValueError for the first of Session's settings that is out of range."""
    if not 0 <= keepalive_s <= 65535:
        raise ValueError("keepalive must be 0 to 65535 s, got %r" % (keepalive_s,))
    if not 1 <= inflight_max <= 1024:
        raise ValueError("inflight_max must be 1 to 1024, got %r" % (inflight_max,))
    if max_packet < 16 or scratch_size < 64:
        raise ValueError("max_packet (%r) must be >= 16 and scratch_size (%r) >= 64" % (max_packet, scratch_size))
    raise ValueError(
        "inflight_bytes (%d) must hold a message of max_packet (%d bytes): raise inflight_bytes" % (pool, max_packet)
    )
