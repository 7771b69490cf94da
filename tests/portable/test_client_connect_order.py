# A broker keeping a session sends the messages it queued right behind
# CONNACK, often in the same read: on_connect runs first, then on_message
# for each of them, as paho does (a handler may set up in on_connect what
# on_message uses). Through the scripted stream of test_client_reentry.
from mqtt.client import MQTTClient
from test_client_reentry import ScriptedStream, puback, publish_packet

TOPIC = b"house/kitchen/node/set/interval"
CONNACK_SESSION_PRESENT = b"\x20\x02\x01\x00"
EOF_CHUNK = b""  # readinto returns 0: the broker closed the link


class EndingStream(ScriptedStream):
    """A scripted stream whose empty chunk reads as the end of the stream."""

    def readinto(self, buf, length):
        if self.chunks and self.chunks[0] == EOF_CHUNK:
            return 0
        return ScriptedStream.readinto(self, buf, length)


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
    streams = []

    def transport(client, deadline):
        stream = EndingStream()
        if streams:  # the second link: the broker kept the session and a message for it
            stream.chunks = [CONNACK_SESSION_PRESENT + publish_packet(TOPIC, b"while away", 1, 9)]
        streams.append(stream)
        return stream

    settings = {"clean_session": False, "reconnect_min_ms": 1, "reconnect_max_ms": 2, "transport": transport}
    client = MQTTClient("kitchen-node", "broker.invalid", **settings)
    order = recording(client)
    client.connect()
    streams[0].chunks.append(EOF_CHUNK)
    for _ in range(50):  # the link drops, the client reconnects after 1-2 ms
        client.poll(5)
        if len(order) == 3:
            break
    assert order == [("connect", False), ("connect", True), ("message", b"while away")], order
    assert puback(9) in bytes(streams[1].written)
