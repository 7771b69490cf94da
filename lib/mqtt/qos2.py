# QoS 2 (3.1.1 section 4.3.3), the session's part: the later steps of an
# outgoing QoS 2 message (PUBREC, then PUBREL until PUBCOMP), and incoming
# QoS 2 messages delivered exactly once. Loaded at the first QoS 2 packet in
# either direction, so that a node publishing at QoS 0 and 1 never holds it.
# Functions of a Session (mqtt.session), on its in-flight ring and queues.

from compat import const
from mqtt.packet_more import PUBCOMP, PUBREC, PUBREL, encode_ack
from mqtt.session import AWAIT_PUBCOMP, AWAIT_PUBREC, DISCONNECTED

# Incoming QoS 2 ids awaiting PUBREL, one bit per packet id: 3.1.1 (sections
# 4.3.3, 4.4) sets no limit on how many a broker sends before PUBRELs come.
_INBOUND_QOS2_BYTES = const(8192)


def received(session, kind, packet_id, now):
    """PUBREC, PUBREL or PUBCOMP from the broker."""
    if kind == PUBREL:
        _on_pubrel(session, packet_id)
        return
    i = session._find(packet_id)
    if i < 0 or session._await[i] != (AWAIT_PUBREC if kind == PUBREC else AWAIT_PUBCOMP):
        # A second PUBREC or PUBCOMP after a resend is legal; anything else
        # unknown is harmless to ignore. Counted, never fatal.
        session.unknown_acks += 1
        if kind == PUBREC:
            # 3.1.1 section 4.3.3: always answer PUBREC with PUBREL.
            session._queue_scratch(encode_ack(session._scratch, session._scratch_end, PUBREL, packet_id))
        return
    if kind == PUBCOMP:
        session._free(i)
        return
    # The PUBREL goes in the room its PUBLISH kept after it, and is resent
    # until PUBCOMP. The PUBLISH stays: a broker found at a reconnect to
    # have lost the session is sent it again (Session._resend_all).
    start = session._start[i] + session._length[i]
    n = encode_ack(session.mem, start, PUBREL, packet_id)
    session._await[i] = AWAIT_PUBCOMP
    session._sent[i] = now
    session._wait[i] = session.retry_ms
    session._queue(start, n)


def downgraded(session, i):
    """A PUBACK for the QoS 2 PUBLISH in entry i: the broker serves QoS 2 as
    QoS 1 (RabbitMQ does, as documented). Resending would only make copies:
    the message is complete, as QoS 1."""
    session.qos2_downgraded += 1
    if session.qos2_downgraded == 1 and session.on_downgrade is not None:
        session.on_downgrade()
    session._free(i)


def received_publish(session, buf, packet):
    # 3.1.1 section 4.3.3, method B: deliver on first PUBLISH, remember the
    # id until PUBREL so a DUP of it is not delivered twice.
    packet_id = packet.packet_id
    bits = session._inbound_qos2
    if bits is None:
        bits = session._inbound_qos2 = bytearray(_INBOUND_QOS2_BYTES)
    mask = 1 << (packet_id & 7)
    if bits[packet_id >> 3] & mask:
        session.duplicates_dropped += 1
    else:
        bits[packet_id >> 3] |= mask
        if session.on_message is not None:
            session.on_message(buf, packet)
        if session.state == DISCONNECTED:
            return  # the callback disconnected: no PUBREC for a connection that is gone
    session._queue_scratch(encode_ack(session._scratch, session._scratch_end, PUBREC, packet_id))


def _on_pubrel(session, packet_id):
    bits = session._inbound_qos2
    if bits is not None:
        bits[packet_id >> 3] &= 0xFF ^ (1 << (packet_id & 7))
    # 3.1.1 section 4.3.3: PUBCOMP even for an id we no longer hold.
    session._queue_scratch(encode_ack(session._scratch, session._scratch_end, PUBCOMP, packet_id))


def forget_inbound(session):
    """3.1.1 section 4.1: the broker has no session for us, so incoming QoS 2
    ids it may use again no longer mean "already delivered"."""
    bits = session._inbound_qos2
    for i in range(_INBOUND_QOS2_BYTES):
        bits[i] = 0
