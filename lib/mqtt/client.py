# The I/O layer: moves bytes between a stream (a socket, plain or TLS, by
# default: mqtt.transport) and the session, keeps time, and reconnects.
#
# API in paho's shape: connect, publish(topic, payload, qos, retain),
# subscribe(topic, qos), callbacks on_connect / on_message / on_publish /
# on_subscribe / on_disconnect, and poll(timeout_ms) as the loop you call.
#
# What only some nodes need loads when first used: TLS (mqtt.tls) at the
# first connect with an ssl_context, SUBSCRIBE and UNSUBSCRIBE
# (mqtt.subscribe), QoS 2 (mqtt.qos2) at the first QoS 2 packet, the
# methods a publishing node calls seldom or never (will_set, subscribe,
# unsubscribe, disconnect, abort, start_reconnecting, loop_forever: in
# mqtt.client_more, put on the class at their first call), the exceptions
# (mqtt.errors) when first raised, and Message at the first one delivered.
#
# A callback that raises does not stop the read it was called from: the
# rest of what arrived is handled and acknowledged, and the first error is
# raised by poll() once the client is in order again. Raised from inside
# the read it would leave acks unsent and the receive buffer half walked,
# and an OSError would read as a broken link.

from compat import const, sleep_ms, ticks_add, ticks_diff, ticks_ms

try:  # for the type checker: a board has neither module
    from collections.abc import Callable
    from typing import TYPE_CHECKING, Any

    if TYPE_CHECKING:
        from mqtt.client_more import Message
except ImportError:
    pass
from mqtt.session import CONNECTED, Session

_STAGE_SIZE = 128
# A board's ticks_add refuses 2**29 ms (6.2 days) or more: the longest
# deadline the client can keep.
_LONGEST_WAIT_MS = (1 << 29) - 1


# The waits _wait_ms checks, by number (mqtt.errors names them).
_CONNECT_TIMEOUT = const(0)
_IO_TIMEOUT = const(1)
_PUBLISH_TIMEOUT = const(2)
_TIMEOUT = const(3)  # wait_for_acks' timeout_ms
# What a deadline within connect() is for, by number (mqtt.errors says it in words).
_NO_CONNACK = const(0)


def _wait_ms(which, value):
    if not isinstance(value, int) or not 0 < value <= _LONGEST_WAIT_MS:
        from mqtt.error_text import bad_wait

        raise bad_wait(which, value, _LONGEST_WAIT_MS)
    return value


