# The network half of the runtime shim: socket, select and ssl as they
# differ between CPython and MicroPython. Only the modules that do I/O
# (mqtt.transport, dns, sntp) import it; compat has the rest. What a
# connection without TLS never needs (TLS contexts, wrapping, PEM) is in
# nettls, loaded when first asked for
# (`from netcompat import tls_context` still works: __getattr__ at the
# bottom); CPython's socket helpers are in
# netcompat_cpython, so that a board does not hold their code.

# MicroPython streams have write(buf, off, n) and readinto(buf, n), which
# allocate nothing and return None when a non-blocking socket would block.
# CPython sockets have send / recv_into and raise instead. These helpers
# give both runtimes MicroPython's shape.
import select
import socket
import sys

from compat import const

_EAGAIN = (11, 35)  # Linux, BSD/macOS
_IPPROTO_TCP = const(6)
_TCP_NODELAY = const(1)
# Ports whose socket module lacks the names but takes BSD's numbers: the
# Unix port's. A board's lwIP (the Pico W's) numbers the option otherwise.
_BSD_NUMBERED = ("linux", "darwin")

POLLIN = select.POLLIN
POLLOUT = select.POLLOUT

if hasattr(socket.socket, "recv_into"):  # CPython
    from netcompat_cpython import poll_ready, socket_readinto, socket_write

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

    def poll_ready(poller, sock, timeout_ms):
        for _ in poller.ipoll(timeout_ms):  # ipoll reuses its tuple: no allocation
            return True
        return False


def set_nodelay(sock, platform=sys.platform):
    # Nagle would hold a small PUBLISH back until the previous one is acked.
    # The option's number is the port's own: 1 on the Unix port and ESP32,
    # lwIP's TF_NODELAY (0x40) on a Pico W, whose setsockopt prints a
    # warning for a number it does not know.
    option = getattr(socket, "TCP_NODELAY", None)
    if option is None:
        if platform not in _BSD_NUMBERED:
            return  # firmware without the option: still correct, only slower
        option = _TCP_NODELAY
    try:
        sock.setsockopt(getattr(socket, "IPPROTO_TCP", _IPPROTO_TCP), option, 1)
    except (OSError, AttributeError):
        pass


# tls_context, tls_wrap, is_tls_error: in nettls, loaded when first asked for
# (PEP 562's module __getattr__; MicroPython has it too). Names as string
# literals would take heap: whatever this module lacks is looked up there.
# (is_timeout, asked only once something failed, is in mqtt.errors.)
def __getattr__(name):
    if name.startswith("__"):  # CPython's import asks for __path__: not one of ours
        raise AttributeError(name)
    import nettls

    return getattr(nettls, name)
