# The default transport: a TCP socket, optionally TLS (mqtt.tls, loaded at
# the first connect with an ssl_context), opened within the connect
# deadline. MQTTClient calls open_socket(client, deadline) unless it was
# given a transport of its own; the stream it returns has the shape the
# client uses on any transport:
#   write(buf, offset, length) -> bytes written, or None when it would block
#   readinto(buf, length)      -> bytes read, 0 at end of stream, None when none wait
#   wait_readable(timeout_ms) / wait_writable(timeout_ms) -> True when ready
#   close()
# and `handshake`: None, or (step, free heap) while a TLS handshake is still
# to finish inside the first write (netcompat.tls_wrap).

import select
import socket

from compat import const
from netcompat import POLLIN, POLLOUT, poll_ready, set_nodelay, socket_readinto, socket_write

# What a deadline within the connect is for, by number (MQTTClient._time_left;
# mqtt.errors says it in words).
_NO_DNS_ANSWER = const(1)
_NO_TIME_TO_CONNECT = const(2)


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
        host = client.resolver.resolve(host, client._time_left(deadline, _NO_DNS_ANSWER) // 2)
    # Without a resolver, a name goes to getaddrinfo, which has no deadline
    # on MicroPython (the watchdog is the path back); a literal IP needs no
    # lookup.
    address = socket.getaddrinfo(host, client.port, 0, socket.SOCK_STREAM)[0]
    sock = socket.socket(address[0], address[1], address[2])
    try:
        sock.settimeout(client._time_left(deadline, _NO_TIME_TO_CONNECT) / 1000)
        try:
            sock.connect(address[-1])
        except OSError as e:
            from mqtt.error_text import tcp_connect_failed

            raise tcp_connect_failed(e, client)
        if client.nodelay:
            set_nodelay(sock)
        handshake = None
        if client.ssl_context is not None:
            from mqtt.tls import wrap

            sock, handshake = wrap(client, sock, deadline)
        return SocketStream(sock, handshake)
    except BaseException:
        sock.close()
        raise
