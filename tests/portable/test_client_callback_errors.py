# A callback that raises (on_message, on_publish, on_connect): the rest of
# what was read is still handled, its acks still go out, the link stays up,
# and the error comes out of poll() once the client is in order again.
# Through the scripted stream of test_client_reentry.
from mqtt.client import MQTTClient
from support import raised_by
from test_client_reentry import ScriptedStream, connected, puback, publish_packet

TOPIC = b"house/kitchen/node/set/interval"


class Boom(Exception):
    pass


def test_on_message_raising_still_acks_and_delivers_the_rest():
    client, stream = connected()
    delivered = []
    error = Boom("handler failed")

    def on_message(c, userdata, message):
        delivered.append(message.payload)
        if message.payload == b"first":
            raise error

    client.on_message = on_message
    mine = client.publish(b"house/kitchen/temp", b"21.5", 1)
    stream.written = bytearray()
    # One read: a message whose handler raises, another, and the PUBACK of ours.
    stream.chunks.append(publish_packet(TOPIC, b"first", 1, 7) + publish_packet(TOPIC, b"second", 1, 8) + puback(mine))
    assert raised_by(client.poll, 0) is error  # not kept to itself
    assert delivered == [b"first", b"second"], delivered
    assert bytes(stream.written) == puback(7) + puback(8), bytes(stream.written)
    assert client.session.inflight_count() == 0  # our PUBACK was read too
    assert client.connected and client.disconnects == 0 and not stream.closed
    # Raised once; the client goes on reading where it was.
    stream.written = bytearray()
    stream.chunks.append(publish_packet(TOPIC, b"third", 1, 9))
    client.poll(0)
    assert delivered[-1] == b"third"
    assert bytes(stream.written) == puback(9)


def test_an_oserror_from_a_handler_is_not_a_link_failure():
    client, stream = connected()
    failure = OSError(28, "no room on flash")

    def on_message(c, userdata, message):
        raise failure

    client.on_message = on_message
    stream.chunks.append(publish_packet(TOPIC, b"60", 1, 3))
    assert raised_by(client.poll, 0) is failure  # not kept to itself
    assert client.connected and client.disconnects == 0 and not stream.closed
    assert client.reconnect_in_ms() == -1  # no reconnect scheduled: the link is fine
    assert bytes(stream.written) == puback(3)


def test_on_publish_raising_still_frees_the_message():
    client, stream = connected()
    acked = []

    def on_publish(c, userdata, packet_id):
        acked.append(packet_id)
        raise Boom("on_publish failed")

    client.on_publish = on_publish
    first = client.publish(b"house/kitchen/temp", b"21.5", 1)
    second = client.publish(b"house/kitchen/temp", b"21.6", 1)
    stream.chunks.append(puback(first) + puback(second))
    assert isinstance(raised_by(client.wait_for_acks, 1000), Boom)  # the on_publish error is not lost
    assert acked == [first, second]
    assert client.session.inflight_count() == 0
    assert client.connected and client.disconnects == 0


def test_on_connect_raising_oserror_on_a_reconnect_keeps_the_link():
    streams = []

    def transport(c, deadline):
        stream = ScriptedStream()
        streams.append(stream)
        return stream

    client = MQTTClient("kitchen-node", "broker.invalid", transport=transport, reconnect_min_ms=1, reconnect_max_ms=1)
    client.connect()
    failure = OSError(5, "display gone")

    def on_connect(c, userdata, session_present):
        raise failure

    client.on_connect = on_connect
    streams[0].chunks.append(b"")  # the broker hangs up: EOF
    client.poll(0)
    assert not client.connected and client.disconnects == 1
    raised = None
    for _ in range(50):  # the 1 ms backoff, then the reconnect
        try:
            client.poll(5)
        except OSError as e:
            raised = e
            break
    assert raised is failure, raised
    assert client.connected and client.connects == 2 and len(streams) == 2
    assert client.reconnect_in_ms() == -1
    assert streams[1].chunks == []  # its CONNACK was read
