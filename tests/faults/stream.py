# A numbered stream of publishes that also measures the client while the
# link misbehaves; run unchanged on CPython (PYTHONPATH=lib) and on the
# MicroPython Unix port (MICROPYPATH=lib):
#
#   stream.py HOST PORT CLIENT_ID TOPIC QOS [name=value ...]
#
# tests/scripts/qos_stream.py is the plain stream; this one adds what the
# fault tests and the soak need on top: a run bounded by time as well as by
# count, how long each publish() call waited for room in the in-flight
# window, the size of the client's buffers before and after, and heap
# samples (gc.mem_free / gc.mem_alloc after a collection; -1 on CPython).
# Publishes 0, 1, 2, ... (payload: the number as text), retrying a number
# that could not be handed to the client (NotConnected at QoS 0,
# InflightFull at QoS 1/2), then prints one line:
#
#   RESULT {"published": ..., "acked": ..., "publish_wait_max_ms": ..., ...}
#
# Options: count=0 (0: no limit) duration_s=0 (0: no limit; one of the two
#   must be set) interval_ms=0 deadline_s=60 (hard stop, draining included)
#   keepalive=10 inflight_max=16 publish_timeout_ms=10000
#   connect_timeout_ms=2000 reconnect_min_ms=200 reconnect_max_ms=2000
#   retry_ms=10000 clean=0 heap_every_ms=1000 wait_ms=100 (a publish() that
#   took this long or more counts as a wait) events=0
import gc
import json
import sys

from compat import mem_alloc, mem_free, sleep_ms, ticks_add, ticks_diff, ticks_ms
from mqtt.client import InflightFull, MQTTClient, NotConnected

DEFAULTS = {
    "count": 0,
    "duration_s": 0,
    "interval_ms": 0,
    "deadline_s": 60,
    "keepalive": 10,
    "inflight_max": 16,
    "publish_timeout_ms": 10000,
    "connect_timeout_ms": 2000,
    "reconnect_min_ms": 200,
    "reconnect_max_ms": 2000,
    "retry_ms": 10000,
    "clean": 0,
    "heap_every_ms": 1000,
    "wait_ms": 100,
    "events": 0,
}


def say(text):
    print(text)
    flush = getattr(sys.stdout, "flush", None)
    if flush is not None:
        flush()


