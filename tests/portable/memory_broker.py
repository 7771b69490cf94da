# The broker's end of an in-memory stream pair, for running the real
# MQTTClient with no socket (the 32-bit runtime has none): the client's bytes
# are decoded with the broker half of the codec and answered as a broker
# would. Buffers are made once, and handling a packet allocates nothing, so
# allocation tests can count the client's bytes alone.
from mqtt.broker_codec import (
    BrokerPacket,
    decode,
    encode_connack,
    encode_pingresp,
    encode_suback,
    iter_subscriptions,
)
from mqtt.packet import (
    CONNECT,
    DISCONNECT,
    PINGREQ,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    SUBSCRIBE,
    UNSUBACK,
    UNSUBSCRIBE,
    encode_ack,
    encode_publish,
)

_PIPE_BYTES = 2048
_IDENTIFIER_REJECTED = 2
_STRICT_ID_CHARS = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_PAYLOAD_KEPT = 256


def _strict(client_id):
    return 0 < len(client_id) <= 23 and all(c in _STRICT_ID_CHARS for c in client_id)


class Pipe:
    """A fixed-size FIFO of bytes, copied byte by byte (a slice would allocate)."""

    def __init__(self, size=_PIPE_BYTES):
        self.buf = bytearray(size)
        self.count = 0

    def room(self):
        return len(self.buf) - self.count

    def put(self, data, offset, length):
        n = length if length < self.room() else self.room()
        buf, count = self.buf, self.count
        for i in range(n):
            buf[count + i] = data[offset + i]
        self.count = count + n
        return n

    def take(self, into, length):
        n = length if length < self.count else self.count
        buf = self.buf
        for i in range(n):
            into[i] = buf[i]
        self.drop(n)
        return n

    def drop(self, n):
        buf, left = self.buf, self.count - n
        for i in range(left):
            buf[i] = buf[n + i]
        self.count = left


class ClientEnd:
    """The stream MQTTClient gets from the transport (see mqtt.transport).
    The broker runs whenever the client waits, as if on another core."""

    handshake = None

    def __init__(self, broker):
        self.broker = broker

    def write(self, buf, offset, length):
        if self.broker.closed:
            raise OSError(32, "EPIPE")
        n = self.broker.inbound.put(buf, offset, length)
        return n if n else None

    def readinto(self, buf, length):
        outbound = self.broker.outbound
        if outbound.count:
            return outbound.take(buf, length)
        return 0 if self.broker.closed else None

    def wait_readable(self, timeout_ms):
        self.broker.step()
        return self.broker.outbound.count > 0 or self.broker.closed

    def wait_writable(self, timeout_ms):
        self.broker.step()
        return self.broker.inbound.room() > 0

    def close(self):
        self.broker.step()
        self.broker.closed = True


class MemoryBroker:
    """Answers one client at a time: CONNACK, PUBACK / PUBREC / PUBCOMP,
    SUBACK granting what was asked, UNSUBACK, PINGRESP. Counts what it received and
    keeps the last PUBLISH's topic and payload."""

    def __init__(self, ack=True, qos2_as_qos1=False, strict_client_ids=False, refused_ids=()):
        self.ack = ack  # False: hold back PUBACK / PUBREC, as a stalled broker does
        self.qos2_as_qos1 = qos2_as_qos1  # PUBACK for a QoS 2 PUBLISH, as RabbitMQ does
        # CONNACK 2 (identifier rejected), then the link closed, for a client
        # id other than 1 to 23 of 0-9, a-z, A-Z: legal (3.1.1 section 3.1.3.1).
        self.strict_client_ids = strict_client_ids
        self.refused_ids = refused_ids  # client ids (bytes) refused as well: a broker's own list
        self.refused = 0
        self.inbound = Pipe()
        self.outbound = Pipe()
        self.packet = BrokerPacket()
        self.scratch = bytearray(16)
        self.closed = True
        self.opened = 0
        self.received = [0] * 16  # by packet type
        self.duplicates = 0
        self.last_topic = bytearray(_PAYLOAD_KEPT)
        self.last_topic_length = 0
        self.last_payload = bytearray(_PAYLOAD_KEPT)
        self.last_payload_length = 0
        self.client_id = b""
        self.keepalive = -1

    def transport(self, client, deadline):
        """MQTTClient(transport=broker.transport): a new link per connect."""
        self.inbound.count = 0
        self.outbound.count = 0
        self.closed = False
        self.opened += 1
        return ClientEnd(self)

    def hang_up(self):
        """The broker closes the link, as a restarting broker does."""
        self.closed = True

    def step(self):
        inbound = self.inbound
        while not self.closed and inbound.count:
            length = decode(inbound.buf, 0, inbound.count, self.packet)
            if length < 0:
                return
            self._handle(inbound.buf, self.packet)
            inbound.drop(length)

    def _handle(self, buf, packet):
        kind = packet.type
        self.received[kind] += 1
        if kind == CONNECT:
            self.client_id = bytes(buf[packet.client_id_start : packet.client_id_start + packet.client_id_length])
            self.keepalive = packet.keepalive
            if self.client_id in self.refused_ids or (self.strict_client_ids and not _strict(self.client_id)):
                self._answer(encode_connack(self.scratch, 0, False, _IDENTIFIER_REJECTED))
                self.refused += 1
                self.closed = True  # 3.1.1 section 3.2.2.5: a refusal closes the link
                return
            self._answer(encode_connack(self.scratch, 0, False, 0))
        elif kind == PUBLISH:
            self._keep(buf, packet)
            if packet.qos and self.ack:
                ack = PUBACK if packet.qos == 1 or self.qos2_as_qos1 else PUBREC
                self._answer(encode_ack(self.scratch, 0, ack, packet.packet_id))
        elif kind == PUBREL:
            self._answer(encode_ack(self.scratch, 0, PUBCOMP, packet.packet_id))
        elif kind == SUBSCRIBE:
            granted = [qos for _, qos in iter_subscriptions(buf, packet)]
            self._answer(encode_suback(self.scratch, 0, packet.packet_id, granted))
        elif kind == UNSUBSCRIBE:
            self._answer(encode_ack(self.scratch, 0, UNSUBACK, packet.packet_id))
        elif kind == PINGREQ:
            self._answer(encode_pingresp(self.scratch, 0))
        elif kind == DISCONNECT:
            self.closed = True

    def _keep(self, buf, packet):
        self.duplicates += 1 if packet.dup else 0
        for i in range(packet.topic_length):
            self.last_topic[i] = buf[packet.topic_start + i]
        self.last_topic_length = packet.topic_length
        n = packet.payload_length if packet.payload_length < _PAYLOAD_KEPT else _PAYLOAD_KEPT
        for i in range(n):
            self.last_payload[i] = buf[packet.payload_start + i]
        self.last_payload_length = n

    def _answer(self, length):
        self.outbound.put(self.scratch, 0, length)

    def send_publish(self, topic, payload, qos=0, packet_id=0):
        """A PUBLISH from the broker to the client."""
        out = bytearray(8 + len(topic) + len(payload))
        n = encode_publish(out, 0, topic, payload, qos, packet_id=packet_id)
        self.outbound.put(out, 0, n)

    def last_publish(self):
        return bytes(self.last_topic[: self.last_topic_length]), bytes(self.last_payload[: self.last_payload_length])
