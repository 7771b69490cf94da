# A broker keeping a session sends the messages it queued right behind
# CONNACK, often in the same read: on_connect runs first, then on_message
# for each of them, as paho does (a handler may set up in on_connect what
# on_message uses). Through the scripted stream of test_client_reentry.
from mqtt.client import MQTTClient
from support import poll_until, raised_by
from test_client_reentry import CONNACK, ScriptedStream, puback, publish_packet

TOPIC = b"house/kitchen/node/set/interval"
CONNACK_SESSION_PRESENT = b"\x20\x02\x01\x00"
EOF_CHUNK = b""  # readinto returns 0: the broker closed the link


class EndingStream(ScriptedStream):
    """A scripted stream whose empty chunk reads as the end of the stream."""

    def readinto(self, buf, length):
        if self.chunks and self.chunks[0] == EOF_CHUNK:
            return 0
        return ScriptedStream.readinto(self, buf, length)


def reconnecting(chunks_for_link, max_ms=1000):
    """A client (a kept session, backoff steps from 1 ms) whose n-th link
    reads chunks_for_link(n), and the list of those links' streams."""
    streams = []

    def transport(client, deadline):
        stream = EndingStream()
        stream.chunks = chunks_for_link(len(streams))
        streams.append(stream)
        return stream

    settings = {"clean_session": False, "reconnect_min_ms": 1, "reconnect_max_ms": max_ms, "transport": transport}
    return MQTTClient("kitchen-node", "broker.invalid", **settings), streams


def recording(client):
    order = []
    client.on_connect = lambda c, userdata, present: order.append(("connect", present))
    client.on_message = lambda c, userdata, message: order.append(("message", bytes(message.payload)))
    return order


def test_messages_behind_connack_come_after_on_connect():
    stream = ScriptedStream()
    split = publish_packet(TOPIC, b"split", 1, 6)
    queued = publish_packet(TOPIC, b"queued", 1, 5) + publish_packet(TOPIC, b"also")
    stream.chunks = [CONNACK_SESSION_PRESENT + queued + split[:5]]  # the last one cut short
    client = MQTTClient("kitchen-node", "broker.invalid", clean_session=False, transport=lambda c, d: stream)
    order = recording(client)
    assert client.connect() is True
    assert order == [("connect", True)]  # connect() said connected; the rest waits for poll()
    client.poll(0)  # nothing more to read: what waited is handled without waiting for bytes
    assert order == [("connect", True), ("message", b"queued"), ("message", b"also")], order
    assert puback(5) in bytes(stream.written)
    stream.chunks.append(split[5:])
    client.poll(0)
    assert order[3:] == [("message", b"split")], order
    assert client.connected and client._rx_length == 0


def test_after_a_reconnect_too():
    # The second link: the broker kept the session and a message for it.
    away = CONNACK_SESSION_PRESENT + publish_packet(TOPIC, b"while away", 1, 9)
    client, streams = reconnecting(lambda n: [away] if n else [CONNACK], max_ms=2)
    order = recording(client)
    client.connect()
    streams[0].chunks.append(EOF_CHUNK)  # the link drops, the client reconnects after 1-2 ms
    poll_until(client, lambda: len(order) == 3)
    assert order == [("connect", False), ("connect", True), ("message", b"while away")], order
    assert puback(9) in bytes(streams[1].written)


def test_a_malformed_packet_behind_every_connack_does_not_reset_the_backoff():
    # A connect is counted good once what came behind its CONNACK was
    # handled: else such a broker is reconnected to at the shortest step
    # for ever (the node would publish online, subscribe and flush its store
    # twice a second).
    malformed = b"\x36\x05\x00\x01a\x00\x01"  # a PUBLISH with QoS 3
    client, _ = reconnecting(lambda n: [CONNACK_SESSION_PRESENT + malformed])
    client.start_reconnecting()
    poll_until(client, lambda: client.disconnects >= 5)  # steps of 1, 2, 4, 8 and 16 ms
    assert client.connects >= 5 and client.disconnects >= 5, (client.connects, client.disconnects)
    assert client.backoff.attempts >= 5  # each drop took the next, longer step


def test_sound_bytes_behind_connack_make_the_connect_count_good():
    client, streams = reconnecting(lambda n: [CONNACK_SESSION_PRESENT + publish_packet(TOPIC, b"queued")])
    order = recording(client)
    client.connect()
    streams[0].chunks.append(EOF_CHUNK)
    poll_until(client, lambda: client.connects == 2 and len(order) == 4)
    assert order == [("connect", True), ("message", b"queued")] * 2, order
    assert client.backoff.attempts == 0  # the second connect was good: the steps start again


class Shortage(MemoryError):
    pass


def test_an_error_escaping_the_walk_drops_the_rest_and_the_link_never_walks_it_twice():
    # A MemoryError while the second message behind CONNACK is delivered (a
    # fragmented heap): poll() raises it; the message before it is not
    # delivered again, and the link is dropped, for the broker to send the
    # rest again on the next one.
    import mqtt.client_more as client_more

    one, two = publish_packet(TOPIC, b"one", 1, 1), publish_packet(TOPIC, b"two", 1, 2)
    # The second link: the broker sends again what was not acknowledged.
    client, _ = reconnecting(lambda n: [CONNACK_SESSION_PRESENT + two] if n else [CONNACK_SESSION_PRESENT + one + two])
    order = recording(client)
    real = client_more.deliver
    failed = []

    def deliver(c, buf, packet):
        if len(order) == 2 and not failed:
            failed.append(True)
            raise Shortage("fragmented")
        real(c, buf, packet)

    client_more.deliver = deliver
    try:
        client.connect()
        assert isinstance(raised_by(client.poll, 0), Shortage)  # not unseen
        assert not client.connected and client.disconnects == 1
        assert client._rx_length == 0
        poll_until(client, lambda: len(order) == 4)
    finally:
        client_more.deliver = real
    assert order == [("connect", True), ("message", b"one"), ("connect", True), ("message", b"two")], order
    # On the first link, "one" was handled once (its PUBACK, queued, went
    # with the link: a broker sends it again, QoS 1's at least once).
