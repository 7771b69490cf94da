# The network half of the runtime shim: socket, select and ssl as they
# differ between CPython and MicroPython. Only the modules that do I/O
# (mqtt.transport, dns, sntp) import it; compat has the rest.

# MicroPython streams have write(buf, off, n) and readinto(buf, n), which
# allocate nothing and return None when a non-blocking socket would block.
# CPython sockets have send / recv_into and raise instead. These helpers
# give both runtimes MicroPython's shape.
import select
import socket

from compat import const
from pem import pem_to_der

_EAGAIN = (11, 35)  # Linux, BSD/macOS
_IPPROTO_TCP = const(6)
_TCP_NODELAY = const(1)

POLLIN = select.POLLIN
POLLOUT = select.POLLOUT

if hasattr(socket.socket, "recv_into"):  # CPython
    import ssl as _ssl

    def socket_write(sock, buf, offset, length):
        try:
            return sock.send(memoryview(buf)[offset : offset + length])
        except (BlockingIOError, _ssl.SSLWantWriteError, _ssl.SSLWantReadError):
            return None

    def socket_readinto(sock, buf, length):
        try:
            return sock.recv_into(buf, length)
        except (BlockingIOError, _ssl.SSLWantReadError, _ssl.SSLWantWriteError):
            return None

    def is_tls_error(error):  # CPython's; boards get the one below  # pyright: ignore[reportRedeclaration]
        # An OpenSSL failure; its first argument is an OpenSSL code, not an errno.
        return isinstance(error, _ssl.SSLError)

    def _load_ca(context, cafile, cadata):
        context.load_verify_locations(cafile=cafile, cadata=cadata)

    def _load_client_certificate(context, certfile, keyfile):
        context.load_cert_chain(certfile, keyfile)

    def tls_wrap(context, sock, server_hostname):  # pyright: ignore[reportRedeclaration]
        """(TLS socket, whether its handshake is done). CPython's socket
        timeout bounds the handshake as a whole: done here."""
        return context.wrap_socket(sock, server_hostname=server_hostname), True

    def poll_ready(poller, sock, timeout_ms):
        # Bytes already decrypted by the TLS layer do not make the socket readable.
        if getattr(sock, "pending", None) and sock.pending():
            return True
        return bool(poller.poll(timeout_ms))

else:  # MicroPython

    def socket_write(sock, buf, offset, length):
        try:
            return sock.write(buf, offset, length)
        except OSError as e:
            if e.errno in _EAGAIN:
                return None
            raise

    def socket_readinto(sock, buf, length):
        try:
            return sock.readinto(buf, length)
        except OSError as e:
            if e.errno in _EAGAIN:
                return None
            raise

    def is_tls_error(error):
        # mbedtls: ValueError for a certificate it rejects, OSError with a
        # negative mbedtls code for a failed handshake.
        if isinstance(error, ValueError):
            return True
        return bool(error.args) and isinstance(error.args[0], int) and error.args[0] < 0

    # MicroPython's mbedtls builds take certificates and keys as DER only:
    # PEM is converted, so a board can ship the same files as the broker.

    def _der_file(path, label=b"CERTIFICATE"):
        with open(path, "rb") as f:
            return pem_to_der(f.read(), label)

    def _load_ca(context, cafile, cadata):
        der = _der_file(cafile) if cafile is not None else pem_to_der(cadata)
        context.load_verify_locations(cadata=der)

    def _load_client_certificate(context, certfile, keyfile):  # pyright: ignore[reportRedeclaration]
        context.load_cert_chain(_der_file(certfile), _der_file(keyfile, b"PRIVATE KEY"))

    def poll_ready(poller, sock, timeout_ms):
        for _ in poller.ipoll(timeout_ms):  # ipoll reuses its tuple: no allocation
            return True
        return False

    def tls_wrap(context, sock, server_hostname):
        """(TLS socket, whether its handshake is done). mbedtls applies a
        blocking socket's timeout to each read of the handshake, so a peer
        that trickles bytes holds it as long as it likes (measured: 28 s for
        a 1.5 s timeout). Deferred on a non-blocking socket, the handshake
        runs inside the first write instead, which polls within a deadline."""
        sock.setblocking(False)
        return context.wrap_socket(sock, server_hostname=server_hostname, do_handshake_on_connect=False), False


_ETIMEDOUT = (110, 116, 60)  # Linux, lwIP (ESP32, RP2040), BSD/macOS


def is_timeout(error):
    """True for a socket timeout on any runtime (CPython raises TimeoutError
    without an errno; MicroPython raises OSError(ETIMEDOUT))."""
    if error.__class__.__name__ == "TimeoutError":
        return True
    return bool(error.args) and error.args[0] in _ETIMEDOUT


def set_nodelay(sock):
    # Nagle would hold a small PUBLISH back until the previous one is acked.
    try:
        sock.setsockopt(_IPPROTO_TCP, _TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass  # a port without the option: still correct, only slower


def tls_context(cafile=None, cadata=None, certfile=None, keyfile=None):
    """A client TLS context that verifies the broker's certificate against
    the given CA and its name against the host connected to; with certfile
    and keyfile (PEM or DER files), it also proves who the client is, for a
    broker that requires client certificates."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.verify_mode = ssl.CERT_REQUIRED
    if cafile is not None or cadata is not None:
        _load_ca(context, cafile, cadata)
    if (certfile is None) != (keyfile is None):
        raise ValueError("a client certificate needs both certfile and keyfile")
    if certfile is not None:
        _load_client_certificate(context, certfile, keyfile)
    return context


