# encode_publish with every argument checked, for callers that have not
# checked them: tests, the test brokers, tools. The session checks a publish
# once (the topic when first seen, the QoS, the size against its buffers)
# and writes it with mqtt.packet.put_publish, so a node does not load this.
# Reached as mqtt.packet.encode_publish too.

from compat import const
from mqtt.packet import _check_fits, put_publish, remaining_length_size
from mqtt.packet_more import MAX_REMAINING_LENGTH

_MAX_FIELD = const(65535)
_MAX_PACKET_ID = const(65535)
_DUP = const(0x08)
_RETAIN = const(0x01)


def encode_publish(buf, offset, topic, payload, qos=0, retain=False, dup=False, packet_id=0, payload_len=-1):
    """PUBLISH (3.1.1 section 3.3). payload_len -1 sends all of payload, else
    payload[0:payload_len]. The topic's characters are not checked here
    (topic.validate_topic_name does that, once); its length is. packet_id is
    ignored for QoS 0, which has none."""
    if isinstance(topic, str):
        topic = topic.encode()
    if payload is None:
        payload = b""
    elif isinstance(payload, str):
        payload = payload.encode()
    if qos == 0:
        # 3.1.1 section 3.3.1.1: DUP MUST be 0 for QoS 0.
        if dup:
            raise ValueError("dup must be False for QoS 0, got %r" % (dup,))
        first = 0x30
        packet_id = 0
    elif qos == 1 or qos == 2:
        if packet_id < 1 or packet_id > _MAX_PACKET_ID:
            raise ValueError("packet_id must be 1..65535 for QoS %d, got %d" % (qos, packet_id))
        first = 0x30 | (qos << 1)
        if dup:
            first |= _DUP
    else:
        raise ValueError("qos must be 0, 1 or 2, got %r" % (qos,))
    if retain:
        first |= _RETAIN
    topic_length = len(topic)
    # 3.1.1 section 4.7.3: 1..65535 bytes.
    if topic_length == 0 or topic_length > _MAX_FIELD:
        raise ValueError("topic must be 1..65535 bytes, got %d" % topic_length)
    whole = len(payload)
    if payload_len == -1:
        payload_len = whole
    elif payload_len < 0 or payload_len > whole:
        raise ValueError("payload_len must be -1 or 0..%d, got %d" % (whole, payload_len))
    remaining = 2 + topic_length + (2 if packet_id else 0) + payload_len
    if remaining > MAX_REMAINING_LENGTH:
        raise ValueError("PUBLISH remaining length %d exceeds 268435455" % remaining)
    if offset < 0 or offset + 1 + remaining_length_size(remaining) + remaining > len(buf):
        _check_fits(buf, offset, 1 + remaining_length_size(remaining) + remaining, "PUBLISH")
    return put_publish(buf, offset, len(buf), first, topic, payload, payload_len, packet_id)
