# The MQTT 3.1.1 client state machine, sans-I/O: bytes and the current tick
# (ms) go in, bytes to send and the next deadline come out. It never touches
# a socket or reads a clock, so it is tested byte for byte with no broker.
#
# Outgoing bytes live in one preallocated buffer, `mem`: a scratch region
# for packets sent once (QoS 0, acks, pings, CONNECT, SUBSCRIBE), then a pool
# where each in-flight message's encoded PUBLISH (and a QoS 2 one's PUBREL
# after it) waits for its ack, in as many bytes as it takes (no fixed-size
# slots). What to write
# next is a queue of (start, length) segments into `mem`, so a publish
# costs no allocation and no copy.
#
# The in-flight table is a ring in publication order, and so is the pool: a
# message goes after the newest, and room comes back from the oldest. A
# broker acknowledges in that order (3.1.1 section 4.6), so the entry an
# ack names is the oldest one: found at the first look. QoS 2's later steps
# are in mqtt.qos2, loaded at the first QoS 2 packet either way; what a
# publishing node calls seldom or never (the last will, DISCONNECT,
# SUBSCRIBE, UNSUBSCRIBE, and every packet the general decoder takes) is in
# mqtt.session_more, put on the class at its first call; the exceptions are
# in mqtt.errors, made when first raised.

from compat import const, ticks_add, ticks_diff
from mqtt.packet import encode_connect, encode_pingreq, put_publish
from mqtt.topic import validate_topic_name

try:  # for the type checker: a board has neither module
    from collections.abc import Callable
    from typing import TYPE_CHECKING, Any

    if TYPE_CHECKING:
        from mqtt.packet_more import Packet
except ImportError:
    pass

# Session states.
DISCONNECTED = const(0)
CONNECTING = const(1)
CONNECTED = const(2)

# What an in-flight entry waits for (outgoing QoS 1 and 2); QoS 1 and 2
# messages start at their QoS. mqtt.qos2 takes the last two.
_FREE = const(0)
_AWAIT_PUBACK = const(1)  # QoS 1: PUBLISH sent
AWAIT_PUBREC = const(2)  # QoS 2 step 1: PUBLISH sent
AWAIT_PUBCOMP = const(3)  # QoS 2 step 2: PUBREL sent

_DUP_FLAG = const(0x08)
_RETAIN_FLAG = const(0x01)
_PUBLISH_BYTE = const(0x30)  # 3.1.1 section 3.3.1: type 3, then DUP, QoS, RETAIN
_PUBACK_BYTE = const(0x40)  # 3.1.1 section 3.4.1
_MAX_PACKET_ID = const(65535)
_CONNACK_BYTE = const(0x20)
_PINGRESP_BYTE = const(0xD0)  # 3.1.1 section 3.13
_CHECKED_TOPICS = const(8)
# Extra output segments beyond two per in-flight entry: scratch runs, acks, pings.
_OUT_SPARE = const(8)
# PUBACK, PUBREC, PUBREL, PUBCOMP: what handling one incoming packet may queue;
# also the room a QoS 2 message keeps after its PUBLISH in the pool, for its PUBREL.
_ACK_SIZE = const(4)
# In-flight messages of max_packet bytes the pool holds unless told otherwise.
_POOL_PACKETS = const(4)
# A board's ticks_add refuses, and its ticks_diff cannot measure, 2^29 ms
# (6.2 days) or more: a longer retry_ms is waited out in steps this long.
_LONGEST_WAIT_MS = const(0x1FFFFFFF)


