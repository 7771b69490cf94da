# The network half of the runtime shim (lib/netcompat.py).
from netcompat import tls_context

NEEDS_NETWORK = True  # a broker or sockets: not on the 32-bit runtime


def test_a_client_certificate_needs_its_key():
    try:
        tls_context(certfile="/node.pem")
    except ValueError as e:
        assert "both certfile and keyfile" in str(e), str(e)
    else:
        raise AssertionError("a certificate without its key was taken")


# ---- TCP_NODELAY, numbered as each port numbers it ---------------------------


class _Socket:
    def __init__(self):
        self.options = []

    def setsockopt(self, level, option, value):
        self.options.append((level, option, value))


class _SocketModule:
    """A port's socket module, with or without the option's names."""

    def __init__(self, **names):
        for name, value in names.items():
            setattr(self, name, value)


def _nodelay(module, platform):
    import netcompat

    saved = netcompat.socket
    netcompat.socket = module
    try:
        sock = _Socket()
        netcompat.set_nodelay(sock, platform)
        return sock.options
    finally:
        netcompat.socket = saved


def test_nodelay_takes_the_ports_own_number():
    # A Pico W's lwIP: TCP_NODELAY is TF_NODELAY (0x40); 1 would only print
    # "lwip.setsockopt() not implemented" and leave Nagle on.
    assert _nodelay(_SocketModule(IPPROTO_TCP=6, TCP_NODELAY=0x40), "rp2") == [(6, 0x40, 1)]


def test_nodelay_is_left_alone_on_firmware_without_it():
    assert _nodelay(_SocketModule(), "rp2") == []
    assert _nodelay(_SocketModule(), "esp32") == []


def test_nodelay_on_the_unix_port_uses_bsd_numbers():
    # Its socket module names neither, and takes Linux's numbers.
    assert _nodelay(_SocketModule(), "linux") == [(6, 1, 1)]
