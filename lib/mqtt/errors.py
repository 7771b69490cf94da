# The client's exceptions, made when one is first raised or asked for
# (`from mqtt.client import MQTTTimeout`, `from mqtt.packet import
# ProtocolError` and `from mqtt.session import ConnectRefused` still work:
# those modules hand them over), so that a node that never meets one does
# not hold seven classes. No network module here: the sans-I/O layers
# raise these too.


class ProtocolError(Exception):
    """The peer sent something 3.1.1 does not allow: drop the connection."""


class ConnectRefused(Exception):
    """The broker answered CONNECT with a non-zero CONNACK return code."""

    def __init__(self, return_code, reason):
        super().__init__("broker refused the connection: %s (CONNACK code %d)" % (reason, return_code))
        self.return_code = return_code
        self.reason = reason


class KeepaliveTimeout(Exception):
    """Nothing arrived from the broker within 1.5 x keepalive: the link is dead."""


class MQTTTimeout(OSError):
    """A step with a deadline (connect, CONNACK, a write) did not finish in time."""


class NotConnected(OSError):
    """A QoS 0 publish, subscribe or unsubscribe while the link is down."""


class InflightFull(OSError):
    """The in-flight table stayed full for the whole publish timeout."""


class TLSError(OSError):
    """The TLS handshake failed: the broker's certificate did not verify
    (untrusted CA, wrong name), the broker refused the client's certificate
    (or its lack of one), or the two ends agreed on nothing."""


def is_link_failure(error):
    """An error that ends the link (poll() drops it and reconnects): any
    OSError, a packet 3.1.1 does not allow, a silent broker."""
    return isinstance(error, (OSError, ProtocolError, KeepaliveTimeout))


_ETIMEDOUT = (110, 116, 60)  # Linux, lwIP (ESP32, RP2040), BSD/macOS


def is_timeout(error):
    """True for a socket timeout on any runtime (CPython raises TimeoutError
    without an errno; MicroPython raises OSError(ETIMEDOUT)). Here, with
    the errors, since only a failure asks."""
    if error.__class__.__name__ == "TimeoutError":
        return True
    return bool(error.args) and error.args[0] in _ETIMEDOUT


def with_context(error, step):
    """The OSError to raise for `error` in `step` (a TCP connect, a TLS
    handshake): which step failed, with its errno, since callers branch on
    it; a timeout is an MQTTTimeout."""
    if isinstance(error, MQTTTimeout):
        return error
    if is_timeout(error):
        return MQTTTimeout("%s timed out" % step)
    errno = error.args[0] if error.args and isinstance(error.args[0], int) else None
    if errno is not None:
        return OSError(errno, "%s failed: %s" % (step, error.args[-1]))
    return OSError("%s failed: %s" % (step, error))
