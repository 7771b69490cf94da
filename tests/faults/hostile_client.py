# The client side of the hostile-broker tests, run unchanged in-process on
# CPython (import it, call run()) and as a script on the MicroPython Unix
# port (MICROPYPATH=lib):
#
#   hostile_client.py HOST PORT [name=value ...]
#
# Connects (reconnecting with backoff, as a node does), optionally publishes
# QoS 1 messages, polls until what the scenario should lead to has happened
# (a disconnect then a reconnect; or N messages received; then linger_ms
# more), then checks that the link still works with one QoS 1 publish, and
# prints one line:
#
#   RESULT {"connects": ..., "errors": [[class, message], ...], ...}
#
# Options: client_id=hostile keepalive=10 publish_first=0 expect_drop=1
#   receive=0 linger_ms=200 deadline_ms=10000 rx_size=512 tx_size=512
import gc
import json
import sys

from compat import mem_alloc, ticks_add, ticks_diff, ticks_ms
from mqtt.client import MQTTClient

DEFAULTS = {
    "client_id": "hostile",
    "keepalive": 10,
    "publish_first": 0,
    "expect_drop": 1,
    "receive": 0,
    "linger_ms": 200,
    "deadline_ms": 10000,
    "rx_size": 512,
    "tx_size": 512,
}
_FINAL_ACK_MS = 3000


class Observer:
    """Callbacks that record what the client reports."""

    def __init__(self):
        self.errors = []
        self.received = 0
        self.in_order = True
        self.topics = []
        self.acked = []

    def on_disconnect(self, client, userdata, error):
        self.errors.append([error.__class__.__name__, str(error)])

    def on_message(self, client, userdata, message):
        # Flood payloads are 0, 1, 2, ... in order; anything else is just counted.
        if message.payload != b"%d" % self.received:
            self.in_order = False
        self.received += 1
        if len(self.topics) < 4 and message.topic not in self.topics:
            self.topics.append(message.topic)

    def on_publish(self, client, userdata, packet_id):
        self.acked.append(packet_id)


def _heap():
    gc.collect()
    return mem_alloc()


# What the client loads at its first use (the decoder at the first packet it
# does not read itself, the seldom-used methods, the exceptions and their
# words): loaded
# before the baseline, so that the heap figures are what the hostile packets
# cost, not code loaded once.
LOADED_ON_FIRST_USE = ("mqtt.packet_more", "mqtt.client_more", "mqtt.session_more", "mqtt.errors", "mqtt.error_text")


def run(host, port, options=None):
    opts = dict(DEFAULTS)
    opts.update(options or {})
    observer = Observer()
    client = MQTTClient(
        opts["client_id"],
        host,
        port,
        keepalive=opts["keepalive"],
        rx_size=opts["rx_size"],
        tx_size=opts["tx_size"],
        connect_timeout_ms=2000,
        reconnect_min_ms=50,
        reconnect_max_ms=200,
    )
    client.on_disconnect = observer.on_disconnect
    client.on_message = observer.on_message
    client.on_publish = observer.on_publish
    session = client.session
    mem_len = len(session.mem)
    rx_len = len(client._rx)
    for name in LOADED_ON_FIRST_USE:
        __import__(name)
    heap_before = _heap()
    heap_max = heap_before
    crash = None
    start = ticks_ms()
    deadline = ticks_add(start, opts["deadline_ms"])
    published_first = False
    done_at = None
    client.start_reconnecting()
    try:
        while ticks_diff(deadline, ticks_ms()) > 0:
            client.poll(20)
            heap = mem_alloc()
            if heap > heap_max:
                heap_max = heap
            if client.connected and not published_first:
                published_first = True
                for i in range(opts["publish_first"]):
                    client.publish("house/test/first", "%d" % i, 1)
            if done_at is None and _done(client, observer, opts):
                done_at = ticks_ms()
            if done_at is not None and ticks_diff(ticks_ms(), done_at) >= opts["linger_ms"]:
                break
    except Exception as e:  # noqa: BLE001 - a crash is what this reports
        crash = [e.__class__.__name__, str(e)]
    final_acked = False
    if crash is None and client.connected:
        try:
            client.publish("house/test/final", "final", 1)
            final_acked = client.wait_for_acks(_FINAL_ACK_MS)
        except Exception as e:  # noqa: BLE001
            crash = [e.__class__.__name__, str(e)]
    heap_after = _heap()
    last_error = client.last_error
    result = {
        "done": done_at is not None,
        "crash": crash,
        "connects": client.connects,
        "disconnects": client.disconnects,
        "errors": observer.errors,
        "last_error": None if last_error is None else [last_error.__class__.__name__, str(last_error)],
        "unknown_acks": session.unknown_acks,
        "oversize_dropped": client.oversize_dropped,
        "duplicates_dropped": session.duplicates_dropped,
        "received": observer.received,
        "in_order": observer.in_order,
        "topics": observer.topics,
        "acked": len(observer.acked),
        "final_acked": final_acked,
        "mem_len_before": mem_len,
        "mem_len_after": len(session.mem),
        "rx_len_before": rx_len,
        "rx_len_after": len(client._rx),
        "heap_before": heap_before,
        "heap_max": heap_max,
        "heap_after": heap_after,
        "elapsed_ms": ticks_diff(ticks_ms(), start),
        "disconnect_error": None,
    }
    try:
        client.disconnect()
    except Exception as e:  # noqa: BLE001 - after a crash the session may be wedged: report it
        result["disconnect_error"] = [e.__class__.__name__, str(e)]
    return result


def _done(client, observer, opts):
    if client.session.inflight_count():
        return False
    if observer.received < opts["receive"]:
        return False
    if opts["expect_drop"]:
        return len(observer.errors) > 0 and client.connected
    return client.connected


def main(argv):
    options = {}
    for arg in argv[3:]:
        name, _, value = arg.partition("=")
        if name not in DEFAULTS:
            print("unknown option %r" % name)
            sys.exit(2)
        options[name] = value if name == "client_id" else int(value)
    result = run(argv[1], int(argv[2]), options)
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main(sys.argv)
