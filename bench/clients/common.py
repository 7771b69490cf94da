# What every client's bench script shares on the MicroPython Unix port: the
# workload, the measurements and the one JSON line it prints. The driver
# (tools/bench/unixport.py) starts each script as
#
#   micropython bench/clients/<client>.py '<json config>'
#
# with config {"port", "client_id", "mode": "main" | "qos0", ...} (see
# tools/bench/settings.py). This module is imported before any heap
# baseline, so its own size is not charged to a client.
#
# A client script provides, for common.main_mode(), functions
# run(n, payload) -> publishes done:
#   publish_qos0         n QoS 0 publishes, then whatever sends what is queued
#   publish_qos1         QoS 1 one at a time, each returning once acknowledged,
#                        while common.in_time(started) (a time cap)
#   publish_qos1_window  (optional) QoS 1 with up to common.window[0] in flight,
#                        for each window in cfg["windows"]
import gc
import json
import sys
import time

HOST = "127.0.0.1"
TOPIC = b"house/kitchen/temperature"
# The QoS 0 arrival run sends a payload of its own (20 bytes), so the
# host's subscriber counts only that run's messages.
RATE_PAYLOAD = b"qos0-rate 21.5 deg C"
WARMUP = 10  # publishes before a measurement: first-call caches are not per-publish cost
_TEXT = b"21.5 degrees Celsius "

ticks_ms = time.ticks_ms
ticks_us = time.ticks_us
ticks_diff = time.ticks_diff
time_ns = time.time_ns  # CLOCK_REALTIME, the clock the host's subscriber stamps arrivals with

PAYLOADS = {}  # size -> bytes, made by config() before any baseline


