# A numbered stream of publishes through outages, run unchanged on CPython
# (PYTHONPATH=lib) and on the MicroPython Unix port (MICROPYPATH=lib):
#
#   qos_stream.py HOST PORT CLIENT_ID TOPIC QOS COUNT [name=value ...]
#
# Publishes the numbers 0..COUNT-1 (payload: the number as text) on TOPIC at
# QOS with a persistent session, polling between publishes and reconnecting
# with backoff whenever the link drops. A number that could not be handed to
# the client (NotConnected at QoS 0, InflightFull at QoS 1/2) is retried, so
# every number is published exactly once by this script. Stops when all are
# published and acknowledged, or at the deadline, then prints one line:
#
#   RESULT {"published": ..., "acked": ..., "reconnects": ..., ...}
#
# Options (name=value, all optional):
#   keepalive=10            keepalive in s
#   interval_ms=0           poll timeout between two publishes (paces the stream)
#   deadline_s=60           give up after this long (RESULT says "complete": false)
#   inflight_max=16 publish_timeout_ms=1000 connect_timeout_ms=2000
#   reconnect_min_ms=200 reconnect_max_ms=2000 retry_ms=10000
#   clean=0                 clean_session (default: a persistent session)
#   events=0                1: print "EVENT connect|disconnect <ms since start> ..." lines
#   will_topic= will_payload=offline will_qos=1   a last will
#   linger_ms=0             keep polling this long after the stream (a node that
#                           stays online: with COUNT 0, "connect, READY, idle")
#   cafile= server_hostname=  TLS (a .der file is passed as DER cadata: the
#                           Unix port's mbedtls parses no PEM)
#   payload_size=0          N: the number zero-padded to N digits (still a number)
#   max_packet= tx_size= io_timeout_ms=   the client's options (empty: its defaults)
#   sndbuf=0                N: SO_SNDBUF of the socket after each connect, as
#                           small as a board's lwIP send buffer (0: the kernel's,
#                           which on Linux loopback grows to MBs)
#
# "READY <ms since start>" is printed after the first CONNACK.
import socket
import sys

from compat import sleep_ms, ticks_add, ticks_diff, ticks_ms
from mqtt.client import InflightFull, MQTTClient, NotConnected

DEFAULTS = {
    "keepalive": "10",
    "interval_ms": "0",
    "deadline_s": "60",
    "inflight_max": "16",
    "publish_timeout_ms": "1000",
    "connect_timeout_ms": "2000",
    "reconnect_min_ms": "200",
    "reconnect_max_ms": "2000",
    "retry_ms": "10000",
    "clean": "0",
    "events": "0",
    "will_topic": "",
    "will_payload": "offline",
    "will_qos": "1",
    "linger_ms": "0",
    "cafile": "",
    "server_hostname": "",
    "payload_size": "0",
    "max_packet": "",
    "tx_size": "",
    "io_timeout_ms": "",
    "sndbuf": "0",
}
_SO_SNDBUF = 7  # Linux; the Unix port's socket module does not name it
_CLIENT_OPTIONS = ("max_packet", "tx_size", "io_timeout_ms")


def say(*parts):
    print(*parts)
    flush = getattr(sys.stdout, "flush", None)
    if flush is not None:
        flush()


def parse(argv):
    if len(argv) < 7:
        say("usage: qos_stream.py HOST PORT CLIENT_ID TOPIC QOS COUNT [name=value ...]")
        sys.exit(2)
    options = dict(DEFAULTS)
    for arg in argv[7:]:
        name, _, value = arg.partition("=")
        if name not in options:
            say("unknown option %r; known: %s" % (name, " ".join(sorted(options))))
            sys.exit(2)
        options[name] = value
    options["host"] = argv[1]
    options["port"] = int(argv[2])
    options["client_id"] = argv[3]
    options["topic"] = argv[4]
    options["qos"] = int(argv[5])
    options["count"] = int(argv[6])
    return options


def tls_context(cafile):
    from netcompat import tls_context as make

    if cafile.endswith(".der"):
        with open(cafile, "rb") as f:
            return make(cadata=f.read())
    return make(cafile=cafile)


