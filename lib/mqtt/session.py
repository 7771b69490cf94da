# The MQTT 3.1.1 client state machine, sans-I/O: bytes and the current tick
# (ms) go in, bytes to send and the next deadline come out. It never touches
# a socket or reads a clock, so it is tested byte for byte with no broker.
#
# Outgoing bytes live in one preallocated buffer, `mem`: a scratch region
# for packets sent once (QoS 0, acks, pings, CONNECT, SUBSCRIBE), then one
# slot per in-flight message holding its encoded PUBLISH (or PUBREL) for
# resending. What to write next is a queue of (start, length) segments into
# `mem`, so a publish costs no allocation and no copy.

from compat import const, ticks_add, ticks_diff
from mqtt.packet import (
    CONNACK,
    CONNACK_REASONS,
    PINGRESP,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    SUBACK,
    UNSUBACK,
    Packet,
    ProtocolError,
    decode,
    encode_ack,
    encode_connect,
    encode_disconnect,
    encode_pingreq,
    encode_publish,
    encode_subscribe,
    encode_unsubscribe,
)
from mqtt.topic import validate_topic_name

try:  # for the type checker: a board has neither module
    from collections.abc import Callable
    from typing import Any
except ImportError:
    pass

# Session states.
DISCONNECTED = const(0)
CONNECTING = const(1)
CONNECTED = const(2)

# In-flight slot states (outgoing QoS 1 and 2).
_FREE = const(0)
_AWAIT_PUBACK = const(1)  # QoS 1: PUBLISH sent
_AWAIT_PUBREC = const(2)  # QoS 2 step 1: PUBLISH sent
_AWAIT_PUBCOMP = const(3)  # QoS 2 step 2: PUBREL sent

_DUP_FLAG = const(0x08)
_MAX_PACKET_ID = const(65535)
# Incoming QoS 2 ids awaiting PUBREL, one bit per packet id: 3.1.1 (sections
# 4.3.3, 4.4) sets no limit on how many a broker sends before PUBRELs come.
_INBOUND_QOS2_BYTES = const(8192)
_CONNACK_BYTE = const(0x20)
_CHECKED_TOPICS = const(8)
# Extra output segments beyond one per in-flight slot: scratch runs, acks, pings.
_OUT_SPARE = const(8)
# PUBACK, PUBREC, PUBREL, PUBCOMP: what handling one incoming packet may queue.
_ACK_SIZE = const(4)
# A board's ticks_add refuses, and its ticks_diff cannot measure, 2^29 ms
# (6.2 days) or more: a longer retry_ms is waited out in steps this long.
_LONGEST_WAIT_MS = const(0x1FFFFFFF)


class ConnectRefused(Exception):
    """The broker answered CONNECT with a non-zero CONNACK return code."""

    def __init__(self, return_code, reason):
        super().__init__("broker refused the connection: %s (CONNACK code %d)" % (reason, return_code))
        self.return_code = return_code
        self.reason = reason


class KeepaliveTimeout(Exception):
    """Nothing arrived from the broker within 1.5 x keepalive: the link is dead."""


