# The session state machine, byte for byte: feed it bytes and ticks, check
# what it queues to send. No broker, no sleep. Runs on CPython and the Unix port.
from mqtt.packet import ProtocolError
from mqtt.session import CONNECTED, DISCONNECTED, ConnectRefused, KeepaliveTimeout, Session
from support import allocated_by, heap_locked

SMALL_HEAP = True

CONNACK_OK = bytes([0x20, 0x02, 0x00, 0x00])  # CONNACK, remaining 2, no session present, accepted
CONNACK_SESSION = bytes([0x20, 0x02, 0x01, 0x00])  # session present
TOPIC = b"house/kitchen/temperature"


def output(session, now=0):
    """What the session wants written, as one bytes object, then marks it sent at now."""
    out = bytearray()
    for i in range(session.out_count):
        start = session.out_start[i]
        out.extend(session.mem[start : start + session.out_length[i]])
    session.sent(now)
    return bytes(out)


def feed(session, data, now=0):
    buf = bytearray(data)
    return session.receive(buf, 0, len(buf), now)


def connected(**kwargs):
    s = Session(b"node1", **kwargs)
    s.connect(0)
    output(s)
    feed(s, CONNACK_SESSION if not kwargs.get("clean_session", True) else CONNACK_OK)
    assert s.state == CONNECTED
    return s


def publish_bytes(qos, packet_id, dup=False, topic=TOPIC, payload=b"21.5"):
    first = 0x30 | (qos << 1) | (0x08 if dup else 0)
    body = bytes([len(topic) >> 8, len(topic) & 0xFF]) + topic
    if qos:
        body += bytes([packet_id >> 8, packet_id & 0xFF])
    body += payload
    return bytes([first, len(body)]) + body


def test_connect_queues_connect_packet():
    s = Session(b"node1", keepalive_s=60)
    s.connect(0)
    assert output(s) == bytes.fromhex(
        "10 11"  # CONNECT, remaining length 17
        " 0004 4d515454"  # protocol name "MQTT"
        " 04"  # protocol level 4 (3.1.1)
        " 02"  # flags: clean session
        " 003c"  # keepalive 60 s
        " 0005 6e6f646531"  # client id "node1"
    )


def test_connack_accepted_connects():
    s = Session(b"node1")
    s.connect(0)
    output(s)
    assert feed(s, CONNACK_OK) == 4
    assert s.state == CONNECTED
    assert s.session_present is False


def test_connack_refusal_raises_with_reason():
    s = Session(b"node1")
    s.connect(0)
    try:
        feed(s, bytes([0x20, 0x02, 0x00, 0x05]))
    except ConnectRefused as e:
        assert e.return_code == 5
        assert "not authorized" in str(e)
    else:
        raise AssertionError("refusal not raised")
    assert s.state == DISCONNECTED


def test_packet_before_connack_is_a_protocol_error():
    s = Session(b"node1")
    s.connect(0)
    try:
        feed(s, bytes([0xD0, 0x00]))  # PINGRESP
    except ProtocolError:
        return
    raise AssertionError("no ProtocolError")


def test_a_server_that_is_not_a_broker_is_named_so_before_connack():
    # An HTTP server's answer: 'H' (0x48) would read as a PUBACK with bad flags.
    s = Session(b"node1")
    s.connect(0)
    try:
        feed(s, b"HTTP/1.1 400 Bad Request\r\n")
    except ProtocolError as e:
        assert "not an MQTT broker: expected CONNACK, got b'HTTP/1.1 400 Bad'" in str(e), str(e)
        return
    raise AssertionError("no ProtocolError")


def test_packet_only_a_client_sends_is_a_protocol_error():
    for data, name in ((bytes([0xC0, 0x00]), "PINGREQ"), (bytes([0x82, 0x06, 0, 1, 0, 1, 0x61, 1]), "SUBSCRIBE")):
        s = connected()
        try:
            feed(s, data)
        except ProtocolError as e:
            assert str(e) == name + " is sent by clients only", str(e)
            continue
        raise AssertionError("no ProtocolError for " + name)


def test_qos0_publish_bytes():
    s = connected()
    assert s.publish(TOPIC, b"21.5", 0, False, 0) == 0
    assert output(s) == publish_bytes(0, 0)


