# `socket` for the 32-bit runtime (the WebAssembly port has none): just
# enough for umqtt.simple (blocking write/read) and chumicro-mqtt
# (non-blocking send/recv_into, class adapted) to connect and publish to the in-memory
# broker of tests/portable/memory_broker.py, which answers CONNACK and
# PUBACK and allocates nothing itself. Imported before any heap baseline,
# as a board's socket module is built in; prepare() makes the broker, also
# before the baseline.
#
# What a client pays here is what it pays with a board's socket: read(n)
# returns a new n-byte object (a bytearray: on 32 bits the same two heap
# blocks as a board's bytes for n < 16), and recv_into with nothing to read
# raises OSError(EAGAIN), an allocation as on a board.
import errno

AF_INET = 2
SOCK_STREAM = 1
SOL_SOCKET = 1
IPPROTO_TCP = 6
TCP_NODELAY = 1

_broker = [None]


def prepare():
    from memory_broker import MemoryBroker

    _broker[0] = MemoryBroker()


def getaddrinfo(host, port, *args):
    return [(AF_INET, SOCK_STREAM, 0, "", (host, port))]


class socket:
    def __init__(self, *args):
        self._end = None

    def connect(self, address):
        self._end = _broker[0].transport(None, 0)

    def setblocking(self, flag):
        pass

    def settimeout(self, seconds):
        pass

    def setsockopt(self, level, option, value):
        pass

    def write(self, data, length=-1):
        if isinstance(data, str):
            data = data.encode()  # a str's bytes, as a board's socket writes them
        n = len(data) if length < 0 else length
        offset = 0
        while offset < n:
            k = self._end.write(data, offset, n - offset)
            if k is None:
                if not self._end.wait_writable(0):  # the broker takes what it has
                    raise OSError(errno.EIO, "memory broker full")
                continue
            offset += k
        return n

    send = write

    def read(self, n):
        out = bytearray(n)
        self._end.wait_readable(0)  # the broker answers what it was sent
        k = self._end.readinto(out, n)
        if k != n:
            raise OSError(errno.EIO, "memory broker: %r of %d bytes" % (k, n))
        return out

    def close(self):
        self._end.close()


class adapted(socket):
    """What chumicro_sockets' MicroPython adapter hands chumicro-mqtt: send
    and a non-blocking recv_into. (Not on the socket itself: a board's
    socket has no recv_into, and lib/netcompat.py takes one that has it
    for CPython's.)"""

    def recv_into(self, buf, n=0):
        self._end.wait_readable(0)
        k = self._end.readinto(buf, n or len(buf))
        if k is None:
            raise OSError(errno.EAGAIN)
        return k