class Session:
    # Hooks for the layer above; None: not called. on_message sees each new
    # incoming PUBLISH once; on_ack fires when an outgoing QoS 1/2 message is
    # complete; on_suback and on_unsuback report subscription results;
    # on_downgrade, when a broker first completes a QoS 2 message with PUBACK.
    on_message: "Callable[[Any, Packet], None] | None" = None  # (buf, packet)
    on_ack: "Callable[[int], None] | None" = None  # (packet_id)
    on_suback: "Callable[[int, Any, int, int], None] | None" = None  # (packet_id, buf, start, count)
    on_unsuback: "Callable[[int], None] | None" = None  # (packet_id)
    on_downgrade: "Callable[[], None] | None" = None

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
        inflight_bytes=0,
    ):
        """max_packet: the largest QoS 1/2 PUBLISH; scratch_size: the scratch
        region (the client's tx_size), the largest QoS 0 PUBLISH;
        inflight_bytes: the pool for in-flight messages (0: max_packet times
        inflight_max, at most 4 of them)."""
        pool = inflight_bytes or max_packet * (inflight_max if inflight_max < _POOL_PACKETS else _POOL_PACKETS)
        if not (
            0 <= keepalive_s <= 65535
            and 1 <= inflight_max <= 1024
            and max_packet >= 16
            and scratch_size >= 64
            and pool >= max_packet
        ):
            from mqtt.session_more import refuse_settings

            refuse_settings(keepalive_s, inflight_max, max_packet, scratch_size, pool)
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

        # The pool, and room for one PUBREL more: a QoS 2 message of
        # max_packet bytes keeps its PUBREL after it and must fit on its own.
        self.mem = bytearray(scratch_size + pool + _ACK_SIZE)
        # The encoders that check their room against len(buf) get the scratch region alone.
        self._scratch = memoryview(self.mem)[0:scratch_size]
        self._pool_end = scratch_size + pool + _ACK_SIZE
        self._head = scratch_size  # where the pool's next message goes

        # The in-flight ring, one entry per message: what it waits for, its
        # id, where its bytes are in mem, when it was last sent and how long
        # from then until it is resent, and whether it went out on some
        # connection (then a resend is a DUP).
        self._await = bytearray(inflight_max)
        self._transmitted = bytearray(inflight_max)
        self._id = [0] * inflight_max
        self._start = [0] * inflight_max
        self._length = [0] * inflight_max
        self._sent = [0] * inflight_max
        self._wait = [0] * inflight_max
        self._first = 0  # the oldest entry in flight
        self._used = 0  # entries from the oldest to the newest, done ones between them included
        self._inflight = 0
        self._lapped = False  # packet ids came round to the oldest in flight: look each new one up
        self._retry_check = 0  # no entry is due for a resend before this tick
        # Topics checked lately: bytes and str cannot change, so a topic seen
        # before needs no second scan (a node publishes the same few).
        # Looked up by identity: `in` would compare with ==, and bytes == str
        # makes the Unix port print a warning (a node publishes bytes topics,
        # its discovery configs str ones).
        self._checked_topics = [None] * _CHECKED_TOPICS
        self._checked_next = 0

        capacity = 2 * inflight_max + _OUT_SPARE
        self.out_start = [0] * capacity
        self.out_length = [0] * capacity
        self.out_count = 0
        self._scratch_end = 0

        # Made at the first incoming QoS 2 PUBLISH (mqtt.qos2): a node that
        # never gets one never pays its 8 KB.
        self._inbound_qos2 = None

        # The decoder (mqtt.packet_more) and its record, loaded at the first
        # packet receive() does not read itself.
        self._packet = None
        self._decode = None
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

    # ---- output queue --------------------------------------------------

    def _queue(self, start, length):
        n = self.out_count
        if n and self.out_start[n - 1] + self.out_length[n - 1] == start:
            self.out_length[n - 1] += length  # contiguous: one write
            return
        if n == len(self.out_start):
            from mqtt.error_text import output_queue_full

            raise output_queue_full()
        self.out_start[n] = start
        self.out_length[n] = length
        self.out_count = n + 1

    def _queue_scratch(self, length):
        self._queue(self._scratch_end, length)
        self._scratch_end += length

    def sent(self, now):
        """The client has written every queued segment."""
        self.out_count = 0
        self._scratch_end = 0
        self._last_sent = now

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

    def _on_connack(self, session_present, return_code, now):
        if self.state != CONNECTING:
            from mqtt.error_text import connack_while_connected

            raise connack_while_connected()
        if return_code:
            from mqtt.errors import ConnectRefused
            from mqtt.session_more import connack_reason

            self.state = DISCONNECTED
            raise ConnectRefused(return_code, connack_reason(return_code))
        self.state = CONNECTED
        self.session_present = bool(session_present)
        if not self.session_present and self._inbound_qos2 is not None:
            from mqtt import qos2

            qos2.forget_inbound(self)
        self._resend_all(now)

    def _resend_all(self, now):
        # 3.1.1 section 4.4: after reconnecting, resend unacknowledged PUBLISH
        # (with DUP) and PUBREL packets with their original ids, oldest first:
        # the ring's order. The retry timer restarts too: one kept from before
        # an outage of 2^29 ms or more would read as up to 6.2 days ahead.
        retry = self.retry_ms
        self._retry_check = ticks_add(now, retry if retry < _LONGEST_WAIT_MS else _LONGEST_WAIT_MS)
        i = self._first
        last = self.inflight_max - 1
        for _ in range(self._used):
            if self._await[i]:
                if self._await[i] == AWAIT_PUBCOMP and not self.session_present:
                    # No session on the broker: it may have dropped the
                    # message its PUBREC stood for (3.1.1 section 4.3.3,
                    # method A holds it until PUBREL). Its PUBLISH goes
                    # again: delivered at least once, not reported done and lost.
                    self._await[i] = AWAIT_PUBREC
                self._resend(i, now)
            i = i + 1 if i < last else 0

    def _resend(self, i, now):
        start = self._start[i]
        length = self._length[i]
        if self._await[i] == AWAIT_PUBCOMP:
            start += length  # its PUBREL, in the room kept after the PUBLISH
            length = _ACK_SIZE
        elif self._transmitted[i]:
            self.mem[start] |= _DUP_FLAG  # 3.1.1 section 3.3.1.1: a re-delivery
        self._transmitted[i] = 1
        self._sent[i] = now
        self._wait[i] = self.retry_ms
        self.resent += 1
        self._queue(start, length)

    # ---- publishing ----------------------------------------------------

    def inflight_count(self):
        return self._inflight

    def inflight_free(self):
        """How many messages can be published now without waiting: the free
        entries, or 0 while the pool has no room for one of max_packet bytes."""
        if self._pool_room() < self.max_packet:
            return 0
        return self.inflight_max - self._used

    def _pool_room(self):
        # The longest run of free pool bytes a message can take: after the
        # newest message, or, once that reaches the end, before the oldest.
        if not self._inflight:
            return self._pool_end - self._scratch_size
        head = self._head
        tail = self._start[self._first]
        if head > tail:
            after = self._pool_end - head
            before = tail - self._scratch_size
            return after if after > before else before
        return tail - head

    def publish(self, topic, payload, qos, retain, now, payload_len=-1):
        """Queue a PUBLISH. Returns its packet id (QoS 1, 2) or 0 (QoS 0); or,
        queueing nothing, -1 when the in-flight table or its pool is full,
        -2 when earlier QoS 0 packets fill the scratch region (write them out
        first). ValueError for a bad topic, QoS or payload_len, and for a
        packet larger than max_packet (QoS 1, 2) or the scratch region (QoS 0)."""
        for checked in self._checked_topics:
            if checked is topic:
                break
        else:
            self._check_topic(topic)
        if qos and qos != 1 and qos != 2:
            from mqtt.error_text import bad_qos

            raise bad_qos("qos", qos)
        if isinstance(topic, str):
            topic = topic.encode()
        if payload is None:
            payload = b""
        elif isinstance(payload, str):
            payload = payload.encode()
        if payload_len == -1:
            payload_len = len(payload)
        elif payload_len < 0 or payload_len > len(payload):
            from mqtt.error_text import bad_payload_len

            raise bad_payload_len(len(payload), payload_len)
        first = _PUBLISH_BYTE | (qos << 1) | (_RETAIN_FLAG if retain else 0)
        mem = self.mem
        if not qos:
            at = self._scratch_end
            n = put_publish(mem, at, self._scratch_size, first, topic, payload, payload_len, 0)
            if n < 0:
                if -n > self._scratch_size:
                    from mqtt.error_text import publish_over_tx_size

                    raise publish_over_tx_size(-n, self._scratch_size)
                return -2
            if self.out_count:
                self._queue(at, n)
            else:
                self.out_start[0] = at
                self.out_length[0] = n
                self.out_count = 1
            self._scratch_end = at + n
            return 0
        if self._used == self.inflight_max:
            return -1
        packet_id = self._new_packet_id()
        if self._inflight:
            at = self._head
            tail = self._start[self._first]
            limit = self._pool_end if at > tail else tail
        else:
            at = self._scratch_size
            tail = limit = self._pool_end
        # QoS 2 keeps room after its PUBLISH for its PUBREL (mqtt.qos2).
        reserve = _ACK_SIZE if qos == 2 else 0
        end = at + self.max_packet
        limit -= reserve
        n = put_publish(mem, at, end if end < limit else limit, first, topic, payload, payload_len, packet_id)
        if n < 0:
            if -n > self.max_packet:
                from mqtt.error_text import publish_over_max_packet

                raise publish_over_max_packet(-n, self.max_packet, qos)
            if at <= tail or self._scratch_size - n + reserve > tail:
                return -1  # no room after the newest message, nor before the oldest
            at = self._scratch_size
            n = put_publish(mem, at, tail - reserve, first, topic, payload, payload_len, packet_id)
        i = self._first + self._used
        if i >= self.inflight_max:
            i -= self.inflight_max
        self._await[i] = qos  # _AWAIT_PUBACK or AWAIT_PUBREC
        self._id[i] = packet_id
        self._start[i] = at
        self._length[i] = n
        self._sent[i] = now
        self._wait[i] = self.retry_ms
        self._head = at + n + reserve
        self._used += 1
        if not self._inflight:
            retry = self.retry_ms
            self._retry_check = ticks_add(now, retry if retry < _LONGEST_WAIT_MS else _LONGEST_WAIT_MS)
        self._inflight += 1
        # Offline, it waits in the pool and goes out after CONNACK, not as a DUP.
        if self.state == CONNECTED:
            self._transmitted[i] = 1
            self._queue(at, n)
        else:
            self._transmitted[i] = 0
        return packet_id

    def _check_topic(self, topic):
        validate_topic_name(topic)
        kind = type(topic)
        if kind is bytes or kind is str:  # a bytearray could change after the check
            self._checked_topics[self._checked_next] = topic
            self._checked_next = (self._checked_next + 1) % _CHECKED_TOPICS

    def _new_packet_id(self):
        # 3.1.1 section 2.3.1: non-zero, and not reused while in flight. Ids
        # go out in order and the ring holds them in that order, so the next
        # one can be in use only once the count has come round to the oldest
        # in flight (65535 ids while it waited); from then until the ring is
        # empty, each candidate is looked up.
        packet_id = self._next_id + 1 if self._next_id < _MAX_PACKET_ID else 1
        if not self._inflight:
            self._lapped = False
        elif self._lapped or packet_id == self._id[self._first]:
            self._lapped = True
            while self._find(packet_id) >= 0:
                packet_id = packet_id + 1 if packet_id < _MAX_PACKET_ID else 1
        self._next_id = packet_id
        return packet_id

    def _find(self, packet_id):
        """The in-flight entry holding packet_id, or -1."""
        i = self._first
        last = self.inflight_max - 1
        for _ in range(self._used):
            if self._id[i] == packet_id and self._await[i]:
                return i
            i = i + 1 if i < last else 0
        return -1

    def _free(self, i):
        packet_id = self._id[i]
        awaiting = self._await
        awaiting[i] = _FREE
        self._inflight -= 1
        if not self._inflight:
            self._used = 0
        elif i == self._first:
            # The oldest is done: the next one still in flight is the oldest
            # now, and the pool's bytes up to it are free again.
            last = self.inflight_max - 1
            used = self._used
            while not awaiting[i]:
                i = i + 1 if i < last else 0
                used -= 1
            self._first = i
            self._used = used
        if self.on_ack is not None:
            self.on_ack(packet_id)

    # ---- subscriptions -------------------------------------------------

    # ---- input ---------------------------------------------------------

    def heard(self, now):
        """Bytes came from the broker, a whole packet or not: the link is alive."""
        self._last_received = now

    def receive(self, buf, start, end, now):
        """Handle every complete packet in buf[start:end]. Returns the number
        of bytes consumed; the caller keeps the rest for next time. Bytes
        came, so the link is alive, a whole packet or not. Stops once a
        callback has disconnected: the rest was for that connection. Stops
        after CONNACK too: the layer above says connected before what
        follows it (a session's queued messages) is handled."""
        self._last_received = now
        begin = start
        while start < end and self.state != DISCONNECTED:
            first = buf[start]
            if first == _PUBACK_BYTE and end - start > 3 and buf[start + 1] == 2 and self.state == CONNECTED:
                # PUBACK (3.1.1 section 3.4), what a publishing node reads
                # most, is taken here without the general decoder; a packet
                # id of 0 is malformed, and the decoder says so.
                packet_id = (buf[start + 2] << 8) | buf[start + 3]
                if packet_id:
                    i = self._first
                    if self._await[i] == _AWAIT_PUBACK and self._id[i] == packet_id:
                        self._free(i)
                    else:
                        self._on_puback(packet_id)
                    start += 4
                    continue
            elif first == _PINGRESP_BYTE and end - start > 1 and buf[start + 1] == 0 and self.state == CONNECTED:
                # PINGRESP (3.1.1 section 3.13): two bytes, nothing to check.
                self._ping_outstanding = False
                start += 2
                continue
            elif (
                first == _CONNACK_BYTE
                and end - start > 3
                and buf[start + 1] == 2
                and buf[start + 2] < 2
                and buf[start + 3] == 0
                and self.state == CONNECTING
            ):
                # CONNACK accepted (3.1.1 section 3.2), Session Present 0 or
                # 1; a refusal or anything malformed goes to the decoder.
                self._on_connack(buf[start + 2], 0, now)
                start += 4
                break
            if self._scratch_size - self._scratch_end < _ACK_SIZE:
                break  # no room for its ack: the client writes out, then calls again
            if self.state == CONNECTING and first != _CONNACK_BYTE:
                # 3.1.1 section 3.2: a broker answers CONNECT with CONNACK
                # first; an HTTP server's "HTTP/1.1 400" is not one.
                from mqtt.error_text import not_a_broker

                raise not_a_broker(buf, start, end)
            packet = self._packet
            if packet is None:
                from mqtt.packet_more import Packet, decode

                packet = self._packet = Packet()
                self._decode = decode
            n = self._decode(buf, start, end, packet)
            if n < 0:
                break
            self._handle(buf, packet, now)
            start += n
            if first == _CONNACK_BYTE:
                break
        return start - begin

    def _on_puback(self, packet_id):
        i = self._find(packet_id)
        if i >= 0:
            if self._await[i] == _AWAIT_PUBACK:
                self._free(i)
                return
            if self._await[i] == AWAIT_PUBREC:
                from mqtt import qos2

                qos2.downgraded(self, i)
                return
        # A second PUBACK after a DUP resend is legal; anything else unknown
        # is harmless to ignore. Counted, never fatal.
        self.unknown_acks += 1

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
                from mqtt.error_text import keepalive_timeout

                raise keepalive_timeout(silent, keepalive)
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
        next entry is due (at most _LONGEST_WAIT_MS), and remembers it so
        tick() need not look before."""
        earliest = _LONGEST_WAIT_MS
        i = self._first
        last = self.inflight_max - 1
        for _ in range(self._used):
            if self._await[i]:
                left = self._wait[i] - ticks_diff(now, self._sent[i])
                if left <= 0:
                    self._resend(i, now)
                    left = self._wait[i]
                else:
                    # Count what is left from now: the next look is within
                    # _LONGEST_WAIT_MS, so ticks_diff never has to measure
                    # a retry_ms longer than that in one go.
                    self._sent[i] = now
                    self._wait[i] = left
                if left < earliest:
                    earliest = left
            i = i + 1 if i < last else 0
        self._retry_check = ticks_add(now, earliest)
        return earliest

    def __getattr__(self, name) -> "Any":
        # The methods in mqtt.session_more: loaded at the first call of one,
        # each put on the class when first asked for.
        from mqtt import session_more

        if name not in session_more.METHODS:
            raise AttributeError(name)
        setattr(Session, name, getattr(session_more, name))
        return getattr(self, name)


# The exceptions (ConnectRefused, KeepaliveTimeout), for `from mqtt.session
# import ...`: in mqtt.errors, made when first asked for (PEP 562's module
# __getattr__; MicroPython has it too). Names as string literals would take
# heap: whatever this module lacks is looked up there.
def __getattr__(name) -> "Any":
    if name.startswith("__"):  # CPython's import asks for __path__: not one of ours
        raise AttributeError(name)
    from mqtt import errors

    return getattr(errors, name)
