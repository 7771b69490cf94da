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
