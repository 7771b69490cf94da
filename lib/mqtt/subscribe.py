# SUBSCRIBE and UNSUBSCRIBE (3.1.1 sections 3.8, 3.10), the client's
# encoders: loaded at the first subscribe or unsubscribe, so that a node
# that only publishes does not hold them. Reached as
# mqtt.packet.encode_subscribe / encode_unsubscribe too.

from compat import const
from mqtt.packet import _check_fits, _check_qos, _packet_size, _put_field, _put_header
from mqtt.packet_more import SUBSCRIBE, UNSUBSCRIBE, _check_packet_id
from mqtt.topic import TOPIC_FILTER, checked

_FLAGS = const(0x02)  # 3.1.1 sections 3.8.1, 3.10.1: flags 0b0010


def _nonempty_sequence(values, what):
    if isinstance(values, (str, bytes, bytearray, memoryview)) or len(values) == 0:
        raise ValueError("%s must be a non-empty sequence, got %r" % (what, values))


def _start(buf, offset, packet_type, name, remaining, packet_id):
    """The packet's size, once it is known to fit, and where its payload
    starts after the fixed header and the packet id."""
    size = _packet_size(remaining, name)
    _check_fits(buf, offset, size, name)
    i = _put_header(buf, offset, (packet_type << 4) | _FLAGS, remaining)
    buf[i] = packet_id >> 8
    buf[i + 1] = packet_id & 0xFF
    return size, i + 2


def validate_topic_filter(topic_filter):
    """ValueError unless `topic_filter` can be subscribed to: 1..65535 bytes
    of UTF-8, no U+0000, '+' and '#' only as whole levels, '#' only last.
    Reached as mqtt.topic.validate_topic_filter too."""
    checked(topic_filter, TOPIC_FILTER, "topic filter")


def encode_subscribe(buf, offset, packet_id, subscriptions):
    """SUBSCRIBE (3.1.1 section 3.8); subscriptions: a sequence of
    (topic filter, requested QoS)."""
    _check_packet_id(packet_id, "SUBSCRIBE")
    # 3.1.1 section 3.8.3: at least one topic filter / QoS pair.
    _nonempty_sequence(subscriptions, "subscriptions")
    remaining = 2
    for topic_filter, qos in subscriptions:
        remaining += 3 + len(checked(topic_filter, TOPIC_FILTER, "topic filter"))
        _check_qos(qos, "requested qos")
    size, i = _start(buf, offset, SUBSCRIBE, "SUBSCRIBE", remaining, packet_id)
    for topic_filter, qos in subscriptions:
        i = _put_field(buf, i, topic_filter.encode() if isinstance(topic_filter, str) else topic_filter)
        buf[i] = qos
        i += 1
    return size


def encode_unsubscribe(buf, offset, packet_id, filters):
    """UNSUBSCRIBE (3.1.1 section 3.10); filters: a sequence of topic filters."""
    _check_packet_id(packet_id, "UNSUBSCRIBE")
    # 3.1.1 section 3.10.3: at least one topic filter.
    _nonempty_sequence(filters, "filters")
    remaining = 2
    for topic_filter in filters:
        remaining += 2 + len(checked(topic_filter, TOPIC_FILTER, "topic filter"))
    size, i = _start(buf, offset, UNSUBSCRIBE, "UNSUBSCRIBE", remaining, packet_id)
    for topic_filter in filters:
        i = _put_field(buf, i, topic_filter.encode() if isinstance(topic_filter, str) else topic_filter)
    return size