def test_qos0_publishes_share_one_segment():
    s = connected()
    s.publish(TOPIC, b"21.5", 0, False, 0)
    s.publish(TOPIC, b"21.6", 0, False, 0)
    assert s.out_count == 1
    assert output(s) == publish_bytes(0, 0) + publish_bytes(0, 0, payload=b"21.6")


def test_payload_len_sends_only_the_prefix():
    s = connected()
    s.publish(TOPIC, bytearray(b"21.5xxxx"), 0, False, 0, 4)
    assert output(s) == publish_bytes(0, 0)


def test_qos1_held_until_puback():
    s = connected()
    acked = []
    s.on_ack = acked.append
    assert s.publish(TOPIC, b"21.5", 1, False, 0) == 1
    assert output(s) == publish_bytes(1, 1)
    assert s.inflight_count() == 1
    feed(s, bytes([0x40, 0x02, 0x00, 0x01]))  # PUBACK id 1
    assert s.inflight_count() == 0
    assert acked == [1]


def test_qos1_resent_with_dup_after_reconnect():
    s = connected(clean_session=False)
    s.publish(TOPIC, b"21.5", 1, False, 0)
    s.publish(TOPIC, b"21.6", 1, False, 0)
    output(s)
    s.connection_lost()
    s.connect(100)
    output(s)
    feed(s, CONNACK_SESSION, 100)
    assert output(s) == publish_bytes(1, 1, dup=True) + publish_bytes(1, 2, dup=True, payload=b"21.6")
    assert s.inflight_count() == 2


def test_qos1_published_offline_goes_out_after_connack_without_dup():
    s = Session(b"node1", clean_session=False)
    assert s.publish(TOPIC, b"21.5", 1, False, 0) == 1
    assert s.out_count == 0
    s.connect(0)
    output(s)
    feed(s, CONNACK_SESSION)
    assert output(s) == publish_bytes(1, 1)


def test_qos1_resent_after_retry_timeout():
    s = connected(retry_ms=5000, keepalive_s=0)
    s.publish(TOPIC, b"21.5", 1, False, 0)
    output(s)
    assert s.tick(4999) == 1
    assert s.out_count == 0
    s.tick(5000)
    assert output(s) == publish_bytes(1, 1, dup=True)
    assert s.resent == 1


def test_resend_keeps_original_order_after_slots_are_reused():
    s = connected(inflight_max=3, clean_session=False)
    for payload in (b"a", b"b", b"c"):
        s.publish(TOPIC, payload, 1, False, 0)
    feed(s, bytes([0x40, 0x02, 0x00, 0x01]))  # slot 0 free
    s.publish(TOPIC, b"d", 1, False, 0)  # takes slot 0, id 4
    output(s)
    s.connection_lost()
    s.connect(0)
    output(s)
    feed(s, CONNACK_SESSION)
    expected = b"".join(publish_bytes(1, pid, dup=True, payload=p) for pid, p in ((2, b"b"), (3, b"c"), (4, b"d")))
    assert output(s) == expected


def test_inflight_full_returns_minus_one_and_queues_nothing():
    s = connected(inflight_max=2)
    s.publish(TOPIC, b"1", 1, False, 0)
    s.publish(TOPIC, b"2", 1, False, 0)
    output(s)
    assert s.publish(TOPIC, b"3", 1, False, 0) == -1
    assert s.out_count == 0
    assert s.inflight_free() == 0


def test_packet_ids_skip_ids_in_flight_and_wrap():
    s = connected(inflight_max=2)
    s._next_id = 65534
    assert s.publish(TOPIC, b"1", 1, False, 0) == 65535
    assert s.publish(TOPIC, b"2", 1, False, 0) == 1  # wraps, never 0
    feed(s, bytes([0x40, 0x02, 0xFF, 0xFF]))
    s._next_id = 0
    assert s.publish(TOPIC, b"3", 1, False, 0) == 2  # 1 is still in flight


def test_qos2_full_flow():
    s = connected()
    acked = []
    s.on_ack = acked.append
    assert s.publish(TOPIC, b"21.5", 2, False, 0) == 1
    assert output(s) == publish_bytes(2, 1)
    feed(s, bytes([0x50, 0x02, 0x00, 0x01]))  # PUBREC
    assert output(s) == bytes([0x62, 0x02, 0x00, 0x01])  # PUBREL, flags 0b0010
    assert acked == []
    feed(s, bytes([0x70, 0x02, 0x00, 0x01]))  # PUBCOMP
    assert acked == [1]
    assert s.inflight_count() == 0


