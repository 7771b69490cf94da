# The client's exceptions, made when one is first raised or asked for
# (`from mqtt.client import MQTTTimeout`, `from mqtt.packet import
# ProtocolError` and `from mqtt.session import ConnectRefused` still work:
# those modules hand them over), so that a node that never meets one does
# not hold seven classes.


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
