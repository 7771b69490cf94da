# The codec's hot path allocates nothing (DESIGN.md): encoding PUBLISH QoS
# 0/1, the acks and PINGREQ, and decoding PUBLISH, PUBACK and PINGRESP from
# a preallocated receive buffer. On the MicroPython Unix port the heap
# delta over 1000 calls with the collector off is exactly 0, and the same
# calls run with the heap locked. On CPython the code still runs (and is
# checked for the right bytes) but the delta is trivially 0.
from mqtt.packet import (
    PINGRESP,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    UNSUBACK,
    Packet,
    decode,
    decode_header,
    encode_ack,
    encode_disconnect,
    encode_pingreq,
    encode_publish,
    put_publish,
)
from support import allocated_by, heap_locked

SMALL_HEAP = True  # also under a board-sized heap (conftest: unix-esp32heap)

CALLS = 1000
TOPIC = b"house/kitchen/temperature"
TOPIC_UTF8 = "maison/séjour/température".encode()
PAYLOAD = bytearray(b"21.5")
TX = bytearray(256)
TX_VIEW = memoryview(bytearray(256))  # the session encodes into views of its slots


def no_allocation(run):
    assert allocated_by(run) == 0, "allocated %d bytes in %d calls" % (allocated_by(run), CALLS)
    heap_locked(run)  # MemoryError on MicroPython if anything allocates


def test_encode_publish_qos0_allocates_nothing():
    def run():
        i = 0
        while i < CALLS:
            encode_publish(TX, 0, TOPIC, PAYLOAD)
            i += 1

    no_allocation(run)
    assert bytes(TX[:33]) == b"\x30\x1f\x00\x19" + TOPIC + b"21.5"


def test_encode_publish_qos1_with_packet_id_allocates_nothing():
    def run():
        i = 0
        while i < CALLS:
            encode_publish(TX, 8, TOPIC, PAYLOAD, 1, True, False, (i & 0x7FFF) + 1)
            i += 1

    no_allocation(run)
    assert bytes(TX[8:43]) == b"\x33\x21\x00\x19" + TOPIC + b"\x03\xe8" + b"21.5"


def test_encode_publish_qos1_dup_into_a_memoryview_with_keywords_allocates_nothing():
    def run():
        i = 0
        while i < CALLS:
            encode_publish(TX_VIEW, 0, TOPIC, PAYLOAD, qos=1, dup=True, packet_id=65535)
            i += 1

    no_allocation(run)
    assert bytes(TX_VIEW[:4]) == b"\x3a\x21\x00\x19"


def test_encode_publish_of_a_formatted_prefix_allocates_nothing():
    # A reading formatted into a preallocated bytearray, sent as its first n bytes.
    scratch = bytearray(b"-12.25__________")

    def run():
        i = 0
        while i < CALLS:
            encode_publish(TX, 0, TOPIC, scratch, 1, False, False, 7, 6)
            i += 1

    no_allocation(run)
    assert bytes(TX[:37]) == b"\x32\x23\x00\x19" + TOPIC + b"\x00\x07" + b"-12.25"


def test_put_publish_allocates_nothing():
    # What the session writes a PUBLISH with: whole payload, and a prefix.
    scratch = bytearray(b"-12.25__________")

    def run():
        i = 0
        while i < CALLS:
            put_publish(TX, 0, 128, 0x30, TOPIC, PAYLOAD, 4, 0)
            put_publish(TX, 64, 128, 0x32, TOPIC, scratch, 6, (i & 0x7FFF) + 1)
            put_publish(TX, 100, 128, 0x32, TOPIC, scratch, 6, 1)  # does not fit: -37
            i += 1

    no_allocation(run)
    assert bytes(TX[:33]) == b"\x30\x1f\x00\x19" + TOPIC + b"21.5"