def test_qos2_after_pubrec_reconnect_resends_pubrel_not_publish():
    s = connected(clean_session=False)
    s.publish(TOPIC, b"21.5", 2, False, 0)
    output(s)
    feed(s, bytes([0x50, 0x02, 0x00, 0x01]))
    output(s)
    s.connection_lost()
    s.connect(0)
    output(s)
    feed(s, CONNACK_SESSION)
    assert output(s) == bytes([0x62, 0x02, 0x00, 0x01])


def test_qos2_after_pubrec_a_broker_without_the_session_gets_the_publish_again():
    # The broker answered PUBREC, then lost its session (a restart without
    # persistence, or a clean session): a broker holding the message until
    # PUBREL (3.1.1 section 4.3.3, method A) no longer has it, and would
    # answer a PUBREL with PUBCOMP all the same. The PUBLISH goes again.
    for clean_session in (False, True):
        s = connected(clean_session=clean_session)
        acked = []
        s.on_ack = acked.append
        s.publish(TOPIC, b"21.5", 2, False, 0)
        output(s)
        feed(s, bytes([0x50, 0x02, 0x00, 0x01]))  # PUBREC
        assert output(s) == bytes([0x62, 0x02, 0x00, 0x01])  # PUBREL
        s.connection_lost()
        s.connect(0)
        output(s)
        feed(s, CONNACK_OK)  # no session present
        assert output(s) == publish_bytes(2, 1, dup=True), clean_session
        feed(s, bytes([0x50, 0x02, 0x00, 0x01]))
        assert output(s) == bytes([0x62, 0x02, 0x00, 0x01])
        assert acked == []
        feed(s, bytes([0x70, 0x02, 0x00, 0x01]))  # PUBCOMP
        assert acked == [1] and s.inflight_count() == 0, clean_session


def test_a_qos2_message_keeps_room_for_its_pubrel_in_the_pool():
    # One of max_packet bytes fits a pool of max_packet (and its PUBREL the
    # room after it); a message published after it does not overwrite it.
    payload = b"x" * (64 - len(publish_bytes(2, 1, payload=b"")))
    s = connected(inflight_max=4, max_packet=64, inflight_bytes=64, clean_session=False)
    assert s.publish(TOPIC, payload, 2, False, 0) == 1
    assert output(s) == publish_bytes(2, 1, payload=payload)
    s = connected(inflight_max=4, max_packet=64, inflight_bytes=128, clean_session=False)
    s.publish(TOPIC, b"21.5", 2, False, 0)
    output(s)
    feed(s, bytes([0x50, 0x02, 0x00, 0x01]))  # PUBREC: the PUBREL goes after the PUBLISH
    output(s)
    assert s.publish(TOPIC, b"22.5", 1, False, 0) == 2
    assert output(s) == publish_bytes(1, 2, payload=b"22.5")
    s.connection_lost()
    s.connect(0)
    output(s)
    feed(s, CONNACK_SESSION)
    assert output(s) == bytes([0x62, 0x02, 0x00, 0x01]) + publish_bytes(1, 2, dup=True, payload=b"22.5")


def test_unknown_puback_is_counted_not_fatal():
    s = connected()
    feed(s, bytes([0x40, 0x02, 0x12, 0x34]))
    assert s.unknown_acks == 1
    assert s.state == CONNECTED


def test_incoming_qos1_delivered_and_acknowledged():
    s = connected()
    got = []
    s.on_message = lambda buf, p: got.append(bytes(buf[p.payload_start : p.payload_start + p.payload_length]))
    feed(s, publish_bytes(1, 7, topic=b"house/kitchen/node1/set/interval", payload=b"30"))
    assert got == [b"30"]
    assert output(s) == bytes([0x40, 0x02, 0x00, 0x07])


