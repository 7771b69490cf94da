# The client's exceptions, made when one is first raised or asked for
# (`from mqtt.client import MQTTTimeout` still works: mqtt.client hands them
# over), so that a node that never meets one does not hold four classes.


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