def test_encode_acks_pingreq_and_disconnect_allocate_nothing():
    def run():
        i = 0
        while i < CALLS:
            encode_ack(TX, 0, PUBACK, 1)
            encode_ack(TX, 4, PUBREC, 2)
            encode_ack(TX, 8, PUBREL, 3)
            encode_ack(TX, 12, PUBCOMP, 4)
            encode_ack(TX_VIEW, 0, UNSUBACK, 5)
            encode_pingreq(TX, 16)
            encode_disconnect(TX, 18)
            i += 1

    no_allocation(run)
    assert bytes(TX[:20]) == bytes.fromhex("40020001 50020002 62020003 70020004 c000 e000".replace(" ", ""))


# A receive buffer as the client's: several packets back to back, one partial.
RX = bytearray(256)
RX_PUBLISH_QOS0 = 0
RX_PUBLISH_QOS1 = encode_publish(RX, 0, TOPIC, b"21.5")
RX_PUBLISH_UTF8 = RX_PUBLISH_QOS1 + encode_publish(RX, RX_PUBLISH_QOS1, TOPIC, b"on", 1, False, False, 77)
RX_PUBACK = RX_PUBLISH_UTF8 + encode_publish(RX, RX_PUBLISH_UTF8, TOPIC_UTF8, b"x", 2, True, True, 9)
RX_PINGRESP = RX_PUBACK + encode_ack(RX, RX_PUBACK, PUBACK, 4242)
RX_PARTIAL = RX_PINGRESP + 2
RX[RX_PINGRESP] = PINGRESP << 4
RX[RX_PINGRESP + 1] = 0
RX_END = RX_PARTIAL + encode_publish(RX, RX_PARTIAL, TOPIC, b"cut", 1, False, False, 1) - 3
PACKET = Packet()


def test_decode_publish_puback_pingresp_allocates_nothing():
    def run():
        i = 0
        while i < CALLS:
            start = 0
            while True:
                n = decode(RX, start, RX_END, PACKET)
                if n < 0:
                    break
                start += n
            i += 1

    no_allocation(run)
    assert decode(RX, RX_PARTIAL, RX_END, PACKET) == -3


def test_decoded_fields_are_offsets_into_the_receive_buffer():
    p = PACKET
    assert decode(RX, RX_PUBLISH_QOS0, RX_END, p) == RX_PUBLISH_QOS1
    assert p.type == PUBLISH and p.qos == 0 and bytes(RX[p.topic_start : p.topic_start + p.topic_length]) == TOPIC
    assert bytes(RX[p.payload_start : p.payload_start + p.payload_length]) == b"21.5"
    assert decode(RX, RX_PUBLISH_QOS1, RX_END, p) > 0 and p.qos == 1 and p.packet_id == 77
    assert decode(RX, RX_PUBLISH_UTF8, RX_END, p) > 0 and p.qos == 2 and p.dup and p.retain and p.packet_id == 9
    assert bytes(RX[p.topic_start : p.topic_start + p.topic_length]) == TOPIC_UTF8
    assert decode(RX, RX_PUBACK, RX_END, p) == 4 and p.type == PUBACK and p.packet_id == 4242
    assert decode(RX, RX_PINGRESP, RX_END, p) == 2 and p.type == PINGRESP


def test_decode_each_hot_packet_alone_allocates_nothing():
    def run():
        i = 0
        while i < CALLS:
            decode(RX, RX_PUBLISH_UTF8, RX_END, PACKET)
            decode(RX, RX_PUBACK, RX_END, PACKET)
            decode(RX, RX_PINGRESP, RX_END, PACKET)
            decode_header(RX, RX_PARTIAL, RX_END, PACKET)
            i += 1

    no_allocation(run)


def test_a_fresh_packet_record_allocates_once_and_then_never():
    # Allocating the record is the set-up cost; every decode after reuses it.
    packet = Packet()

    def run():
        i = 0
        while i < CALLS:
            decode(RX, RX_PUBLISH_QOS1, RX_END, packet)
            i += 1

    no_allocation(run)
    assert packet.packet_id == 77