def test_a_callback_that_drops_the_link_stops_the_read_and_queues_no_ack():
    # The client's disconnect() from on_message ends in connection_lost():
    # an ack queued after it would wait for a connection that is gone.
    for qos in (1, 2):
        s = connected()
        delivered = []

        def on_message(buf, packet, s=s, delivered=delivered):
            delivered.append(packet.packet_id)
            s.connection_lost()

        s.on_message = on_message
        first = publish_bytes(qos, 1)
        assert feed(s, first + publish_bytes(qos, 2)) == len(first)
        assert delivered == [1], (qos, delivered)
        assert s.state == DISCONNECTED and s.out_count == 0, qos


def test_incoming_qos2_delivered_once_across_duplicates():
    s = connected()
    got = []
    s.on_message = lambda buf, p: got.append(p.packet_id)
    feed(s, publish_bytes(2, 9))
    feed(s, publish_bytes(2, 9, dup=True))
    assert got == [9]
    assert s.duplicates_dropped == 1
    assert output(s) == bytes([0x50, 0x02, 0x00, 0x09]) * 2  # PUBREC each time
    feed(s, bytes([0x62, 0x02, 0x00, 0x09]))  # PUBREL
    assert output(s) == bytes([0x70, 0x02, 0x00, 0x09])  # PUBCOMP
    feed(s, publish_bytes(2, 9))  # the id is free again: a new message
    assert got == [9, 9]


def test_any_burst_of_incoming_qos2_is_delivered_exactly_once():
    # 3.1.1 sections 4.3.3 and 4.4 set no limit on how many QoS 2 messages a
    # broker sends before the PUBRELs; brokers without one exist.
    s = connected(scratch_size=1024)
    got = []
    s.on_message = lambda buf, p: got.append(p.packet_id)
    ids = list(range(1, 201)) + [65535]
    for packet_id in ids:
        feed(s, publish_bytes(2, packet_id))
        assert output(s) == bytes([0x50, 0x02, packet_id >> 8, packet_id & 0xFF])  # PUBREC
    assert got == ids
    for packet_id in ids:  # the broker resends them all (a reconnect): none delivered twice
        feed(s, publish_bytes(2, packet_id, dup=True))
    assert got == ids and s.duplicates_dropped == len(ids)
    output(s)
    for packet_id in ids:
        feed(s, bytes([0x62, 0x02, packet_id >> 8, packet_id & 0xFF]))  # PUBREL
        assert output(s) == bytes([0x70, 0x02, packet_id >> 8, packet_id & 0xFF])  # PUBCOMP
    feed(s, publish_bytes(2, 200))  # released: the id is a new message again
    assert got[-1] == 200 and len(got) == len(ids) + 1


def test_incoming_qos2_ids_are_forgotten_when_the_broker_has_no_session():
    s = connected(clean_session=False)
    got = []
    s.on_message = lambda buf, p: got.append(p.packet_id)
    feed(s, publish_bytes(2, 9))
    s.connection_lost()
    s.connect(0)
    output(s)
    feed(s, CONNACK_OK)  # session present 0: the broker kept nothing, id 9 is a new message
    feed(s, publish_bytes(2, 9))
    assert got == [9, 9]


def test_puback_for_a_qos2_publish_completes_it_as_qos1():
    # RabbitMQ serves QoS 2 as QoS 1 and answers with PUBACK.
    s = connected()
    acked = []
    s.on_ack = acked.append
    packet_id = s.publish(TOPIC, b"21.5", 2, False, 0)
    output(s)
    feed(s, bytes([0x40, 0x02, packet_id >> 8, packet_id & 0xFF]))  # PUBACK
    assert acked == [packet_id]
    assert s.inflight_count() == 0 and s.qos2_downgraded == 1 and s.unknown_acks == 0
    s.tick(20000)  # twice retry_ms, before a keepalive ping is due
    assert s.out_count == 0  # nothing left to resend


def test_ping_when_idle_and_dead_after_one_and_a_half_keepalive():
    s = connected(keepalive_s=10)
    assert s.tick(9999) == 1
    assert s.out_count == 0
    s.tick(10000)
    assert output(s) == bytes([0xC0, 0x00])  # PINGREQ
    assert s.tick(14999) == 1  # answer due by 15 s
    try:
        s.tick(15000)
    except KeepaliveTimeout:
        return
    raise AssertionError("dead link not found")


