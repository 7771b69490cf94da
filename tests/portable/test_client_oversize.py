# An incoming PUBLISH larger than the client's receive buffer: dropped and
# counted, and at QoS 1 and 2 acknowledged all the same (3.1.1 sections
# 4.3.2, 4.3.3), or the broker keeps it in flight and, at its in-flight
# limit, stops delivering to the client. Its packet id follows the topic,
# so a topic longer than the buffer puts the id among the bytes drained.
# The broker's end is scripted: the test says where each read stops.
from mqtt.client import MQTTClient
from support import heap_locked

RX_SIZE = 64
CONNACK = b"\x20\x02\x00\x00"
PUBACK = 0x40
PUBREC = 0x50
PUBREL = 0x62
PUBCOMP = 0x70
# Reads a test may take to the end of its script: each reads at most the
# stage's 128 bytes, so 200 covers 25 KB.
MAX_POLLS = 200


class ScriptedBroker:
    """The client's stream (see mqtt.transport): reads take the script's
    bytes in order, each stopping at the next of cuts; writes are kept.
    Neither allocates once made."""

    handshake = None

    def __init__(self, script, cuts=()):
        self.script = CONNACK + script
        self.cuts = [len(CONNACK)] + [len(CONNACK) + cut for cut in cuts]
        self.next_cut = 0
        self.at = 0
        self.written = bytearray(256)
        self.written_length = 0

    def transport(self, client, deadline):
        return self

    def readinto(self, buf, length):
        end = self.at + length
        if end > len(self.script):
            end = len(self.script)
        cuts = self.cuts
        while self.next_cut < len(cuts) and cuts[self.next_cut] <= self.at:
            self.next_cut += 1
        if self.next_cut < len(cuts) and cuts[self.next_cut] < end:
            end = cuts[self.next_cut]
        n = end - self.at
        if not n:
            return None
        script = self.script
        for i in range(n):
            buf[i] = script[self.at + i]
        self.at = end
        return n

    def wait_readable(self, timeout_ms):
        return self.at < len(self.script)

    def write(self, buf, offset, length):
        written = self.written
        for i in range(length):
            written[self.written_length + i] = buf[offset + i]
        self.written_length += length
        return length

    def wait_writable(self, timeout_ms):
        return True

    def close(self):
        pass

    def run(self, client):
        """Polls until the client has read the whole script."""
        for _ in range(MAX_POLLS):
            if self.at == len(self.script):
                break
            client.poll(0)
        assert self.at == len(self.script), "script not read after %d polls" % MAX_POLLS

    def acks(self):
        """(first byte, packet id) of every 4-byte ack the client wrote."""
        w = self.written
        return [(w[i], (w[i + 2] << 8) | w[i + 3]) for i in range(0, self.written_length, 4) if w[i + 1] == 2]


def publish(topic, payload, qos=0, packet_id=0):
    body = bytes([len(topic) >> 8, len(topic) & 0xFF]) + topic
    if qos:
        body += bytes([packet_id >> 8, packet_id & 0xFF])
    body += payload
    header = bytearray([0x30 | qos << 1])
    n = len(body)
    while True:
        header.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(header) + body


def ack(first, packet_id):
    return bytes([first, 2, packet_id >> 8, packet_id & 0xFF])


def connected(broker, rx_size=RX_SIZE):
    client = MQTTClient("node", "broker.invalid", rx_size=rx_size, transport=broker.transport)
    client.connect()
    broker.written_length = 0  # CONNECT: what follows are acks
    messages = []
    client.on_message = lambda c, userdata, m: messages.append((m.topic, m.payload, m.qos))
    return client, messages


LONG_TOPIC = b"house/kitchen/" + b"t" * 100  # longer than RX_SIZE
NEXT = publish(b"house/cmd", b"on", 1, 9)  # a message the buffer holds, after the large one


def test_qos1_publish_whose_topic_is_longer_than_the_buffer_is_acknowledged_and_the_next_delivered():
    big = publish(LONG_TOPIC, b"p" * 200, 1, 0x1234)
    broker = ScriptedBroker(big + NEXT)
    client, messages = connected(broker)
    broker.run(client)
    assert client.oversize_dropped == 1
    assert broker.acks() == [(PUBACK, 0x1234), (PUBACK, 9)]
    assert messages == [("house/cmd", b"on", 1)]
    assert client.connected


