# MQTTClient's methods a publishing node calls seldom or never: the last
# will, subscribing, dropping the link by hand, a clean disconnect,
# draining a packet too large for the receive buffer, and the messages
# delivered to on_message. Loaded at the
# first call of one of them: MQTTClient.__getattr__ puts each on the class
# when first asked for, so that later calls cost what any method does.

from compat import const, ticks_ms

_PUBLISH = const(3)  # 3.1.1 section 2.2.1
_ACK_SIZE = const(4)  # PUBACK, PUBREC: what the session queues after on_message

# What _pick_id takes next from a dropped QoS 1/2 PUBLISH's variable header
# (3.1.1 section 3.3.2): the topic length's two bytes, then, after the
# topic, the packet id's. 0: nothing (picked, or not such a PUBLISH).
_TOPIC_LENGTH_HIGH = const(4)
_TOPIC_LENGTH_LOW = const(3)
_ID_LOW = const(1)

# What MQTTClient.__getattr__ takes from here.
METHODS = (
    "will_set",
    "disconnect",
    "abort",
    "start_reconnecting",
    "loop_forever",
    "subscribe",
    "unsubscribe",
    "_check_oversize",
    "_drained",
    "_subacked",
    "_unsubacked",
    "_callback_failed",
    "_walk_failed",
)


class Message:
    """An incoming PUBLISH, as paho's on_message receives it."""

    def __init__(self, topic, payload, qos, retain, dup):
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.dup = dup


def will_set(self, topic, payload, qos=0, retain=False):
    self.session.will_set(topic, payload, qos, retain)


def disconnect(self):
    """Clean DISCONNECT: the broker discards the last will."""
    if self.connected:
        try:
            self._flush()  # what is queued goes first, and may fill the transmit buffer DISCONNECT goes into
            self.session.disconnect()
            self._flush()
        except OSError:
            pass
    self._close()
    self.session.connection_lost()
    self._reconnect_due = False


def abort(self, error):
    """Drop the link without DISCONNECT (the broker then sends the will),
    e.g. when Wi-Fi is known to be down; poll() reconnects later."""
    if self._stream is not None or self.connected:
        self._drop(error)


def start_reconnecting(self):
    """Make poll() keep trying to connect, with backoff, from now on
    (the first connect after power-up is treated as a reconnect)."""
    if not self.connected:
        self._reconnect_at = ticks_ms()
        self._reconnect_due = True


def loop_forever(self, timeout_ms=1000):
    self.start_reconnecting()
    while True:
        self.poll(timeout_ms)


def subscribe(self, topic, qos=0):
    """Subscribe to one filter, or a list of (filter, qos). Returns the
    packet id; the result arrives at on_subscribe."""
    self.flush()  # QoS 0 messages batched (autoflush off) may fill the transmit buffer SUBSCRIBE goes into
    if not self.connected:
        from mqtt.errors import NotConnected

        raise NotConnected("not connected: cannot subscribe to %r" % (topic,))
    subscriptions = topic if isinstance(topic, list) else [(topic, qos)]
    session = self.session
    session.on_suback = self._subacked
    packet_id = session.subscribe(subscriptions, ticks_ms())
    self.flush()
    return packet_id


def unsubscribe(self, topic):
    """Unsubscribe from one filter, or a list of them. Returns the packet
    id; the broker's UNSUBACK arrives at on_unsubscribe."""
    self.flush()  # as for SUBSCRIBE: room in the transmit buffer
    if not self.connected:
        from mqtt.errors import NotConnected

        raise NotConnected("not connected: cannot unsubscribe from %r" % (topic,))
    filters = topic if isinstance(topic, list) else [topic]
    session = self.session
    session.on_unsuback = self._unsubacked
    packet_id = session.unsubscribe(filters, ticks_ms())
    self.flush()
    return packet_id