def test_pingresp_keeps_the_link_alive():
    s = connected(keepalive_s=10)
    s.tick(10000)
    output(s, 10000)
    feed(s, bytes([0xD0, 0x00]), 10050)
    s.tick(16000)  # past 1.5 x keepalive since CONNACK, but the PINGRESP counts
    assert s.out_count == 0
    s.tick(19999)
    assert s.out_count == 0
    s.tick(20000)  # keepalive since the PINGREQ went out
    assert output(s) == bytes([0xC0, 0x00])


def test_ping_on_silence_even_while_sending():
    # A node publishing QoS 0 every second never idles its output, but must
    # still hear from the broker, or the dead-link timer would fire.
    s = connected(keepalive_s=10)
    for t in range(1000, 10000, 1000):
        s.publish(TOPIC, b"1", 0, False, t)
        output(s)
        s.sent(t)
        s.tick(t)
    s.tick(10000)
    assert output(s) == bytes([0xC0, 0x00])


def test_keepalive_zero_never_pings():
    s = connected(keepalive_s=0)
    assert s.tick(10000000) == -1
    assert s.out_count == 0


def test_suback_reported():
    s = connected()
    got = []
    s.on_suback = lambda pid, buf, start, n: got.append((pid, bytes(buf[start : start + n])))
    pid = s.subscribe([(b"house/kitchen/node1/set/+", 1)], 0)
    assert output(s) == bytes.fromhex("82 1e 0001 0019") + b"house/kitchen/node1/set/+" + b"\x01"
    feed(s, bytes([0x90, 0x03, 0x00, pid, 0x80]))
    assert got == [(pid, b"\x80")]


_PUBACK = bytearray([0x40, 0x02, 0x00, 0x00])
_PINGRESP = bytearray([0xD0, 0x00])


def _publish_ack_ping(s, count):
    # QoS 0 and QoS 1 publishes, their PUBACKs, and a ping round trip each time.
    for i in range(count):
        s.publish(TOPIC, b"21.5", 0, False, i)
        s.sent(i)
        packet_id = s.publish(TOPIC, b"21.5", 1, False, i)
        s.sent(i)
        _PUBACK[2] = packet_id >> 8
        _PUBACK[3] = packet_id & 0xFF
        s.receive(_PUBACK, 0, 4, i)
        s.tick(i + 10000)  # idle for keepalive: PINGREQ queued
        s.sent(i)
        s.receive(_PINGRESP, 0, 2, i)


def test_hot_path_allocates_nothing():
    s = connected(keepalive_s=10)
    _publish_ack_ping(s, 5)  # warm up
    assert allocated_by(_publish_ack_ping, s, 1000) == 0
    heap_locked(_publish_ack_ping, s, 100)
    assert s.inflight_count() == 0


# ---- the in-flight pool ----------------------------------------------------


def _puback(packet_id):
    return bytes([0x40, 0x02, packet_id >> 8, packet_id & 0xFF])


def test_inflight_messages_share_a_pool_each_taking_its_own_length():
    # 16 in flight, max_packet 256: the pool holds 4 of max_packet (1 KB),
    # not 16 slots of 256 bytes, and 16 readings of ~35 bytes fit in it.
    s = connected(inflight_max=16, max_packet=256, scratch_size=512)
    assert len(s.mem) == 512 + 4 * 256 + 4  # and room for one QoS 2 message's PUBREL
    for i in range(16):
        assert s.publish(TOPIC, b"%d" % i, 1, False, 0) == i + 1
    assert output(s) == b"".join(publish_bytes(1, i + 1, payload=b"%d" % i) for i in range(16))
    assert s.inflight_count() == 16 and s.inflight_free() == 0


def test_inflight_bytes_sets_the_pool_and_must_hold_one_max_packet():
    # The scratch region, the pool, and room for a PUBREL after a QoS 2 message of max_packet.
    assert len(Session(b"node1", max_packet=64, scratch_size=64, inflight_bytes=200).mem) == 64 + 200 + 4
    assert len(Session(b"node1", inflight_max=2, max_packet=64, scratch_size=64).mem) == 64 + 2 * 64 + 4
    try:
        Session(b"node1", max_packet=256, inflight_bytes=255)
    except ValueError as e:
        assert "inflight_bytes (255)" in str(e) and "max_packet (256 bytes)" in str(e), str(e)
    else:
        raise AssertionError("a pool smaller than max_packet was taken")


