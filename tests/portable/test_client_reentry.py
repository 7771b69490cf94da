# The client called back from inside a read (on_message, on_publish): what a
# callback may do there, and what it cannot break: the receive buffer the
# session is still handling, the acks it queues, the transmit buffer they
# share with QoS 0 messages, pings, SUBSCRIBE and DISCONNECT.
# Through a scripted stream: each read returns the next chunk the test queued.
import mqtt.client as client_module
from compat import ticks_add, ticks_ms
from mqtt.client import MQTTClient
from mqtt.errors import InflightFull
from support import with_ticks

SMALL_HEAP = True

CONNACK = b"\x20\x02\x00\x00"
PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"
READING_TOPIC = b"house/kitchen/temp"
READING = b"0123456789"  # with READING_TOPIC, a 32-byte QoS 0 PUBLISH: four fill a 128-byte tx_size


class ScriptedStream:
    handshake = None

    def __init__(self):
        self.chunks = [CONNACK]
        self.written = bytearray()
        self.closed = False

    def write(self, buf, offset, length):
        self.written.extend(buf[offset : offset + length])
        return length

    def readinto(self, buf, length):
        if not self.chunks:
            return None
        chunk = self.chunks[0]
        n = len(chunk) if len(chunk) < length else length
        buf[0:n] = chunk[0:n]
        if n < len(chunk):
            self.chunks[0] = chunk[n:]
        else:
            self.chunks.pop(0)
        return n

    def wait_readable(self, timeout_ms):
        return bool(self.chunks)

    def wait_writable(self, timeout_ms):
        return True

    def close(self):
        self.closed = True


def connected(**kwargs):
    """A connected client and its stream, with what connecting wrote cleared."""
    streams = []

    def transport(client, deadline):
        stream = ScriptedStream()
        streams.append(stream)
        return stream

    client = MQTTClient("kitchen-node", "broker.invalid", transport=transport, **kwargs)
    client.connect()
    stream = streams[0]
    stream.written = bytearray()
    return client, stream


def publish_packet(topic, payload, qos=0, packet_id=0):
    body = bytes([len(topic) >> 8, len(topic) & 0xFF]) + topic
    if qos:
        body += bytes([packet_id >> 8, packet_id & 0xFF])
    body += payload
    return bytes([0x30 | (qos << 1), len(body)]) + body  # bodies under 128 bytes: a one-byte length


def puback(packet_id):
    return bytes([0x40, 0x02, packet_id >> 8, packet_id & 0xFF])


def fill_transmit_buffer(client):
    """Four batched QoS 0 readings, exactly the 128-byte tx_size; returns their bytes."""
    client.autoflush = False
    for _ in range(4):
        client.publish(READING_TOPIC, READING, 0)
    return 4 * publish_packet(READING_TOPIC, READING)


# ---- a publish from a callback ---------------------------------------------


def test_a_publish_from_on_message_with_no_room_raises_at_once_and_reads_nothing():
    client, stream = connected(inflight_max=1)
    first = client.publish("out", b"first", 1)  # the one-entry window is full
    delivered, refused = [], []

    def on_message(c, userdata, message):
        delivered.append(message.topic)
        if message.topic == "req/a":
            try:
                c.publish("resp/a", b"answer", 1)
            except InflightFull as e:
                refused.append((str(e), len(stream.chunks)))

    client.on_message = on_message
    stream.chunks.append(publish_packet(b"req/a", b"a") + publish_packet(b"req/b", b"b"))
    stream.chunks.append(puback(first) + publish_packet(b"req/c", b"c" * 40))
    client.poll(0)
    # Waiting for room would have read the next chunk over req/b, still unhandled.
    assert delivered == ["req/a", "req/b"], delivered
    assert len(refused) == 1, refused
    message, chunks_left = refused[0]
    assert chunks_left == 1, "the callback read from the stream"
    assert "callback" in message, message
    client.poll(0)
    assert delivered == ["req/a", "req/b", "req/c"], delivered
    assert client.connected and client.session.inflight_count() == 0


def test_poll_and_wait_for_acks_in_a_callback_read_nothing():
    client, stream = connected()
    first = client.publish("out", b"first", 1)
    seen = []

    def on_message(c, userdata, message):
        c.poll(0)
        seen.append((c.wait_for_acks(1000), len(stream.chunks)))

    client.on_message = on_message
    stream.chunks.append(publish_packet(b"req/a", b"a"))
    stream.chunks.append(puback(first))
    client.poll(0)
    assert seen == [(False, 1)], seen  # not acknowledged yet, and its PUBACK still unread
    client.poll(0)
    assert client.connected and client.session.inflight_count() == 0