class Stream:
    def __init__(self, options):
        self.options = options
        self.start = ticks_ms()
        self.events = options["events"] == "1"
        self.acked = 0
        self.disconnect_reasons = {}
        context = tls_context(options["cafile"]) if options["cafile"] else None
        extra = {}
        for name in _CLIENT_OPTIONS:
            if options[name]:
                extra[name] = int(options[name])
        client = MQTTClient(
            options["client_id"],
            options["host"],
            options["port"],
            keepalive=int(options["keepalive"]),
            clean_session=options["clean"] == "1",
            ssl_context=context,
            server_hostname=options["server_hostname"] or None,
            inflight_max=int(options["inflight_max"]),
            publish_timeout_ms=int(options["publish_timeout_ms"]),
            connect_timeout_ms=int(options["connect_timeout_ms"]),
            retry_ms=int(options["retry_ms"]),
            reconnect_min_ms=int(options["reconnect_min_ms"]),
            reconnect_max_ms=int(options["reconnect_max_ms"]),
            **extra,
        )
        if options["will_topic"]:
            client.will_set(options["will_topic"], options["will_payload"], int(options["will_qos"]), False)
        client.on_connect = self.on_connect
        client.on_disconnect = self.on_disconnect
        client.on_publish = self.on_publish
        self.client = client

    def elapsed(self):
        return ticks_diff(ticks_ms(), self.start)

    def on_connect(self, client, userdata, session_present):
        sndbuf = int(self.options["sndbuf"])
        if sndbuf:
            # The client has no socket options: reach its plain socket.
            client._stream.sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_SNDBUF", _SO_SNDBUF), sndbuf)
        if self.events:
            say("EVENT connect %d session_present=%d" % (self.elapsed(), 1 if session_present else 0))

    def on_disconnect(self, client, userdata, error):
        name = error.__class__.__name__ if error is not None else "None"
        self.disconnect_reasons[name] = self.disconnect_reasons.get(name, 0) + 1
        if self.events:
            say("EVENT disconnect %d %s %s" % (self.elapsed(), name, error))

    def on_publish(self, client, userdata, packet_id):
        self.acked += 1

    def run(self):
        options = self.options
        client = self.client
        deadline = ticks_add(self.start, int(options["deadline_s"]) * 1000)
        interval_ms = int(options["interval_ms"])
        topic, qos, count = options["topic"], options["qos"], options["count"]
        payload_size = int(options["payload_size"])
        client.start_reconnecting()
        while not client.connected and ticks_diff(deadline, ticks_ms()) > 0:
            client.poll(100)
        if not client.connected:
            return self.result(0, False)
        say("READY %d" % self.elapsed())
        published = 0
        retries = 0
        next_at = ticks_ms()
        while published < count and ticks_diff(deadline, ticks_ms()) > 0:
            try:
                client.publish(topic, "%0*d" % (payload_size, published), qos)
                published += 1
            except (NotConnected, InflightFull):
                # Not handed over: the same number again after polling.
                retries += 1
                self.poll_until(ticks_add(ticks_ms(), 50))
            if interval_ms:
                # One publish per interval; after an outage, no burst to catch up.
                next_at = ticks_add(next_at, interval_ms)
                if ticks_diff(ticks_ms(), next_at) > interval_ms:
                    next_at = ticks_ms()
                self.poll_until(next_at)
            else:
                client.poll(0)
        while client.session.inflight_count() and ticks_diff(deadline, ticks_ms()) > 0:
            self.poll_until(ticks_add(ticks_ms(), 100))
        linger_end = ticks_add(ticks_ms(), int(options["linger_ms"]))
        if ticks_diff(deadline, linger_end) < 0:
            linger_end = deadline
        self.poll_until(linger_end)
        complete = published == count and client.session.inflight_count() == 0
        return self.result(published, complete, retries)

    def poll_until(self, end):
        # poll() returns early when a packet arrives: keep polling to the tick.
        client = self.client
        while True:
            left = ticks_diff(end, ticks_ms())
            if left <= 0:
                return
            if client.poll(left) < 0 and not client.connected:
                sleep_ms(left if left < 10 else 10)  # no reconnect scheduled: nothing to wait on

    def result(self, published, complete, retries=0):
        client = self.client
        session = client.session
        fields = (
            ("complete", "true" if complete else "false"),
            ("published", published),
            ("acked", self.acked),
            ("inflight", session.inflight_count()),
            ("reconnects", client.connects - 1 if client.connects else 0),
            ("connects", client.connects),
            ("disconnects", client.disconnects),
            ("resent", session.resent),
            ("retries", retries),
            ("pings", session.pings),
            ("elapsed_ms", self.elapsed()),
        )
        # Built by hand: the same bytes on both runtimes, no json needed on a board.
        text = ", ".join('"%s": %s' % (name, value) for name, value in fields)
        reasons = ", ".join('"%s": %d' % (name, n) for name, n in sorted(self.disconnect_reasons.items()))
        say('RESULT {%s, "disconnect_reasons": {%s}}' % (text, reasons))
        return 0 if complete else 1


def main():
    stream = Stream(parse(sys.argv))
    try:
        code = stream.run()
    finally:
        stream.client.disconnect()
    sys.exit(code)


main()