def test_a_full_pool_refuses_until_the_oldest_is_acknowledged_then_wraps_to_its_start():
    # Each message is 2 + 2 + 25 + 2 + 8 = 39 bytes; the pool holds 3 (117 of 128).
    s = connected(inflight_max=8, max_packet=64, inflight_bytes=128, clean_session=False)
    for payload in (b"aaaaaaaa", b"bbbbbbbb", b"cccccccc"):
        s.publish(TOPIC, payload, 1, False, 0)
    output(s)
    assert s.inflight_free() == 0  # 11 bytes left: not room for a max_packet message
    assert s.publish(TOPIC, b"dddddddd", 1, False, 0) == -1
    assert s.out_count == 0 and s.inflight_count() == 3
    feed(s, _puback(1))  # the oldest is done: its 39 bytes at the pool's start come back
    packet_id = s.publish(TOPIC, b"dddddddd", 1, False, 0)
    assert packet_id > 3 and s.inflight_count() == 3
    assert output(s) == publish_bytes(1, packet_id, payload=b"dddddddd")
    # After a reconnect they go out oldest first, from wherever they lie in the pool.
    s.connection_lost()
    s.connect(0)
    output(s)
    feed(s, CONNACK_SESSION)
    expected = b"".join(
        publish_bytes(1, pid, dup=True, payload=p)
        for pid, p in ((2, b"bbbbbbbb"), (3, b"cccccccc"), (packet_id, b"dddddddd"))
    )
    assert output(s) == expected


def test_acks_out_of_order_free_entries_in_the_middle_of_the_ring():
    # A QoS 1 PUBACK may come before the PUBCOMP of an earlier QoS 2 message.
    s = connected(inflight_max=4, max_packet=64)
    acked = []
    s.on_ack = acked.append
    first = s.publish(TOPIC, b"q2", 2, False, 0)
    second = s.publish(TOPIC, b"q1", 1, False, 0)
    third = s.publish(TOPIC, b"q1", 1, False, 0)
    output(s)
    feed(s, _puback(third))
    feed(s, _puback(second))
    assert acked == [third, second] and s.inflight_count() == 1
    feed(s, bytes([0x50, 0x02, 0x00, first]))  # PUBREC
    assert output(s) == bytes([0x62, 0x02, 0x00, first])  # PUBREL
    feed(s, bytes([0x70, 0x02, 0x00, first]))  # PUBCOMP
    assert acked == [third, second, first] and s.inflight_count() == 0
    assert s.inflight_free() == 4
    for _ in range(4):  # the whole ring and pool are free again
        assert s.publish(TOPIC, b"x", 1, False, 0) > 0


def test_a_publish_larger_than_max_packet_names_both_sizes_and_the_setting():
    s = connected(max_packet=64, scratch_size=128)
    for qos in (1, 2):
        try:
            s.publish(TOPIC, b"x" * 40, qos, False, 0)  # 2 + 2 + 25 + 2 + 40 = 71 bytes
        except ValueError as e:
            assert (
                str(e) == "a PUBLISH of 71 bytes does not fit max_packet (64 bytes) for QoS %d: raise max_packet" % qos
            )
        else:
            raise AssertionError("a 71-byte QoS %d PUBLISH was taken" % qos)
    try:
        s.publish(TOPIC, b"x" * 120, 0, False, 0)
    except ValueError as e:
        assert str(e) == "a PUBLISH of 150 bytes does not fit the 128-byte transmit buffer: raise tx_size", str(e)
    else:
        raise AssertionError("a 150-byte QoS 0 PUBLISH was taken")
    assert s.out_count == 0 and s.inflight_count() == 0


def test_qos0_that_fits_only_an_empty_scratch_region_asks_for_a_write_first():
    s = connected(scratch_size=64)
    assert s.publish(TOPIC, b"x" * 20, 0, False, 0) == 0  # 49 bytes
    assert s.publish(TOPIC, b"y" * 20, 0, False, 0) == -2  # would not fit behind it: nothing queued
    assert output(s) == publish_bytes(0, 0, payload=b"x" * 20)
    assert s.publish(TOPIC, b"y" * 20, 0, False, 0) == 0