def _check_oversize(self):
    # The receive buffer is full and holds no whole packet: one larger
    # than the buffer is drained and counted, never handled by growing
    # the buffer (the peer picks its length).
    from mqtt.packet_more import Packet, decode_header

    rx = self._rx
    header = Packet()
    if decode_header(rx, 0, len(rx), header) <= 0 or header.length <= len(rx):
        return
    self._drain = header.length - len(rx)
    self._rx_length = 0
    self.oversize_dropped += 1
    self._pick = 0
    if header.type == _PUBLISH and header.flags & 0x06:
        # 3.1.1 section 4.3: acknowledge it anyway, or the broker resends
        # it at every reconnect and holds back everything after it. Its
        # packet id follows the topic: in the buffer, or in the bytes
        # drained after it (a topic longer than the buffer).
        self._pick = _TOPIC_LENGTH_HIGH
        self._pick_skip = 0
        self._pick_value = 0
        self._pick_qos = (header.flags >> 1) & 3
        _pick_id(self, rx, header.header_length, len(rx))


def _drained(self, n):
    """n more bytes of the packet being drained are in the stage."""
    self._drain -= n
    if self._pick:
        _pick_id(self, self._stage, 0, n)


def _pick_id(self, buf, at, end):
    # buf[at:end]: the next bytes of the dropped PUBLISH's variable header,
    # in order, whatever reads or the buffer's end split them at. Keeps
    # where it is in the header across calls; acknowledges the packet at
    # its id's last byte. Allocates nothing.
    at += self._pick_skip
    while at < end:
        step = self._pick
        value = (self._pick_value << 8) | buf[at]
        at += 1
        if step == _ID_LOW:
            self._pick = 0
            self.session.ack_dropped(self._pick_qos, value)
            return
        if step == _TOPIC_LENGTH_LOW:
            at += value  # past the topic
            value = 0
        self._pick = step - 1
        self._pick_value = value
    self._pick_skip = at - end


def deliver(self, buf, packet):
    """A PUBLISH to on_message, as a Message (the decoder has checked its topic is UTF-8)."""
    topic = str(bytes(buf[packet.topic_start : packet.topic_start + packet.topic_length]), "utf-8")
    payload = bytes(buf[packet.payload_start : packet.payload_start + packet.payload_length])
    try:
        self.on_message(self, self.userdata, Message(topic, payload, packet.qos, bool(packet.retain), bool(packet.dup)))
    except Exception as e:
        self._callback_failed(e)
    session = self.session
    if session.out_count and session._scratch_size - session._scratch_end < _ACK_SIZE and self.connected:
        # QoS 0 messages the callback batched (autoflush off) filled the
        # transmit buffer: out with them, so that this message's ack fits.
        self._flush()


def _walk_failed(self, error):
    """An error escaped the session's walk of the receive buffer
    (MQTTClient._read), which it had walked part of: the rest cannot be told
    apart now, and is dropped rather than walked twice (a QoS 0 message
    would come twice). A link error poll() drops the link for itself; any
    other (a MemoryError on a fragmented heap) drops it here, so that the
    broker sends what went unread again."""
    from mqtt.errors import is_link_failure

    if self.connected and not is_link_failure(error):
        self._drop(error)


def log_downgrade(self):
    """A broker answered a QoS 2 PUBLISH with PUBACK (Session.on_downgrade)."""
    self._log(
        "%s:%d answered a QoS 2 PUBLISH with PUBACK: it does not do QoS 2, so QoS 2 messages "
        "complete as QoS 1 there (at least once, not exactly once)" % (self.host, self.port)
    )


def _subacked(self, packet_id, buf, start, count):
    if self.on_subscribe is not None:
        try:
            self.on_subscribe(self, self.userdata, packet_id, tuple(buf[start : start + count]))
        except Exception as e:
            self._callback_failed(e)


def _unsubacked(self, packet_id):
    if self.on_unsubscribe is not None:
        try:
            self.on_unsubscribe(self, self.userdata, packet_id)
        except Exception as e:
            self._callback_failed(e)


def _callback_failed(self, error):
    """A callback raised: the first such error waits for poll() to raise it
    (mqtt.client says why not at once); later ones are logged."""
    if self._callback_error is None:
        self._callback_error = error
    else:
        self._log("a callback raised again before poll() reported the first: %r" % (error,))
