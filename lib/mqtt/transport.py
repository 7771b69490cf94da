# The default transport: a TCP socket, optionally TLS, opened within the
# connect deadline. MQTTClient calls open_socket(client, deadline) unless it
# was given a transport of its own; the stream it returns has the shape the
# client uses on any transport:
#   write(buf, offset, length) -> bytes written, or None when it would block
#   readinto(buf, length)      -> bytes read, 0 at end of stream, None when none wait
#   wait_readable(timeout_ms) / wait_writable(timeout_ms) -> True when ready
#   close()
# and `handshake`: None, or (step, free heap) while a TLS handshake is still
# to finish inside the first write (netcompat.tls_wrap).

import select
import socket

from compat import mem_free
from mqtt.client import MQTTTimeout, TLSError
from netcompat import (
    POLLIN,
    POLLOUT,
    is_timeout,
    is_tls_error,
    poll_ready,
    set_nodelay,
    socket_readinto,
    socket_write,
    tls_wrap,
)

# mbedtls "allocation failed" codes: SSL, X509, PK, MPI, cipher.
_MBEDTLS_ALLOC_FAILED = (-0x7F00, -0x2880, -0x3F80, -0x0010, -0x6180)
# EPIPE, ECONNRESET: the same numbers on Linux and in lwIP (ESP32, RP2040).
_CLOSED_BY_PEER = (32, 104)


class SocketStream:
    def __init__(self, sock, handshake):
        self.sock = sock
        self.handshake = handshake
        sock.setblocking(False)
        self._poller = select.poll()
        self._poller.register(sock, POLLIN)

    def write(self, buf, offset, length):
        return socket_write(self.sock, buf, offset, length)

    def readinto(self, buf, length):
        return socket_readinto(self.sock, buf, length)

    def wait_readable(self, timeout_ms):
        return poll_ready(self._poller, self.sock, timeout_ms)

    def wait_writable(self, timeout_ms):
        self._poller.modify(self.sock, POLLOUT)
        try:
            return poll_ready(self._poller, self.sock, timeout_ms)
        finally:
            self._poller.modify(self.sock, POLLIN)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def open_socket(client, deadline):
    """A SocketStream connected to client.host:client.port (through TLS when
    client.ssl_context is set), within the connect deadline (a tick)."""
    host = client.host
    if client.resolver is not None:
        # At most half the time: a resolver that falls back to the last
        # known address after a silent DNS must leave time to connect.
        host = client.resolver.resolve(host, client._time_left(deadline, "no DNS answer for") // 2)
    # Without a resolver, a name goes to getaddrinfo, which has no deadline
    # on MicroPython (the watchdog is the path back); a literal IP needs no
    # lookup.
    address = socket.getaddrinfo(host, client.port, 0, socket.SOCK_STREAM)[0]
    sock = socket.socket(address[0], address[1], address[2])
    try:
        sock.settimeout(client._time_left(deadline, "no time left to TCP connect to") / 1000)
        try:
            sock.connect(address[-1])
        except OSError as e:
            raise with_context(e, "TCP connect to %s:%d" % (client.host, client.port))
        set_nodelay(sock)
        handshake = None
        if client.ssl_context is not None:
            step = "TLS handshake with %s:%d" % (client.host, client.port)
            sock.settimeout(client._time_left(deadline, "no time left for the TLS handshake with") / 1000)
            free = mem_free()
            client._log("%s, free heap %d bytes" % (step, free))
            try:
                sock, done = tls_wrap(client.ssl_context, sock, client.server_hostname)
            except (OSError, ValueError, MemoryError) as e:  # mbedtls: ValueError for a rejected certificate
                raise tls_failure(e, step, free)
            handshake = None if done else (step, free)
        return SocketStream(sock, handshake)
    except BaseException:
        sock.close()
        raise


def tls_refused_before_connack(client, error):
    """Under TLS 1.3 a broker checks the client's certificate after the
    client's side of the handshake is done: its refusal comes in place of
    the CONNACK. The TLSError to raise for it, or None."""
    if isinstance(error, TLSError) or not is_tls_error(error):
        return None
    return TLSError("TLS with %s:%d failed before CONNACK: %s" % (client.host, client.port, str(error).strip()))


def _tls_memory_advice(step, free):
    return (
        "%s failed: out of memory (%d bytes free before it). RSA certificates take far more memory in the "
        "handshake than ECDSA ones: give the broker an ECDSA certificate and a short CA chain, or connect "
        "before allocating large buffers" % (step, free)
    )


def tls_failure(error, step, free):
    """What to raise for a failed TLS handshake: which step, and why."""
    if isinstance(error, MemoryError) or (error.args and error.args[0] in _MBEDTLS_ALLOC_FAILED):
        return TLSError(_tls_memory_advice(step, free))
    if isinstance(error, MQTTTimeout) or is_timeout(error):
        return MQTTTimeout("%s timed out" % step)
    if is_tls_error(error):
        return TLSError("%s failed: %s" % (step, str(error).strip()))
    if error.args and error.args[0] in _CLOSED_BY_PEER:
        # mbedtls (TLS 1.2) meets a broker's refusal of the client's
        # certificate as a write to a closed socket; the errno stays.
        return TLSError(
            error.args[0],
            "%s failed: the broker closed the connection (errno %d); possibly it requires a client "
            "certificate and got none, or one its CA did not sign" % (step, error.args[0]),
        )
    return with_context(error, step)


def with_context(error, step):
    # Say which step failed; keep the errno, since callers branch on it.
    if isinstance(error, MQTTTimeout):
        return error
    if is_timeout(error):
        return MQTTTimeout("%s timed out" % step)
    errno = error.args[0] if error.args and isinstance(error.args[0], int) else None
    if errno is not None:
        return OSError(errno, "%s failed: %s" % (step, error.args[-1]))
    return OSError("%s failed: %s" % (step, error))
