# One TLS connect and one QoS 1 publish, run unchanged on CPython
# (PYTHONPATH=lib) and on the MicroPython Unix port (MICROPYPATH=lib):
#
#   tls_connect.py HOST PORT CAFILE SERVER_HOSTNAME CLIENT_ID TOPIC [name=value ...]
#
# Options: connect_timeout_ms=5000; cert=PATH key=PATH, a client certificate
# (PEM files, as a board keeps them).
#
# CAFILE ending in .der is read and passed as DER cadata: the Unix port's
# mbedtls rejects a PEM CA (ValueError('invalid cert')), see
# tests/test_client_broker.py. Prints one line and exits 0 / 1:
#
#   RESULT ok packet_id=<id>
#   ERROR class=<exception class> oserror=<1 if an OSError> message=<str(e), one line>
import sys

from mqtt.client import MQTTClient
from netcompat import tls_context


def say(*parts):
    print(*parts)
    flush = getattr(sys.stdout, "flush", None)
    if flush is not None:
        flush()


def context_for(cafile, certfile, keyfile):
    if cafile.endswith(".der"):
        with open(cafile, "rb") as f:
            return tls_context(cadata=f.read(), certfile=certfile, keyfile=keyfile)
    return tls_context(cafile=cafile, certfile=certfile, keyfile=keyfile)


def main():
    if len(sys.argv) < 7:
        say("usage: tls_connect.py HOST PORT CAFILE SERVER_HOSTNAME CLIENT_ID TOPIC [name=value ...]")
        return 2
    host, port, cafile, server_hostname, client_id, topic = sys.argv[1:7]
    options = {"connect_timeout_ms": "5000", "cert": None, "key": None}
    for arg in sys.argv[7:]:
        name, value = arg.split("=", 1)
        options[name] = value
    try:
        context = context_for(cafile, options["cert"], options["key"])
    except Exception as e:  # noqa: BLE001 - the test reads what was raised
        say("ERROR class=%s oserror=0 message=%s" % (e.__class__.__name__, e))
        return 1
    client = MQTTClient(
        client_id,
        host,
        int(port),
        keepalive=10,
        ssl_context=context,
        server_hostname=server_hostname,
        connect_timeout_ms=int(options["connect_timeout_ms"]),
    )
    try:
        client.connect()
        packet_id = client.publish(topic, "tls-ok", 1)
        if not client.wait_for_acks(5000):
            say("ERROR class=Timeout oserror=0 message=no PUBACK within 5000 ms")
            return 1
    except Exception as e:  # noqa: BLE001 - the test reads what was raised
        message = " ".join(str(e).split())
        say(
            "ERROR class=%s oserror=%d message=%s" % (e.__class__.__name__, 1 if isinstance(e, OSError) else 0, message)
        )
        return 1
    finally:
        client.disconnect()
    say("RESULT ok packet_id=%d" % packet_id)
    return 0


sys.exit(main())