class MQTTClient:
    # Callbacks, paho's names; each is called with the client and its
    # userdata first. None: not called.
    on_connect: "Callable[[Any, Any, bool], None] | None" = None  # session_present
    on_disconnect: "Callable[[Any, Any, Exception | None], None] | None" = None  # the error, None for disconnect()
    on_message: "Callable[[Any, Any, Message], None] | None" = None
    on_publish: "Callable[[Any, Any, int], None] | None" = None  # packet_id: a QoS 1/2 message is complete
    on_subscribe: "Callable[[Any, Any, int, tuple], None] | None" = None  # packet_id, granted QoS (0x80: refused)
    on_unsubscribe: "Callable[[Any, Any, int], None] | None" = None  # packet_id of the UNSUBACKed request
    on_log: "Callable[[Any, Any, str], None] | None" = None

    def __init__(
        self,
        client_id,
        host,
        port=1883,
        keepalive=60,
        clean_session=True,
        username=None,
        password=None,
        ssl_context=None,
        server_hostname=None,
        userdata=None,
        inflight_max=16,
        max_packet=256,
        rx_size=512,
        tx_size=512,
        connect_timeout_ms=10000,
        io_timeout_ms=10000,
        publish_timeout_ms=10000,
        retry_ms=10000,
        reconnect_min_ms=500,
        reconnect_max_ms=60000,
        resolver=None,
        transport=None,
        inflight_bytes=0,
        nodelay=True,
    ):
        self.host = host
        # transport(client, deadline) -> a stream (see mqtt.transport), opened
        # within the deadline (a tick): a UART bridge, a test's in-memory
        # pipe. None: a TCP socket, through TLS with ssl_context, loaded now
        # rather than at the first connect, so that the heap is settled
        # before the long-lived buffers below are made.
        if transport is None:
            from mqtt.transport import open_socket as transport
        self.transport = transport
        # Something with resolve(host, timeout_ms) -> address (dns.Resolver):
        # a board's getaddrinfo has no deadline. None: getaddrinfo.
        self.resolver = resolver
        # TCP_NODELAY on the socket (mqtt.transport): each packet goes out at
        # once. False leaves Nagle on: back-to-back QoS 0 messages share
        # segments, for less CPU per publish, and a packet written while an
        # earlier one is unacknowledged waits for that ack (up to a delayed
        # ACK, 40 ms from a Linux broker).
        self.nodelay = nodelay
        self.port = port
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname if server_hostname is not None else host
        self.userdata = userdata
        self.connect_timeout_ms = _wait_ms(_CONNECT_TIMEOUT, connect_timeout_ms)
        self.io_timeout_ms = _wait_ms(_IO_TIMEOUT, io_timeout_ms)
        self.publish_timeout_ms = _wait_ms(_PUBLISH_TIMEOUT, publish_timeout_ms)
        # max_packet bounds a QoS 1/2 PUBLISH, tx_size a QoS 0 one (and a
        # batch of them); inflight_bytes is the pool the unacknowledged
        # QoS 1/2 messages share (0: up to 4 of max_packet).
        session = self.session = Session(
            client_id,
            keepalive,
            clean_session,
            username,
            password,
            inflight_max=inflight_max,
            max_packet=max_packet,
            scratch_size=tx_size,
            retry_ms=retry_ms,
            inflight_bytes=inflight_bytes,
        )
        session.on_message = self._deliver
        session.on_ack = self._acked
        session.on_downgrade = self._downgraded
        # The reconnect backoff (backoff.Backoff) is made at the first
        # reconnect: a node whose link holds never loads it.
        if not 0 < reconnect_min_ms <= reconnect_max_ms:
            from backoff import Backoff

            Backoff(reconnect_min_ms, reconnect_max_ms)  # raises the ValueError that names both
        self.backoff = None
        self._reconnect_min_ms = reconnect_min_ms
        # As Backoff caps it: the longest step a board's ticks_add takes.
        self._reconnect_max_ms = reconnect_max_ms if reconnect_max_ms < _LONGEST_WAIT_MS else _LONGEST_WAIT_MS
        # When False, QoS 0 publishes collect in the transmit buffer and go
        # out as one write at the next poll() or flush(): a batch of readings.
        self.autoflush = True

        self._stream = None
        self._rx = bytearray(rx_size)
        self._rx_length = 0
        self._after_connack = False  # bytes that came after CONNACK wait in _rx (see _read)
        self._stage = bytearray(_STAGE_SIZE)
        self._drain = 0
        # True while the session walks the receive buffer, callbacks included:
        # a read then would overwrite the bytes it has yet to handle.
        self._receiving = False
        self._reconnect_at = 0
        self._reconnect_due = False
        self._callback_error = None  # the first a callback raised, for poll() to raise

        self.connects = 0
        self.disconnects = 0
        self.oversize_dropped = 0
        self.last_error = None

    # ---- connection ----------------------------------------------------

    @property
    def connected(self):
        return self.session.state == CONNECTED

    def connect(self):
        """Open the link and wait for CONNACK. connect_timeout_ms bounds the
        whole of it (DNS, TCP connect, TLS handshake, CONNACK), so a caller
        that must feed a watchdog knows the longest it can take. Raises
        OSError (MQTTTimeout for the deadline), ConnectRefused or
        ProtocolError; the client is then disconnected. Then calls
        on_connect, whose errors it raises as they are."""
        self._connect()
        if self.on_connect is not None:
            self.on_connect(self, self.userdata, self.session.session_present)
        return self.session.session_present

    def _connect(self):
        self._close()
        session = self.session
        deadline = ticks_add(ticks_ms(), self.connect_timeout_ms)
        try:
            handshake = self._open(deadline)
            session.connect(ticks_ms())
            if handshake is not None:
                # The CONNECT's write finishes the TLS handshake (netcompat.tls_wrap), within the deadline.
                try:
                    self._flush(deadline)
                except (OSError, ValueError, MemoryError) as e:
                    from mqtt.tls import tls_failure

                    raise tls_failure(e, handshake[0], handshake[1])
            try:
                self._flush()
                while session.state != CONNECTED:
                    self._read(self._time_left(deadline, _NO_CONNACK))
            except OSError as e:
                if self.ssl_context is None:
                    raise
                from mqtt.tls import tls_refused_before_connack

                refused = tls_refused_before_connack(self, e)
                if refused is None:
                    raise
                raise refused
            # CONNACK queued the resends of whatever was in flight.
            self._flush()
        except Exception as e:
            self._close()
            session.connection_lost()
            self.last_error = e
            raise
        self.connects += 1
        if self.backoff is not None and not self._after_connack:
            # With bytes behind CONNACK, once they are handled (_read): a
            # broker whose every CONNACK comes with a malformed packet must
            # not be reconnected to at the shortest step forever.
            self.backoff.reset()
        self._reconnect_due = False

    def _time_left(self, deadline, step):
        """ms left before the connect deadline; MQTTTimeout naming the step
        (a number: mqtt.errors says it in words) once it has passed."""
        left = ticks_diff(deadline, ticks_ms())
        if left <= 0:
            from mqtt.error_text import connect_deadline

            raise connect_deadline(self, step)
        return left

    def _open(self, deadline):
        """Opens the stream; returns None, or (step, free heap) while a TLS
        handshake is still to finish in the first write."""
        self._stream = self.transport(self, deadline)
        self._rx_length = 0
        self._drain = 0
        self._after_connack = False
        return getattr(self._stream, "handshake", None)

    def _close(self):
        if self._stream is not None:
            self._stream.close()
        self._stream = None

    def _drop(self, error):
        """The link failed: close it and schedule a reconnect."""
        self._close()
        self.session.connection_lost()
        self.disconnects += 1
        self.last_error = error
        self._schedule_reconnect()
        if self.on_disconnect is not None:
            self.on_disconnect(self, self.userdata, error)

    def _schedule_reconnect(self):
        backoff = self.backoff
        if backoff is None:
            from backoff import Backoff

            backoff = self.backoff = Backoff(self._reconnect_min_ms, self._reconnect_max_ms)
        self._reconnect_at = ticks_add(ticks_ms(), backoff.next_ms())
        self._reconnect_due = True

    def reconnect_in_ms(self):
        """ms until the next reconnect attempt, or -1 when none is scheduled."""
        if not self._reconnect_due:
            return -1
        left = ticks_diff(self._reconnect_at, ticks_ms())
        # Further ahead than any backoff step: it was scheduled 2**29 ms or
        # more ago (nobody polled), and ticks_diff reads it on the far side.
        return 0 if left <= 0 or left > self._reconnect_max_ms else left

    # ---- the loop ------------------------------------------------------

    def poll(self, timeout_ms=0):
        """Do what is due: read and handle what arrived (waiting up to
        timeout_ms for it), send acks, pings and resends, reconnect when the
        link is down and the backoff has passed. Never raises for link
        failures: they become a reconnect (see on_disconnect, last_error).
        Returns ms until the next thing the client must do, or -1. Raises
        the first error a callback raised since the last poll()."""
        session = self.session
        if session.state != CONNECTED:
            wait = self._poll_disconnected(timeout_ms)
        else:
            try:
                if session.out_count:
                    # QoS 0 messages batched (autoflush off) may fill the
                    # transmit buffer: out before a PINGREQ is queued into it.
                    self._flush()
                wait = session.tick(ticks_ms())
                if session.out_count:
                    self._flush()
                if wait < 0 or (timeout_ms >= 0 and timeout_ms < wait):
                    wait = timeout_ms
                self._read(wait)
                if session.state != CONNECTED:  # a callback called disconnect()
                    wait = self.reconnect_in_ms()
                elif session.out_count:
                    self._flush()  # acks for what was read
            except Exception as e:
                from mqtt.errors import is_link_failure

                if not is_link_failure(e):
                    raise
                self._drop(e)
                wait = self.reconnect_in_ms()
        if self._callback_error is not None:
            error = self._callback_error
            self._callback_error = None
            raise error
        return wait

    def _poll_disconnected(self, timeout_ms):
        if not self._reconnect_due:
            return -1
        left = self.reconnect_in_ms()
        if left > 0:
            if timeout_ms <= 0:
                return left
            sleep_ms(left if left < timeout_ms else timeout_ms)
            left = self.reconnect_in_ms()
            if left > 0:
                return left
        try:
            self._connect()
        except Exception as e:
            from mqtt.errors import ConnectRefused, ProtocolError

            if not isinstance(e, (OSError, ProtocolError, ConnectRefused)):
                raise
            self.last_error = e
            self._schedule_reconnect()
            if self.on_disconnect is not None:
                self.on_disconnect(self, self.userdata, e)
            return self.reconnect_in_ms()
        if self.on_connect is not None:
            try:
                self.on_connect(self, self.userdata, self.session.session_present)
            except Exception as e:
                self._callback_failed(e)
        return 0 if self.connected else self.reconnect_in_ms()  # on_connect may have called disconnect()

    def wait_for_acks(self, timeout_ms):
        """Poll until every QoS 1/2 message is acknowledged. Returns True
        if they all were within timeout_ms. In a callback, where acks cannot
        be read until it returns, False at once while any is in flight."""
        deadline = ticks_add(ticks_ms(), _wait_ms(_TIMEOUT, timeout_ms))
        session = self.session
        while session.inflight_count():
            left = ticks_diff(deadline, ticks_ms())
            if left <= 0 or self._receiving:
                return False
            self.poll(left)
        return True

    # ---- output --------------------------------------------------------

    def publish(self, topic, payload, qos=0, retain=False, payload_len=-1):
        """Send a PUBLISH. Returns its packet id (0 for QoS 0). QoS 1 and 2
        messages are kept until acknowledged, across reconnects; published
        while the link is down they wait in the in-flight table. When the
        table is full this polls for up to publish_timeout_ms, then raises
        InflightFull; in a callback (on_message, on_publish...), which must
        return before acks can be read, it raises InflightFull at once.
        Bad topic, QoS or size raise ValueError."""
        session = self.session
        if not qos and session.state != CONNECTED:
            from mqtt.error_text import qos0_not_connected

            raise qos0_not_connected()
        packet_id = session.publish(topic, payload, qos, retain, ticks_ms(), payload_len)
        if packet_id < 0:
            packet_id = self._publish_when_room(topic, payload, qos, retain, payload_len)
        if session.out_count and (qos or self.autoflush):
            try:
                self._flush()
            except OSError as e:
                self._drop(e)
        return packet_id

    def _publish_when_room(self, topic, payload, qos, retain, payload_len):
        # No room: write out what is queued (earlier QoS 0 packets fill the
        # transmit buffer when autoflush is off), else poll for acks (the
        # in-flight table or its pool is full), for up to publish_timeout_ms.
        # Not in a callback of a read: polling there would read over the
        # bytes being handled, and the acks come only after it returns.
        session = self.session
        deadline = ticks_add(ticks_ms(), self.publish_timeout_ms)
        left = self.publish_timeout_ms
        while True:
            if session.out_count and self.connected:
                self.flush()
            elif self._receiving:
                from mqtt.error_text import inflight_full_in_callback

                raise inflight_full_in_callback(session.inflight_count())
            elif self.poll(left) < 0 and session.state != CONNECTED:
                # Disconnected with no reconnect to wait for (disconnect()
                # was called): no ack can come to make room.
                from mqtt.error_text import inflight_full_disconnected

                raise inflight_full_disconnected(session.inflight_count())
            if not qos and session.state != CONNECTED:
                from mqtt.error_text import qos0_not_connected

                raise qos0_not_connected()
            packet_id = session.publish(topic, payload, qos, retain, ticks_ms(), payload_len)
            if packet_id >= 0:
                return packet_id
            left = ticks_diff(deadline, ticks_ms())
            if left <= 0:
                from mqtt.error_text import inflight_full

                raise inflight_full(session.inflight_count(), self.publish_timeout_ms)

    def flush(self):
        """Write out whatever is queued. A link failure becomes a reconnect."""
        if not self.session.out_count or not self.connected:
            return  # nothing, or it stays in the in-flight table for after the reconnect
        try:
            self._flush()
        except OSError as e:
            self._drop(e)

    def _flush(self, deadline=None):
        session = self.session
        count = session.out_count
        stream = self._stream
        if not count or stream is None:
            return
        mem = session.mem
        starts = session.out_start
        lengths = session.out_length
        for i in range(count):
            length = lengths[i]
            n = stream.write(mem, starts[i], length)
            if n != length:  # a part, or nothing (None: it would block)
                n = n or 0
                self._write_all(mem, starts[i] + n, length - n, deadline)
        session.sent(ticks_ms())

    def _write_all(self, buf, offset, length, deadline=None):
        """deadline: a tick, or None for io_timeout_ms from the first block."""
        stream = self._stream
        while length:
            n = stream.write(buf, offset, length)
            if n is None:  # would block: wait for room, within the deadline
                if deadline is None:
                    deadline = ticks_add(ticks_ms(), self.io_timeout_ms)
                left = ticks_diff(deadline, ticks_ms())
                if left <= 0:
                    from mqtt.error_text import write_blocked

                    raise write_blocked(self.io_timeout_ms)
                stream.wait_writable(left)
                continue
            offset += n
            length -= n

    # ---- input ---------------------------------------------------------

    def _read(self, timeout_ms):
        """Wait up to timeout_ms for bytes, read what is there, hand every
        complete packet to the session. Raises OSError on EOF. Called from a
        callback of a read (a poll() there), it reads nothing."""
        if self._receiving:
            return
        session = self.session
        rx = self._rx
        have = self._rx_length
        settling = self._after_connack
        if settling:
            # What came after CONNACK in its read, kept until connect() had
            # returned and on_connect run: handled now, without waiting.
            self._after_connack = False
        elif not self._stream.wait_readable(timeout_ms):
            return
        elif self._drain:
            n = self._read_into_stage(len(self._stage) if self._drain > len(self._stage) else self._drain)
            if n:
                self._drained(n)
                session.heard(ticks_ms())
            return
        elif have == 0:
            n = self._stream.readinto(rx, len(rx))
            if n is None:
                return
            if n == 0:
                from mqtt.error_text import closed_by_broker

                raise closed_by_broker()
            have = n
        else:
            # A partial packet waits at the front. MicroPython's readinto has
            # no offset, and a memoryview slice would allocate, so read into
            # the stage and copy the few bytes over.
            room = len(rx) - have
            n = self._read_into_stage(room if room < len(self._stage) else len(self._stage))
            if not n:
                return
            stage = self._stage
            for i in range(n):
                rx[have + i] = stage[i]
            have += n
        # Part of a packet counts as hearing from the broker too: one busy
        # sending a large packet over a slow link is not silent, and answers
        # a PINGREQ only after it.
        connecting = session.state != CONNECTED
        self._receiving = True
        try:
            consumed = session.receive(rx, 0, have, ticks_ms())
            while consumed < have and session.out_count and session.state == CONNECTED and not connecting:
                # The session stopped for room to queue acks: send them, go on.
                self._flush()
                n = session.receive(rx, consumed, have, ticks_ms())
                if not n:
                    break
                consumed += n
        except BaseException as e:
            self._rx_length = 0  # part walked: the rest is dropped, not walked twice
            self._walk_failed(e)  # mqtt.client_more
            raise
        finally:
            self._receiving = False
        if settling and self.backoff is not None:
            self.backoff.reset()  # what came behind CONNACK was sound: the connect counts
        left = have - consumed
        if left and consumed:
            for i in range(left):
                rx[i] = rx[consumed + i]
        self._rx_length = left
        if connecting and left and session.state == CONNECTED:
            self._after_connack = True  # the session stopped at CONNACK
        if left == len(rx):
            self._check_oversize()

    def _read_into_stage(self, length):
        n = self._stream.readinto(self._stage, length)
        if n == 0:
            from mqtt.error_text import closed_by_broker

            raise closed_by_broker()
        return n or 0

    def _log(self, message):
        if self.on_log is not None:
            self.on_log(self, self.userdata, message)

    # ---- session hooks -------------------------------------------------

    def _deliver(self, buf, packet):
        if self.on_message is not None:
            from mqtt.client_more import deliver

            deliver(self, buf, packet)

    def _acked(self, packet_id):
        if self.on_publish is not None:
            try:
                self.on_publish(self, self.userdata, packet_id)
            except Exception as e:
                self._callback_failed(e)

    def _downgraded(self):
        from mqtt.client_more import log_downgrade

        log_downgrade(self)

    def __getattr__(self, name) -> "Any":
        # The methods in mqtt.client_more: loaded at the first call of one,
        # each put on the class when first asked for.
        from mqtt import client_more

        if name not in client_more.METHODS:
            raise AttributeError(name)
        method = getattr(client_more, name)
        setattr(MQTTClient, name, method)
        return getattr(self, name)


# The exceptions, and Message, for `from mqtt.client import ...`: loaded
# when first asked for (PEP 562's module __getattr__; MicroPython has it too).
def __getattr__(name) -> "Any":
    if name == "Message":
        from mqtt.client_more import Message

        return Message
    # The exceptions (MQTTTimeout, NotConnected, InflightFull, TLSError,
    # ConnectRefused, KeepaliveTimeout): names as string literals would take
    # heap, so whatever else this module lacks is looked up in mqtt.errors.
    if name.startswith("__"):  # CPython's import asks for __path__: not one of ours
        raise AttributeError(name)
    from mqtt import errors

    return getattr(errors, name)