class Session:
    # Hooks for the layer above; None: not called. on_message sees each new
    # incoming PUBLISH once; on_ack fires when an outgoing QoS 1/2 message is
    # complete; on_suback and on_unsuback report subscription results.
    on_message: "Callable[[Any, Packet], None] | None" = None  # (buf, packet)
    on_ack: "Callable[[int], None] | None" = None  # (packet_id)
    on_suback: "Callable[[int, Any, int, int], None] | None" = None  # (packet_id, buf, start, count)
    on_unsuback: "Callable[[int], None] | None" = None  # (packet_id)

    def __init__(
        self,
        client_id,
        keepalive_s=60,
        clean_session=True,
        username=None,
        password=None,
        inflight_max=16,
        max_packet=256,
        scratch_size=512,
        retry_ms=10000,
    ):
        if not 0 <= keepalive_s <= 65535:
            raise ValueError("keepalive must be 0 to 65535 s, got %r" % (keepalive_s,))
        if not 1 <= inflight_max <= 1024:
            raise ValueError("inflight_max must be 1 to 1024, got %r" % (inflight_max,))
        if max_packet < 16 or scratch_size < 64:
            raise ValueError("max_packet (%r) must be >= 16 and scratch_size (%r) >= 64" % (max_packet, scratch_size))
        self.client_id = client_id
        self.keepalive_ms = keepalive_s * 1000
        self.clean_session = clean_session
        self.username = username
        self.password = password
        self.will_topic = None
        self.will_payload = None
        self.will_qos = 0
        self.will_retain = False
        self.retry_ms = retry_ms
        self.inflight_max = inflight_max
        self.max_packet = max_packet
        self._scratch_size = scratch_size

        self.mem = bytearray(scratch_size + inflight_max * max_packet)
        view = memoryview(self.mem)
        self._scratch = view[0:scratch_size]
        self._slot_views = [
            view[scratch_size + i * max_packet : scratch_size + (i + 1) * max_packet] for i in range(inflight_max)
        ]
        self._slot_state = [_FREE] * inflight_max
        self._slot_id = [0] * inflight_max
        self._slot_length = [0] * inflight_max
        self._slot_sent = [0] * inflight_max  # tick the slot's wait is counted from
        self._slot_wait = [0] * inflight_max  # ms from _slot_sent until it is resent
        self._slot_order = [0] * inflight_max  # send order, so resends keep it
        self._slot_transmitted = [False] * inflight_max
        self._slot_displaced = [False] * inflight_max
        self._displaced = 0
        self._retry_check = 0  # no slot is due for a resend before this tick
        # Topics checked lately: bytes and str cannot change, so a topic object
        # seen before needs no second scan (a node publishes the same few).
        self._checked_topics = [None] * _CHECKED_TOPICS
        self._checked_next = 0
        self._order = 0
        self._inflight = 0

        capacity = 2 * inflight_max + _OUT_SPARE
        self.out_start = [0] * capacity
        self.out_length = [0] * capacity
        self.out_count = 0
        self._scratch_end = 0

        # Made at the first incoming QoS 2 PUBLISH: a node that never gets
        # one never pays its 8 KB.
        self._inbound_qos2 = None

        self._packet = Packet()
        self.state = DISCONNECTED
        self.session_present = False
        self._next_id = 0
        self._last_sent = 0
        self._last_received = 0
        self._ping_outstanding = False

        # Counters for diagnostics and tests.
        self.resent = 0
        self.pings = 0
        self.unknown_acks = 0
        self.duplicates_dropped = 0
        # QoS 2 messages a broker completed with PUBACK (it serves QoS 2 as 1).
        self.qos2_downgraded = 0

    # ---- configuration -------------------------------------------------

    def will_set(self, topic, payload, qos=0, retain=False):
        validate_topic_name(topic)
        if qos not in (0, 1, 2):
            raise ValueError("will qos must be 0, 1 or 2, got %r" % (qos,))
        self.will_topic = topic
        self.will_payload = payload
        self.will_qos = qos
        self.will_retain = retain

    # ---- output queue --------------------------------------------------

    def _queue(self, start, length):
        n = self.out_count
        if n and self.out_start[n - 1] + self.out_length[n - 1] == start:
            self.out_length[n - 1] += length  # contiguous: one write
            return
        if n == len(self.out_start):
            raise ValueError("output queue full: the client must write out pending bytes first")
        self.out_start[n] = start
        self.out_length[n] = length
        self.out_count = n + 1

    def scratch_room(self):
        return self._scratch_size - self._scratch_end

    def _queue_scratch(self, length):
        self._queue(self._scratch_end, length)
        self._scratch_end += length

    def sent(self, now):
        """The client has written every queued segment."""
        self.out_count = 0
        self._scratch_end = 0
        self._last_sent = now

    def pending_output(self):
        return self.out_count > 0

    # ---- connection ----------------------------------------------------

    def connect(self, now):
        """Queue CONNECT. Anything queued from a previous connection is void."""
        self.out_count = 0
        self._scratch_end = 0
        n = encode_connect(
            self._scratch,
            0,
            self.client_id,
            self.keepalive_ms // 1000,
            self.clean_session,
            self.username,
            self.password,
            self.will_topic,
            self.will_payload,
            self.will_qos,
            self.will_retain,
        )
        self._queue_scratch(n)
        self.state = CONNECTING
        self._last_received = now
        self._last_sent = now
        self._ping_outstanding = False

    def connection_lost(self):
        """The link is gone. In-flight messages stay for the next connection."""
        self.state = DISCONNECTED
        self.out_count = 0
        self._scratch_end = 0
        self._ping_outstanding = False

    def disconnect(self):
        n = encode_disconnect(self._scratch, self._scratch_end)
        self._queue_scratch(n)
        self.state = DISCONNECTED

    def _on_connack(self, packet, now):
        if self.state != CONNECTING:
            raise ProtocolError("CONNACK received while already connected")
        if packet.return_code:
            self.state = DISCONNECTED
            raise ConnectRefused(packet.return_code, _connack_reason(packet.return_code))
        self.state = CONNECTED
        self.session_present = bool(packet.session_present)
        bits = self._inbound_qos2
        if not self.session_present and bits is not None:
            # 3.1.1 section 4.1: the broker has no state for us, so incoming
            # QoS 2 ids it may reuse no longer mean "already delivered".
            for i in range(_INBOUND_QOS2_BYTES):
                bits[i] = 0
        self._resend_all(now)

    def _resend_all(self, now):
        # 3.1.1 section 4.4: after reconnecting, resend unacknowledged PUBLISH
        # (with DUP) and PUBREL packets with their original ids, oldest first.
        # The retry timer restarts too: one kept from before an outage of
        # 2^29 ms or more would read as up to 6.2 days in the future.
        self._retry_check = ticks_add(now, self._retry_step())
        last = -1
        for _ in range(self._inflight):
            best = -1
            for i in range(self.inflight_max):
                if self._slot_state[i] != _FREE and self._slot_order[i] > last:
                    if best < 0 or self._slot_order[i] < self._slot_order[best]:
                        best = i
            if best < 0:
                break
            last = self._slot_order[best]
            self._resend(best, now)

    def _resend(self, slot, now):
        start = self._scratch_size + slot * self.max_packet
        if self._slot_state[slot] != _AWAIT_PUBCOMP and self._slot_transmitted[slot]:
            self.mem[start] |= _DUP_FLAG  # 3.1.1 section 3.3.1.1: a re-delivery
        self._slot_transmitted[slot] = True
        self._slot_sent[slot] = now
        self._slot_wait[slot] = self.retry_ms
        self.resent += 1
        self._queue(start, self._slot_length[slot])

    # ---- publishing ----------------------------------------------------

    def inflight_count(self):
        return self._inflight

    def inflight_free(self):
        return self.inflight_max - self._inflight

    def publish(self, topic, payload, qos, retain, now, payload_len=-1):
        """Queue a PUBLISH. Returns its packet id (QoS 1, 2), 0 (QoS 0), or -1
        when the in-flight table is full and nothing was queued."""
        self._check_topic(topic)
        if qos == 0:
            n = encode_publish(self._scratch, self._scratch_end, topic, payload, 0, retain, False, 0, payload_len)
            self._queue_scratch(n)
            return 0
        if qos != 1 and qos != 2:
            raise ValueError("qos must be 0, 1 or 2, got %r" % (qos,))
        if self._inflight == self.inflight_max:
            return -1
        packet_id = self._new_packet_id()
        slot = self._free_slot(packet_id)
        n = encode_publish(self._slot_views[slot], 0, topic, payload, qos, retain, False, packet_id, payload_len)
        self._slot_state[slot] = _AWAIT_PUBACK if qos == 1 else _AWAIT_PUBREC
        self._slot_id[slot] = packet_id
        self._slot_length[slot] = n
        self._slot_sent[slot] = now
        self._slot_wait[slot] = self.retry_ms
        self._order += 1
        self._slot_order[slot] = self._order
        if not self._inflight:
            self._retry_check = ticks_add(now, self._retry_step())
        self._inflight += 1
        # Offline, it waits in its slot and goes out after CONNACK.
        self._slot_transmitted[slot] = self.state == CONNECTED
        if self.state == CONNECTED:
            self._queue(self._scratch_size + slot * self.max_packet, n)
        return packet_id

    # A message lives in its "home" slot, packet_id % inflight_max, when that
    # is free; with ids handed out in order and acks coming back in order,
    # it nearly always is, so finding a packet id's slot costs one look.
    # `_displaced` counts messages elsewhere; only then is a miss a scan.

    def _check_topic(self, topic):
        checked = self._checked_topics
        for i in range(_CHECKED_TOPICS):
            if checked[i] is topic:
                return
        validate_topic_name(topic)
        kind = type(topic)
        if kind is bytes or kind is str:  # a bytearray could change after the check
            checked[self._checked_next] = topic
            self._checked_next = (self._checked_next + 1) % _CHECKED_TOPICS

    def _free_slot(self, packet_id):
        home = packet_id % self.inflight_max
        if self._slot_state[home] == _FREE:
            self._slot_displaced[home] = False
            return home
        for i in range(self.inflight_max):
            if self._slot_state[i] == _FREE:
                self._slot_displaced[i] = True
                self._displaced += 1
                return i
        return -1

    def _new_packet_id(self):
        # 3.1.1 section 2.3.1: non-zero, and not reused while in flight.
        while True:
            self._next_id = self._next_id + 1 if self._next_id < _MAX_PACKET_ID else 1
            if self._slot_with_id(self._next_id) < 0:
                return self._next_id

    def _slot_with_id(self, packet_id):
        home = packet_id % self.inflight_max
        if self._slot_state[home] != _FREE and self._slot_id[home] == packet_id:
            return home
        if self._displaced:
            for i in range(self.inflight_max):
                if self._slot_state[i] != _FREE and self._slot_id[i] == packet_id:
                    return i
        return -1

    def _free(self, slot):
        self._slot_state[slot] = _FREE
        self._inflight -= 1
        if self._slot_displaced[slot]:
            self._slot_displaced[slot] = False
            self._displaced -= 1
        if self.on_ack is not None:
            self.on_ack(self._slot_id[slot])

    # ---- subscriptions -------------------------------------------------

    def subscribe(self, subscriptions, now):
        """subscriptions: sequence of (filter, qos). Returns the packet id."""
        packet_id = self._new_packet_id()
        n = encode_subscribe(self._scratch, self._scratch_end, packet_id, subscriptions)
        self._queue_scratch(n)
        return packet_id

    def unsubscribe(self, filters, now):
        packet_id = self._new_packet_id()
        n = encode_unsubscribe(self._scratch, self._scratch_end, packet_id, filters)
        self._queue_scratch(n)
        return packet_id

    # ---- input ---------------------------------------------------------

    def heard(self, now):
        """Bytes came from the broker, a whole packet or not: the link is alive."""
        self._last_received = now

    def receive(self, buf, start, end, now):
        """Handle every complete packet in buf[start:end]. Returns the number
        of bytes consumed; the caller keeps the rest for next time."""
        packet = self._packet
        consumed = 0
        while start < end:
            if self._scratch_size - self._scratch_end < _ACK_SIZE:
                break  # no room for its ack: the client writes out, then calls again
            if self.state == CONNECTING and buf[start] != _CONNACK_BYTE:
                # 3.1.1 section 3.2: a broker answers CONNECT with CONNACK
                # first; an HTTP server's "HTTP/1.1 400" is not one.
                raise ProtocolError(
                    "not an MQTT broker: expected CONNACK, got %r" % (bytes(buf[start : min(end, start + 16)]),)
                )
            n = decode(buf, start, end, packet)
            if n < 0:
                break
            self._last_received = now
            self._handle(buf, packet, now)
            start += n
            consumed += n
        return consumed

    def _handle(self, buf, packet, now):
        kind = packet.type
        if self.state == CONNECTING and kind != CONNACK:
            # 3.1.1 section 3.2: the first packet from the broker is CONNACK.
            raise ProtocolError("packet type %d received before CONNACK" % kind)
        if kind == PUBACK:
            self._on_ack(packet.packet_id, _AWAIT_PUBACK, now)
        elif kind == PINGRESP:
            self._ping_outstanding = False
        elif kind == PUBLISH:
            self._on_publish(buf, packet)
        elif kind == PUBREC:
            self._on_ack(packet.packet_id, _AWAIT_PUBREC, now)
        elif kind == PUBCOMP:
            self._on_ack(packet.packet_id, _AWAIT_PUBCOMP, now)
        elif kind == PUBREL:
            self._on_pubrel(packet.packet_id)
        elif kind == CONNACK:
            self._on_connack(packet, now)
        elif kind == SUBACK:
            if self.on_suback is not None:
                self.on_suback(packet.packet_id, buf, packet.codes_start, packet.codes_length)
        elif kind == UNSUBACK:
            if self.on_unsuback is not None:
                self.on_unsuback(packet.packet_id)
        # decode() refuses the packets only a client sends.

    def _on_ack(self, packet_id, expected_state, now):
        slot = self._slot_with_id(packet_id)
        if slot >= 0 and expected_state == _AWAIT_PUBACK and self._slot_state[slot] == _AWAIT_PUBREC:
            # A PUBACK for a QoS 2 PUBLISH: the broker serves QoS 2 as QoS 1
            # (RabbitMQ does, as documented). Resending would only make
            # copies: the message is complete, as QoS 1.
            self.qos2_downgraded += 1
            self._free(slot)
            return
        if slot < 0 or self._slot_state[slot] != expected_state:
            # A second PUBACK after a DUP resend is legal; anything else
            # unknown is harmless to ignore. Counted, never fatal.
            self.unknown_acks += 1
            if expected_state == _AWAIT_PUBREC:
                # 3.1.1 section 4.3.3: always answer PUBREC with PUBREL.
                self._queue_scratch(encode_ack(self._scratch, self._scratch_end, PUBREL, packet_id))
            return
        if expected_state == _AWAIT_PUBREC:
            # Keep the PUBREL in the slot: it is resent until PUBCOMP.
            self._slot_length[slot] = encode_ack(self._slot_views[slot], 0, PUBREL, packet_id)
            self._slot_state[slot] = _AWAIT_PUBCOMP
            self._slot_sent[slot] = now
            self._slot_wait[slot] = self.retry_ms
            self._queue(self._scratch_size + slot * self.max_packet, self._slot_length[slot])
            return
        self._free(slot)

    def _on_publish(self, buf, packet):
        qos = packet.qos
        if qos == 0:
            self._deliver(buf, packet)
        elif qos == 1:
            self._deliver(buf, packet)
            self._queue_scratch(encode_ack(self._scratch, self._scratch_end, PUBACK, packet.packet_id))
        else:
            # 3.1.1 section 4.3.3, method B: deliver on first PUBLISH, remember
            # the id until PUBREL so a DUP of it is not delivered twice.
            if self._remember_inbound(packet.packet_id):
                self._deliver(buf, packet)
            else:
                self.duplicates_dropped += 1
            self._queue_scratch(encode_ack(self._scratch, self._scratch_end, PUBREC, packet.packet_id))

    def ack_dropped(self, qos, packet_id):
        """Acknowledge an incoming PUBLISH the client could not take (too
        large for its buffer), so the broker does not resend it forever."""
        kind = PUBACK if qos == 1 else PUBREC
        self._queue_scratch(encode_ack(self._scratch, self._scratch_end, kind, packet_id))

    def _deliver(self, buf, packet):
        if self.on_message is not None:
            self.on_message(buf, packet)

    def _remember_inbound(self, packet_id):
        """False if packet_id already awaits its PUBREL (a DUP), else marks it."""
        bits = self._inbound_qos2
        if bits is None:
            bits = self._inbound_qos2 = bytearray(_INBOUND_QOS2_BYTES)
        mask = 1 << (packet_id & 7)
        if bits[packet_id >> 3] & mask:
            return False
        bits[packet_id >> 3] |= mask
        return True

    def _on_pubrel(self, packet_id):
        bits = self._inbound_qos2
        if bits is not None:
            bits[packet_id >> 3] &= 0xFF ^ (1 << (packet_id & 7))
        # 3.1.1 section 4.3.3: PUBCOMP even for an id we no longer hold.
        self._queue_scratch(encode_ack(self._scratch, self._scratch_end, PUBCOMP, packet_id))

    # ---- time ----------------------------------------------------------

    def tick(self, now):
        """Queue what is due (PINGREQ, resends). Returns ms until the next
        deadline, or -1 when nothing is scheduled. Raises KeepaliveTimeout
        when nothing has arrived for 1.5 x keepalive."""
        if self.state != CONNECTED:
            return -1
        wait = -1
        keepalive = self.keepalive_ms
        if keepalive:
            silent = ticks_diff(now, self._last_received)
            if silent >= keepalive + (keepalive >> 1):
                raise KeepaliveTimeout(
                    "no packet from the broker for %d ms (keepalive %d s)" % (silent, keepalive // 1000)
                )
            idle = ticks_diff(now, self._last_sent)
            if not self._ping_outstanding and (idle >= keepalive or silent >= keepalive):
                # 3.1.1 section 3.1.2.10. Pinging on silence too means a node
                # that only sends QoS 0 still hears from the broker.
                self._queue_scratch(encode_pingreq(self._scratch, self._scratch_end))
                self._ping_outstanding = True
                self.pings += 1
            if self._ping_outstanding:
                wait = keepalive + (keepalive >> 1) - silent
            else:
                wait = keepalive - (idle if idle > silent else silent)
        if self._inflight and self.retry_ms:
            left = ticks_diff(self._retry_check, now)
            if left <= 0:
                left = self._resend_due(now)
            if wait < 0 or left < wait:
                wait = left
        return wait

    def _resend_due(self, now):
        """Resend what has waited retry_ms for its ack; returns ms until the
        next slot is due (at most _LONGEST_WAIT_MS), and remembers it so
        tick() need not look before."""
        earliest = _LONGEST_WAIT_MS
        for i in range(self.inflight_max):
            if self._slot_state[i] != _FREE:
                left = self._slot_wait[i] - ticks_diff(now, self._slot_sent[i])
                if left <= 0:
                    self._resend(i, now)
                    left = self._slot_wait[i]
                else:
                    # Count what is left from now: the next look is within
                    # _LONGEST_WAIT_MS, so ticks_diff never has to measure
                    # a retry_ms longer than that in one go.
                    self._slot_sent[i] = now
                    self._slot_wait[i] = left
                if left < earliest:
                    earliest = left
        self._retry_check = ticks_add(now, earliest)
        return earliest

    def _retry_step(self):
        retry = self.retry_ms
        return retry if retry < _LONGEST_WAIT_MS else _LONGEST_WAIT_MS


def _connack_reason(code):
    if 0 <= code < len(CONNACK_REASONS):
        return CONNACK_REASONS[code]
    return "unknown return code"
