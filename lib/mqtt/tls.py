# TLS for the socket transport (mqtt.transport), and what a failed
# handshake means in words: loaded at the first connect with an
# ssl_context, so that a node without TLS does not hold it.

from compat import const, mem_free
from mqtt.errors import MQTTTimeout, TLSError, is_timeout, with_context
from nettls import is_tls_error, tls_wrap

# The TLS handshake's deadline, as MQTTClient._time_left numbers it.
_NO_TIME_FOR_TLS = const(3)
# mbedtls "allocation failed" codes: SSL, X509, PK, MPI, cipher.
_MBEDTLS_ALLOC_FAILED = (-0x7F00, -0x2880, -0x3F80, -0x0010, -0x6180)
# EPIPE, ECONNRESET: the same numbers on Linux and in lwIP (ESP32, RP2040).
_CLOSED_BY_PEER = (32, 104)


def wrap(client, sock, deadline):
    """(TLS socket, handshake): handshake is None once it is done, or (step,
    free heap) while it is to finish inside the first write."""
    step = "TLS handshake with %s:%d" % (client.host, client.port)
    sock.settimeout(client._time_left(deadline, _NO_TIME_FOR_TLS) / 1000)
    free = mem_free()
    client._log("%s, free heap %d bytes" % (step, free))
    try:
        sock, done = tls_wrap(client.ssl_context, sock, client.server_hostname)
    except (OSError, ValueError, MemoryError) as e:  # mbedtls: ValueError for a rejected certificate
        raise tls_failure(e, step, free)
    return sock, None if done else (step, free)


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
