# The client against the real mosquitto the harness started, on CPython and
# on the Unix port. Each test uses its own client ids and topics.
from inbox import Inbox
from mqtt.client import MQTTClient
from support import allocated_by, broker_address, heap_locked, poll_until, unique_id

NEEDS_NETWORK = True  # a broker or sockets: not on the 32-bit runtime

SMALL_HEAP = True


def make_client(name, **kwargs):
    host, port = broker_address()
    return MQTTClient(unique_id(name), host, port, **kwargs)


def subscribed(name, topic, qos, **kwargs):
    # Subscribers are small, so that two clients fit in a board-sized heap.
    client = make_client(name, inflight_max=2, max_packet=64, tx_size=128, **kwargs)
    inbox = Inbox(client)
    client.connect()
    client.subscribe(topic, qos)
    assert poll_until(client, lambda: inbox.granted), "no SUBACK"
    assert inbox.granted == [(qos,)]
    return client, inbox


def test_connect_and_disconnect():
    client = make_client("connect")
    assert client.connect() is False
    assert client.connected
    client.disconnect()
    assert not client.connected


def _publish_and_receive(topic, qos):
    sub, inbox = subscribed("sub%d" % qos, topic, 2)
    pub = make_client("pub%d" % qos)
    acked = []
    pub.on_publish = lambda c, u, mid: acked.append(mid)
    pub.connect()
    mid = pub.publish(topic, b"21.5", qos)
    assert poll_until([pub, sub], lambda: inbox.messages and (qos == 0 or acked))
    assert inbox.messages == [(topic, b"21.5", qos, False)]
    if qos:
        assert acked == [mid]
        assert pub.session.inflight_count() == 0
    pub.disconnect()
    sub.disconnect()


def test_publish_each_qos_reaches_a_subscriber():
    topic = "house/test/%s" % unique_id("qos")
    for qos in (0, 1, 2):
        _publish_and_receive(topic + "/%d" % qos, qos)


def test_incoming_qos2_delivered_exactly_once():
    topic = "house/test/%s" % unique_id("in2")
    sub, inbox = subscribed("sub", topic, 2)
    pub = make_client("pub")
    pub.connect()
    for i in range(20):
        pub.publish(topic, ("%d" % i).encode(), 2)
    assert poll_until([pub, sub], lambda: len(inbox.messages) >= 20 and not pub.session.inflight_count())
    poll_until([pub, sub], lambda: False, 200)  # anything extra would arrive now
    assert [m[1] for m in inbox.messages] == [("%d" % i).encode() for i in range(20)]


def test_retained_message_reaches_later_subscriber():
    topic = "house/test/%s/status" % unique_id("ret")
    pub = make_client("pub")
    pub.connect()
    pub.publish(topic, b"online", 1, True)
    pub.wait_for_acks(5000)
    sub, inbox = subscribed("sub", topic, 1)
    assert poll_until(sub, lambda: inbox.messages)
    assert inbox.messages == [(topic, b"online", 1, True)]
    pub.publish(topic, b"", 1, True)  # clear it
    pub.wait_for_acks(5000)


def test_last_will_sent_when_socket_dies():
    topic = "house/test/%s/status" % unique_id("will")
    sub, inbox = subscribed("sub", topic, 1)
    node = make_client("node", keepalive=5)
    node.will_set(topic, b"offline", 1, False)
    node.connect()
    node._stream.close()  # no DISCONNECT: the broker must publish the will
    assert poll_until(sub, lambda: inbox.messages, 5000)
    assert inbox.messages == [(topic, b"offline", 1, False)]


def test_clean_disconnect_sends_no_will():
    topic = "house/test/%s/status" % unique_id("nowill")
    sub, inbox = subscribed("sub", topic, 1)
    node = make_client("node")
    node.will_set(topic, b"offline", 1, False)
    node.connect()
    node.disconnect()
    poll_until(sub, lambda: inbox.messages, 500)
    assert inbox.messages == []


def test_persistent_session_receives_what_was_published_while_away():
    topic = "house/test/%s/cmd" % unique_id("away")
    sub, inbox = subscribed("away", topic, 1, clean_session=False)
    sub.disconnect()
    pub = make_client("pub", inflight_max=4, max_packet=64)
    pub.connect()
    for i in range(10):
        pub.publish(topic, ("%d" % i).encode(), 1)
    assert pub.wait_for_acks(5000)
    sub = pub = None
    again = make_client("away", clean_session=False, inflight_max=2, max_packet=64, tx_size=128)
    inbox = Inbox(again)
    assert again.connect() is True  # session present
    assert poll_until(again, lambda: len(inbox.messages) >= 10)
    assert [m[1] for m in inbox.messages] == [("%d" % i).encode() for i in range(10)]
    # Leave no session behind on the shared broker.
    again.disconnect()
    again = None
    forget = MQTTClient(unique_id("away"), *broker_address(), clean_session=True, inflight_max=1, max_packet=64)
    forget.connect()
    forget.disconnect()


def test_keepalive_pings_keep_an_idle_link_up():
    client = make_client("idle", keepalive=1)
    client.connect()
    poll_until(client, lambda: False, 3500)
    assert client.connected
    assert client.disconnects == 0
    assert client.session.pings >= 2


TOPIC = b"house/kitchen/temperature"


def _publish_burst(client, count):
    for _ in range(count):
        client.publish(TOPIC, b"21.5", 0)
        client.publish(TOPIC, b"21.5", 1)
        client.poll(0)
    # Collect the remaining PUBACKs without a deadline computation that allocates.
    while client.session.inflight_count():
        client.poll(100)


def test_publish_and_acks_after_connect_allocate_nothing():
    client = make_client("alloc", keepalive=60)
    client.connect()
    _publish_burst(client, 20)  # warm up
    assert allocated_by(_publish_burst, client, 1000) == 0
    heap_locked(_publish_burst, client, 200)
    assert client.connected
    assert client.disconnects == 0


def test_unsubscribed_filter_receives_nothing_more():
    topic = "house/test/%s" % unique_id("unsub")
    sub, inbox = subscribed("unsub", topic, 1)
    pub = make_client("unsub-pub", inflight_max=2, max_packet=64)
    pub.connect()
    pub.publish(topic, b"before", 1)
    assert poll_until([pub, sub], lambda: inbox.messages)
    unsubacked = []
    sub.on_unsubscribe = lambda client, userdata, packet_id: unsubacked.append(packet_id)  # paho's callback
    packet_id = sub.unsubscribe(topic)
    assert poll_until(sub, lambda: unsubacked)
    assert unsubacked == [packet_id]
    pub.publish(topic, b"after", 1)
    assert pub.wait_for_acks(5000)
    poll_until([pub, sub], lambda: False, 300)
    assert [m[1] for m in inbox.messages] == [b"before"]