def config():
    cfg = json.loads(sys.argv[1])
    for size in cfg.get("payloads", (20,)):
        PAYLOADS[size] = (_TEXT * (size // len(_TEXT) + 1))[:size]
    return cfg


def heap_now():
    gc.collect()
    return gc.mem_alloc()


# ---- measuring -------------------------------------------------------------
#
# Every figure per publish is taken over N publishes minus a smaller N (a
# fifth), so what a run pays once (a final flush, waiting for the last
# acks, reading the clocks, an event loop entered) cancels out.

_cap_ms = [0]  # how long a run may take; the smaller run gets a fifth
window = [1]  # QoS 1 messages a windowed run may keep in flight


def in_time(started_ms):
    """For a client's QoS 1 loop: False once the run's time cap is spent, so a
    client that stalls (umqtt.simple without TCP_NODELAY waits ~44 ms per
    QoS 1 message) still gives a figure, over fewer messages."""
    return ticks_diff(ticks_ms(), started_ms) < _cap_ms[0]


def cpu_ns():
    """This process's CPU time (user + system) so far, in ns: the first field
    of /proc/self/schedstat (the scheduler's own count, to the nanosecond;
    /proc/self/stat counts 10 ms ticks). Waiting for the network is not in it."""
    with open("/proc/self/schedstat") as f:
        return int(f.read().split()[0])


class Allocation:
    """Heap bytes allocated between start() and stop(), collector off:
    gc.mem_alloc() only grows, so the delta is every byte allocated."""

    def __init__(self):
        self.before = 0  # set here: a first attribute store would allocate inside the window

    def start(self):
        gc.collect()
        gc.disable()
        self.before = gc.mem_alloc()

    def stop(self):
        after = gc.mem_alloc()
        gc.enable()
        return after - self.before


def _nothing(n, payload):
    i = 0
    while i < n:
        i += 1
    return i


def harness_overhead(n=100):
    """Bytes the measuring loop itself allocates (0 expected)."""
    a = Allocation()
    a.start()
    _nothing(n, None)
    return a.stop()


def allocation(run, n, payload, cap_ms):
    """Heap bytes per publish of run(n, payload) -> publishes done: over n
    minus over n // 5, after a warm-up. "total" is every byte of the n run
    (0 for a client that allocates nothing, first calls included)."""
    _cap_ms[0] = cap_ms
    run(WARMUP, payload)
    a = Allocation()
    _cap_ms[0] = cap_ms // 5
    a.start()
    small = run(n // 5, payload)
    small_bytes = a.stop()
    _cap_ms[0] = cap_ms
    a.start()
    big = run(n, payload)
    big_bytes = a.stop()
    if big <= small:
        raise OSError("too few publishes for a heap figure: %d vs %d" % (big, small))
    return {"per": (big_bytes - small_bytes) / (big - small), "total": big_bytes, "count": big}


def cpu_per_publish(run, n, payload, cap_ms):
    """CPU ns per publish of run(n, payload) -> publishes done, over n minus
    over n // 5 (with the collector on: collecting is part of what
    allocating costs), and the wall-clock msg/s of the n run."""
    _cap_ms[0] = cap_ms // 5
    c0 = cpu_ns()
    small = run(n // 5, payload)
    c1 = cpu_ns()
    _cap_ms[0] = cap_ms
    t0 = ticks_us()
    big = run(n, payload)
    wall_us = ticks_diff(ticks_us(), t0)
    c2 = cpu_ns()
    if big <= small:
        raise OSError("too few publishes for a CPU figure: %d vs %d" % (big, small))
    return {"cpu_ns": ((c2 - c1) - (c1 - c0)) / (big - small), "rate": big * 1000000 / max(1, wall_us), "count": big}


def import_and_connect(load, connect, disconnect=None):
    """Heap in use after importing a client and connecting it, against a
    warm qstr pool. The first import interns every name the modules use,
    and the pool only grows: that first (cold) figure mixes pool growth
    with the code and objects. So: import (and connect, if disconnect is
    given: a client may load more modules when it connects) once, forget
    the modules and the client, then import and connect again and count
    from there. Returns (client class, connected client, figures)."""
    before = list(sys.modules)
    base = heap_now()
    cls = load()
    cold_import = heap_now() - base
    if disconnect is not None:
        disconnect(connect(cls))
    cls = None
    for name in [name for name in sys.modules if name not in before]:
        del sys.modules[name]
    base = heap_now()
    cls = load()
    heap_import = heap_now() - base
    client = connect(cls)
    heap_connect = heap_now() - base
    figures = {
        "heap_import": heap_import,
        "heap_connect": heap_connect,
        "heap_import_cold": cold_import,
        "modules": [name for name in sys.modules if name not in before],
    }
    return cls, client, figures


# ---- the runs --------------------------------------------------------------


def main_mode(cfg, result, publish_qos0, publish_qos1, publish_qos1_window=None):
    """Every figure but the QoS 0 arrival rate, into result. Each publish
    function is run(n, payload) -> publishes done."""
    result["harness_alloc"] = harness_overhead()
    cap = cfg["cap_ms"]
    for size in cfg["payloads"]:
        payload = PAYLOADS[size]
        result["alloc_qos0_%d" % size] = allocation(publish_qos0, cfg["alloc_count"], payload, cap)
        result["alloc_qos1_%d" % size] = allocation(publish_qos1, cfg["alloc_count"], payload, cap)
        result["qos0_%d" % size] = cpu_per_publish(publish_qos0, cfg["qos0_count"], payload, cap)
        result["qos1_%d" % size] = cpu_per_publish(publish_qos1, cfg["qos1_count"], payload, cap)
    if publish_qos1_window is not None:
        payload = PAYLOADS[cfg["payloads"][0]]
        for size in cfg["windows"]:
            window[0] = size
            result["alloc_qos1_window%d" % size] = allocation(publish_qos1_window, cfg["alloc_count"], payload, cap)
            result["qos1_window%d" % size] = cpu_per_publish(publish_qos1_window, cfg["qos1_count"], payload, cap)
    return result


def qos0_mode(cfg, publish_qos0):
    """cfg["count"] QoS 0 publishes of RATE_PAYLOAD, timed on the
    publisher's side; the host's subscriber times their arrival."""
    count = cfg["count"]
    t_start = time_ns()
    t0 = ticks_us()
    publish_qos0(count, RATE_PAYLOAD)
    return {"t_start_ns": t_start, "publish_us": ticks_diff(ticks_us(), t0), "count": count}


def emit(result):
    # The driver reads the last line that starts with '{'.
    print(json.dumps(result))