def test_callbacks_publish_at_qos_0_and_where_the_window_has_room():
    client, stream = connected(inflight_max=1)
    acked = []

    def on_message(c, userdata, message):
        c.publish("resp/0", b"zero", 0)

    def on_publish(c, userdata, packet_id):
        # Its entry is free by now: the next message takes it.
        acked.append(packet_id)
        if len(acked) < 3:
            c.publish("chain", b"%d" % len(acked), 1)

    client.on_message = on_message
    client.on_publish = on_publish
    first = client.publish("chain", b"0", 1)
    stream.written = bytearray()
    stream.chunks.append(publish_packet(b"req/a", b"a", 1, 7) + puback(first))
    client.poll(0)
    stream.chunks.append(puback(first + 1))
    client.poll(0)
    stream.chunks.append(puback(first + 2))
    client.poll(0)
    assert acked == [first, first + 1, first + 2]
    assert client.connected and client.session.inflight_count() == 0
    expected = publish_packet(b"resp/0", b"zero") + puback(7)
    expected += publish_packet(b"chain", b"1", 1, first + 1) + publish_packet(b"chain", b"2", 1, first + 2)
    assert bytes(stream.written) == expected, bytes(stream.written)


# ---- a disconnect from a callback ------------------------------------------


def test_disconnect_in_on_message_sends_no_ack_and_handles_nothing_after_it():
    client, stream = connected()
    delivered = []

    def on_message(c, userdata, message):
        delivered.append(message.topic)
        c.disconnect()  # a reboot command, say

    client.on_message = on_message
    stream.chunks.append(publish_packet(b"cmd/reboot", b"", 1, 5) + publish_packet(b"cmd/other", b"", 1, 6))
    client.poll(0)
    assert delivered == ["cmd/reboot"], delivered
    assert not client.connected and client.session.out_count == 0
    # No PUBACK queued for a connection that is gone: the broker sends the message again.
    assert bytes(stream.written) == DISCONNECT, bytes(stream.written)


def test_a_publish_waiting_for_room_ends_while_bytes_wait_unwritable():
    client, stream = connected(inflight_max=1, publish_timeout_ms=20)
    client.publish("out", b"1", 1)  # the window is full
    client.session.disconnect()  # the session's DISCONNECT queued, the link marked down, nothing written
    flushes = [0]
    real_flush = client.flush

    def counted_flush():
        flushes[0] += 1
        if flushes[0] > 1000:
            raise AssertionError("publish() went on flushing a queue that cannot be written")
        real_flush()

    client.flush = counted_flush
    try:
        client.publish("out", b"2", 1)
    except InflightFull as e:
        # Disconnected, no reconnect scheduled: nothing can make room.
        assert "no reconnect is scheduled" in str(e), str(e)
    else:
        raise AssertionError("a publish with no room returned")


# ---- a full transmit buffer ------------------------------------------------


def test_a_ping_due_when_batched_qos0_messages_fill_the_transmit_buffer_goes_out_after_them():
    client, stream = connected(keepalive=1, tx_size=128)
    readings = fill_transmit_buffer(client)
    assert not stream.written
    start = ticks_ms()

    def one_keepalive_later():
        return ticks_add(start, 1000)

    for _ in range(2):
        with_ticks([client_module], one_keepalive_later, lambda: client.poll(0))
    assert client.connected
    assert bytes(stream.written) == readings + PINGREQ, bytes(stream.written)


def test_subscribe_unsubscribe_and_disconnect_write_out_a_full_transmit_buffer_first():
    for name, first_byte in (("subscribe", 0x82), ("unsubscribe", 0xA2), ("disconnect", 0xE0)):
        client, stream = connected(tx_size=128)
        readings = fill_transmit_buffer(client)
        if name == "subscribe":
            client.subscribe("house/kitchen/kitchen-node/set/+", 1)
        elif name == "unsubscribe":
            client.unsubscribe("house/kitchen/kitchen-node/set/+")
        else:
            client.disconnect()
        written = bytes(stream.written)
        assert written[: len(readings)] == readings, (name, written)
        assert written[len(readings)] == first_byte, (name, written)


def test_qos0_messages_a_callback_batches_leave_room_for_the_ack_of_its_message():
    client, stream = connected(tx_size=128)
    batched = []

    def on_message(c, userdata, message):
        batched.append(fill_transmit_buffer(c))

    client.on_message = on_message
    stream.chunks.append(publish_packet(b"cmd/report", b"", 1, 9))
    client.poll(0)
    assert client.connected
    assert bytes(stream.written) == batched[0] + puback(9), bytes(stream.written)


def test_a_publish_with_no_room_after_disconnect_raises_at_once_instead_of_spinning():
    # disconnect() schedules no reconnect: no ack can come, and poll() returns
    # at once. The publish says so instead of polling until publish_timeout_ms.
    client, stream = connected(inflight_max=1, publish_timeout_ms=600000)
    client.publish(READING_TOPIC, READING, 1)  # never acknowledged
    client.disconnect()
    polls = [0]
    poll = client.poll

    def counted_poll(timeout_ms=0):
        polls[0] += 1
        if polls[0] > 100:
            raise AssertionError("publish() spins on poll() while disconnected")
        return poll(timeout_ms)

    client.poll = counted_poll
    try:
        client.publish(READING_TOPIC, READING, 1)
    except InflightFull as e:
        assert "no reconnect is scheduled" in str(e), str(e)
    else:
        raise AssertionError("a publish with no room while disconnected was taken")
    assert polls[0] == 1, polls[0]
