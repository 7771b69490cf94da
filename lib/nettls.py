# TLS as it differs between CPython and MicroPython: contexts, wrapping a
# socket, telling a TLS failure from others. Loaded with the first TLS
# context or connection (reached as netcompat.tls_context too), so that a
# node without TLS does not hold it.
import socket

from pem import pem_to_der

if hasattr(socket.socket, "recv_into"):  # CPython
    import ssl as _ssl

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

else:  # MicroPython

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

    def tls_wrap(context, sock, server_hostname):
        """(TLS socket, whether its handshake is done). mbedtls applies a
        blocking socket's timeout to each read of the handshake, so a peer
        that trickles bytes holds it as long as it likes (measured: 28 s for
        a 1.5 s timeout). Deferred on a non-blocking socket, the handshake
        runs inside the first write instead, which polls within a deadline."""
        sock.setblocking(False)
        return context.wrap_socket(sock, server_hostname=server_hostname, do_handshake_on_connect=False), False


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