class Stream:
    def __init__(self, host, port, client_id, topic, qos, options):
        self.o = options
        self.topic = topic
        self.qos = qos
        self.start = ticks_ms()
        self.acked = 0
        self.reasons = {}
        self.inflight_full = 0
        self.not_connected = 0
        self.waits = 0
        self.wait_max = 0
        self.inflight_seen = 0
        self.heap = [None, None, None, None]  # free min, free max, alloc min, alloc max
        self.heap_samples = 0
        client = MQTTClient(
            client_id,
            host,
            port,
            keepalive=options["keepalive"],
            clean_session=options["clean"] == 1,
            inflight_max=options["inflight_max"],
            publish_timeout_ms=options["publish_timeout_ms"],
            connect_timeout_ms=options["connect_timeout_ms"],
            retry_ms=options["retry_ms"],
            reconnect_min_ms=options["reconnect_min_ms"],
            reconnect_max_ms=options["reconnect_max_ms"],
        )
        client.on_connect = self.on_connect
        client.on_disconnect = self.on_disconnect
        client.on_publish = self.on_publish
        self.client = client
        self.mem_len = len(client.session.mem)
        self.rx_len = len(client._rx)
        self.next_sample = self.start
        self.sample_heap()

    def elapsed(self):
        return ticks_diff(ticks_ms(), self.start)

    def on_connect(self, client, userdata, session_present):
        if self.o["events"]:
            say("EVENT connect %d" % self.elapsed())

    def on_disconnect(self, client, userdata, error):
        name = error.__class__.__name__
        self.reasons[name] = self.reasons.get(name, 0) + 1
        if self.o["events"]:
            say("EVENT disconnect %d %s %s" % (self.elapsed(), name, error))

    def on_publish(self, client, userdata, packet_id):
        self.acked += 1

    def sample_heap(self):
        gc.collect()
        values = (mem_free(), mem_free(), mem_alloc(), mem_alloc())
        for i in range(4):
            keep_min = i % 2 == 0
            if self.heap[i] is None or (values[i] < self.heap[i] if keep_min else values[i] > self.heap[i]):
                self.heap[i] = values[i]
        self.heap_samples += 1

    def maybe_sample(self):
        if ticks_diff(ticks_ms(), self.next_sample) >= 0:
            self.next_sample = ticks_add(ticks_ms(), self.o["heap_every_ms"])
            self.sample_heap()

    def poll_until(self, end):
        client = self.client
        while True:
            self.maybe_sample()
            left = ticks_diff(end, ticks_ms())
            if left <= 0:
                return
            if left > 100:
                left = 100
            if client.poll(left) < 0 and not client.connected:
                sleep_ms(left if left < 10 else 10)

    def run(self):
        o = self.o
        client = self.client
        session = client.session
        deadline = ticks_add(self.start, o["deadline_s"] * 1000)
        stop_at = ticks_add(self.start, o["duration_s"] * 1000) if o["duration_s"] else deadline
        count = o["count"]
        client.start_reconnecting()
        while not client.connected and ticks_diff(deadline, ticks_ms()) > 0:
            client.poll(100)
        say("READY %d" % self.elapsed())
        published = 0
        next_at = ticks_ms()
        while (count == 0 or published < count) and ticks_diff(stop_at, ticks_ms()) > 0:
            began = ticks_ms()
            try:
                client.publish(self.topic, "%d" % published, self.qos)
                published += 1
            except NotConnected:
                self.not_connected += 1
                self.poll_until(ticks_add(ticks_ms(), 50))
            except InflightFull:
                self.inflight_full += 1
                self.poll_until(ticks_add(ticks_ms(), 20))
            took = ticks_diff(ticks_ms(), began)
            if took >= o["wait_ms"]:
                self.waits += 1
            if took > self.wait_max:
                self.wait_max = took
            if session.inflight_count() > self.inflight_seen:
                self.inflight_seen = session.inflight_count()
            if o["interval_ms"]:
                next_at = ticks_add(next_at, o["interval_ms"])
                if ticks_diff(ticks_ms(), next_at) > o["interval_ms"]:
                    next_at = ticks_ms()  # after an outage: no burst to catch up
                self.poll_until(next_at)
            else:
                client.poll(0)
                self.maybe_sample()
        while session.inflight_count() and ticks_diff(deadline, ticks_ms()) > 0:
            self.poll_until(ticks_add(ticks_ms(), 100))
        self.sample_heap()
        complete = (count == 0 or published == count) and session.inflight_count() == 0
        self.report(published, complete)
        return 0 if complete else 1

    def report(self, published, complete):
        client = self.client
        session = client.session
        result = {
            "complete": complete,
            "qos": self.qos,
            "published": published,
            "acked": self.acked,
            "inflight": session.inflight_count(),
            "inflight_seen": self.inflight_seen,
            "inflight_max": session.inflight_max,
            "connects": client.connects,
            "reconnects": client.connects - 1 if client.connects else 0,
            "disconnects": client.disconnects,
            "disconnect_reasons": self.reasons,
            "resent": session.resent,
            "pings": session.pings,
            "unknown_acks": session.unknown_acks,
            "inflight_full": self.inflight_full,
            "not_connected": self.not_connected,
            "publish_waits": self.waits,
            "publish_wait_max_ms": self.wait_max,
            "mem_len_before": self.mem_len,
            "mem_len_after": len(session.mem),
            "rx_len_before": self.rx_len,
            "rx_len_after": len(client._rx),
            "heap_free_min": self.heap[0],
            "heap_free_max": self.heap[1],
            "heap_alloc_min": self.heap[2],
            "heap_alloc_max": self.heap[3],
            "heap_samples": self.heap_samples,
            "elapsed_ms": self.elapsed(),
        }
        say("RESULT " + json.dumps(result))


def main(argv):
    if len(argv) < 6:
        say("usage: stream.py HOST PORT CLIENT_ID TOPIC QOS [name=value ...]")
        sys.exit(2)
    options = dict(DEFAULTS)
    for arg in argv[6:]:
        name, _, value = arg.partition("=")
        if name not in options:
            say("unknown option %r" % name)
            sys.exit(2)
        options[name] = int(value)
    if not options["count"] and not options["duration_s"]:
        say("set count= or duration_s=")
        sys.exit(2)
    stream = Stream(argv[1], int(argv[2]), argv[3], argv[4], int(argv[5]), options)
    try:
        code = stream.run()
    finally:
        stream.client.disconnect()
    sys.exit(code)


if __name__ == "__main__":
    main(sys.argv)
