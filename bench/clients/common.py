# What every client's bench script shares: the workload, the measurements,
# and the one JSON line it prints. Runs on the MicroPython Unix port; each
# script is started by tools/bench.py as
#
#   micropython bench/clients/<client>.py '<json config>'
#
# with config {"port", "client_id", "mode": "main" | "qos0", ...} (see
# tools/bench.py). This module is imported before the heap baseline, so its
# own size is not charged to any client.
import gc
import json
import sys
import time

HOST = "127.0.0.1"
TOPIC = b"house/kitchen/temperature"
# 20-byte payloads, as DESIGN.md's figures. The QoS 0 rate run sends a
# payload of its own, so the subscriber counts only that run's messages.
PAYLOAD = b"21.5 degrees Celsius"
RATE_PAYLOAD = b"qos0-rate 21.5 deg C"
WARMUP = 10  # publishes before an allocation count: first-call caches are not per-publish cost

ticks_ms = time.ticks_ms
ticks_us = time.ticks_us
ticks_diff = time.ticks_diff
time_ns = time.time_ns  # CLOCK_REALTIME, the clock the host's subscriber stamps arrivals with


def config():
    return json.loads(sys.argv[1])


def heap_now():
    gc.collect()
    return gc.mem_alloc()


def module_names():
    return list(sys.modules)


def new_modules(before):
    return [name for name in sys.modules if name not in before]


class Allocation:
    """Heap bytes allocated between start() and stop(), collector off:
    gc.mem_alloc() only grows, so the delta is every byte allocated."""

    def __init__(self):
        self.before = 0  # set here: a first attribute store would allocate inside the window

    def start(self):
        gc.collect()
        gc.disable()
        self.before = gc.mem_alloc()

    def stop(self, calls):
        after = gc.mem_alloc()
        gc.enable()
        return (after - self.before) / calls


def _nothing(n):
    i = 0
    while i < n:
        i += 1


def harness_overhead(n=100):
    """Bytes the measuring itself allocates per call (0 expected)."""
    a = Allocation()
    a.start()
    _nothing(n)
    return a.stop(n)


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def emit(result):
    # The driver reads the last line that starts with '{'.
    print(json.dumps(result))


def allocation(fn, n):
    """Heap bytes per call of fn(1) over n calls, after a warm-up."""
    fn(WARMUP)
    a = Allocation()
    a.start()
    fn(n)
    return a.stop(n)


def sequential_qos1(result, publish_qos1, cfg):
    """One QoS 1 publish at a time (fn(1) returns once it is acknowledged):
    its median latency, then the rate over qos1_count, each capped at cap_ms."""
    samples = []
    started = ticks_ms()
    while len(samples) < cfg["latency_count"] and ticks_diff(ticks_ms(), started) < cfg["cap_ms"]:
        t0 = ticks_us()
        publish_qos1(1)
        samples.append(ticks_diff(ticks_us(), t0))
    result["latency_us"] = median(samples)
    result["latency_samples"] = len(samples)
    count = 0
    t0 = ticks_ms()
    while count < cfg["qos1_count"] and ticks_diff(ticks_ms(), t0) < cfg["cap_ms"]:
        publish_qos1(1)
        count += 1
    result["qos1_ms"] = ticks_diff(ticks_ms(), t0)
    result["qos1_count"] = count