def test_packet_ids_that_come_round_to_the_ones_in_flight_skip_each_of_them():
    s = connected(inflight_max=5)
    s._next_id = 4
    assert [s.publish(TOPIC, b"1", 1, False, 0) for _ in range(3)] == [5, 6, 7]
    feed(s, _puback(7))
    s._next_id = 4  # as if 65535 ids had gone out (subscribes too) while 5 and 6 waited
    assert s.publish(TOPIC, b"2", 1, False, 0) == 7
    assert s.publish(TOPIC, b"3", 1, False, 0) == 8
    feed(s, _puback(5))
    feed(s, _puback(6))
    feed(s, _puback(7))
    feed(s, _puback(8))
    assert s.inflight_count() == 0
    s._next_id = 4  # nothing in flight: any id is free
    assert s.publish(TOPIC, b"4", 1, False, 0) == 5


def test_puback_with_packet_id_0_is_a_protocol_error():
    s = connected()
    s.publish(TOPIC, b"21.5", 1, False, 0)
    try:
        feed(s, bytes([0x40, 0x02, 0x00, 0x00]))
    except ProtocolError as e:
        assert str(e) == "PUBACK packet id is 0", str(e)
        return
    raise AssertionError("no ProtocolError")


def test_a_puback_cut_in_two_is_taken_when_the_rest_comes():
    s = connected()
    s.publish(TOPIC, b"21.5", 1, False, 0)
    output(s)
    assert feed(s, bytes([0x40, 0x02, 0x00])) == 0  # not whole yet: nothing consumed
    assert s.inflight_count() == 1
    assert feed(s, _puback(1)) == 4
    assert s.inflight_count() == 0


def test_a_second_puback_after_a_resend_is_counted_not_fatal():
    s = connected(retry_ms=100, keepalive_s=0)
    s.publish(TOPIC, b"21.5", 1, False, 0)
    output(s)
    s.tick(100)
    assert output(s) == publish_bytes(1, 1, dup=True)
    feed(s, _puback(1) + _puback(1))
    assert s.inflight_count() == 0 and s.unknown_acks == 1


def _windowed(s, count):
    # Up to 8 in flight at once, their PUBACKs in one read: the ring and the
    # pool wrap round many times.
    acks = _ACKS
    for i in range(count):
        n = 0
        while n < 8:
            packet_id = s.publish(TOPIC, b"21.5", 1, False, i)
            acks[4 * n] = 0x40
            acks[4 * n + 1] = 2
            acks[4 * n + 2] = packet_id >> 8
            acks[4 * n + 3] = packet_id & 0xFF
            n += 1
        s.sent(i)
        s.receive(acks, 0, 32, i)


_ACKS = bytearray(32)


def test_a_window_of_qos1_messages_allocates_nothing():
    s = connected(inflight_max=8, max_packet=64, inflight_bytes=300)  # 8 messages of 35 bytes
    _windowed(s, 5)
    assert allocated_by(_windowed, s, 200) == 0
    heap_locked(_windowed, s, 50)
    assert s.inflight_count() == 0


def test_settings_out_of_range_are_refused_naming_the_setting():
    cases = (
        ({"keepalive_s": 65536}, "keepalive must be 0 to 65535 s, got 65536"),
        ({"keepalive_s": -1, "inflight_max": 0}, "keepalive must be 0 to 65535 s, got -1"),
        ({"inflight_max": 0}, "inflight_max must be 1 to 1024, got 0"),
        ({"inflight_max": 1025}, "inflight_max must be 1 to 1024, got 1025"),
        ({"max_packet": 15}, "max_packet (15) must be >= 16 and scratch_size (512) >= 64"),
        ({"scratch_size": 63}, "max_packet (256) must be >= 16 and scratch_size (63) >= 64"),
        ({"inflight_bytes": 255}, "inflight_bytes (255) must hold a message of max_packet (256 bytes)"),
    )
    for settings, expected in cases:
        try:
            Session(b"node1", **settings)
        except ValueError as e:
            assert expected in str(e), (settings, str(e))
        else:
            raise AssertionError("%r taken" % (settings,))
    assert Session(b"node1", keepalive_s=0, inflight_max=1, max_packet=16, scratch_size=64).max_packet == 16