def test_qos2_publish_whose_topic_is_longer_than_the_buffer_completes_and_is_never_delivered():
    big = publish(LONG_TOPIC, b"p" * 200, 2, 0x0203)
    broker = ScriptedBroker(big + ack(PUBREL, 0x0203) + NEXT)
    client, messages = connected(broker)
    broker.run(client)
    assert client.oversize_dropped == 1
    assert broker.acks() == [(PUBREC, 0x0203), (PUBCOMP, 0x0203), (PUBACK, 9)]
    assert messages == [("house/cmd", b"on", 1)]
    assert client.connected


def test_packet_id_split_between_two_reads_of_the_drained_bytes():
    big = publish(LONG_TOPIC, b"p" * 200, 1, 0x5A6B)
    id_at = len(big) - 200 - 2
    assert id_at > RX_SIZE
    broker = ScriptedBroker(big + NEXT, cuts=(id_at + 1,))
    client, messages = connected(broker)
    broker.run(client)
    assert broker.acks() == [(PUBACK, 0x5A6B), (PUBACK, 9)]
    assert messages == [("house/cmd", b"on", 1)]


def test_packet_id_split_by_the_end_of_the_buffer():
    # 3 bytes of fixed header, 2 of topic length, 58 of topic: the id's
    # first byte is the buffer's last.
    big = publish(b"t" * 58, b"p" * 200, 1, 0x0102)
    assert len(big) - 200 - 2 == RX_SIZE - 1
    broker = ScriptedBroker(big + NEXT)
    client, messages = connected(broker)
    broker.run(client)
    assert broker.acks() == [(PUBACK, 0x0102), (PUBACK, 9)]
    assert messages == [("house/cmd", b"on", 1)]


def test_topic_length_split_between_two_reads():
    big = publish(LONG_TOPIC, b"p" * 200, 2, 0x0304)
    broker = ScriptedBroker(big + ack(PUBREL, 0x0304) + NEXT, cuts=(4,))  # after the length's first byte
    client, messages = connected(broker)
    broker.run(client)
    assert broker.acks() == [(PUBREC, 0x0304), (PUBCOMP, 0x0304), (PUBACK, 9)]
    assert messages == [("house/cmd", b"on", 1)]


def test_topic_length_split_by_the_end_of_the_buffer():
    # A 5-byte buffer and a PUBLISH of 16 KB or more (4 bytes of fixed
    # header): the buffer ends after the topic length's first byte.
    big = publish(LONG_TOPIC, b"p" * 16384, 1, 0x0506)
    assert big[3] < 0x80 and big[2] >= 0x80  # the remaining length takes 3 bytes
    nxt = publish(b"t", b"")  # 5 bytes: what the buffer holds
    broker = ScriptedBroker(big + nxt)
    client, messages = connected(broker, rx_size=5)
    broker.run(client)
    assert client.oversize_dropped == 1
    assert broker.acks() == [(PUBACK, 0x0506)]
    assert messages == [("t", b"", 0)]


def test_qos0_and_a_topic_length_past_the_packets_end_acknowledge_nothing():
    # QoS 0: nothing to acknowledge. A topic length that runs past the
    # packet's end: no id to pick, and the next packet is not taken for one.
    qos0 = publish(LONG_TOPIC, b"p" * 200)
    malformed = bytearray(publish(LONG_TOPIC, b"p" * 10, 1, 0x0708))
    assert malformed[1] >= 0x80 and malformed[2] < 0x80  # the topic length is at 3
    malformed[3] = 0x7F
    broker = ScriptedBroker(qos0 + bytes(malformed) + NEXT)
    client, messages = connected(broker)
    broker.run(client)
    assert client.oversize_dropped == 2
    assert broker.acks() == [(PUBACK, 9)]
    assert messages == [("house/cmd", b"on", 1)]


def _read_to(client, broker, end):
    while broker.at < end:
        client.poll(0)


def test_picking_the_packet_id_while_draining_allocates_nothing():
    big = publish(LONG_TOPIC, b"p" * 300, 1, 0x0A0B)
    id_at = len(big) - 300 - 2
    broker = ScriptedBroker(big * 3, cuts=(id_at + 1, len(big) + id_at + 1, 2 * len(big) + id_at + 1))
    client, messages = connected(broker)
    for k in range(1, 4):
        client.poll(0)  # the buffer fills: the drain starts (measured elsewhere)
        assert client._drain
        end = len(CONNACK) + k * len(big)
        if k == 1:
            _read_to(client, broker, end)  # first use: the methods and attributes it takes
        else:
            heap_locked(_read_to, client, broker, end)
    assert client.oversize_dropped == 3
    assert broker.acks() == [(PUBACK, 0x0A0B)] * 3
