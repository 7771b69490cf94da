# How fast node.store.FlashStore takes readings, and what each one costs in
# flash writes, on the MicroPython Unix port (flush() is an fsync there):
#
#   MICROPYPATH=lib .venv/bin/micropython tools/bench_store.py [DIR]
#   PYTHONPATH=lib .venv/bin/python tools/bench_store.py [DIR]     (for comparison)
#
# For each setting it appends READINGS readings (a full outage that wraps the
# store), then replays and acknowledges them all, and prints:
#   appends/s        append() including the flushes it triggers
#   replays/s        oldest() + sent() + acked(), including marker writes
#   B/reading        bytes handed to write() per reading (data + markers)
#   syncs/reading    flush() calls per reading: what wears a LittleFS block
#   heap B/append    heap allocated per append (0 on CPython, which reports none)
# DIR defaults to /tmp; a bench-store-* directory is made and removed there.
import gc
import os
import sys

from node.store import FlashStore

try:
    from time import ticks_diff, ticks_us
except ImportError:  # CPython
    from time import perf_counter

    def ticks_us():
        return int(perf_counter() * 1000000)

    def ticks_diff(end, start):
        return end - start


try:
    from gc import mem_alloc
except ImportError:

    def mem_alloc():
        return 0


READINGS = 5000
CAPACITY = 2048
CHANNELS = 8

SETTINGS = (
    ("all, flush_every=32 (default)", {"policy": "all", "flush_every": 32}),
    ("all, flush_every=8", {"policy": "all", "flush_every": 8}),
    ("all, flush_every=1 (a sync per reading)", {"policy": "all", "flush_every": 1}),
    ("latest, flush_every=32", {"policy": "latest", "flush_every": 32}),
)


def clear(path):
    try:
        for name in os.listdir(path):
            os.remove(path + "/" + name)
        os.rmdir(path)
    except OSError:
        pass


def bench(path, settings):
    clear(path)
    store = FlashStore(path, capacity=CAPACITY, channels=CHANNELS, **settings)
    start_bytes, start_syncs = store.bytes_written, store.flushes + store.commits

    gc.collect()
    gc.disable()
    heap = mem_alloc()
    t0 = ticks_us()
    for i in range(READINGS):
        store.append(i & 7, i, 0)
    store.flush()
    append_us = ticks_diff(ticks_us(), t0)
    heap = mem_alloc() - heap
    gc.enable()

    held = store.count
    t0 = ticks_us()
    packet_id = 1
    while True:
        seq = store.oldest()
        if seq < 0:
            break
        store.sent(seq, packet_id)
        store.acked(packet_id)
        packet_id = packet_id + 1 if packet_id < 65535 else 1
    store.flush()
    replay_us = ticks_diff(ticks_us(), t0)

    written = store.bytes_written - start_bytes
    syncs = store.flushes + store.commits - start_syncs
    result = (
        READINGS * 1000000 // max(append_us, 1),
        held * 1000000 // max(replay_us, 1),
        written / READINGS,
        syncs / READINGS,
        heap / READINGS,
        held,
        store.dropped,
    )
    store.close()
    clear(path)
    return result


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else "/tmp"
    path = "%s/bench-store-%d" % (base, ticks_us() & 0xFFFFFF)
    print("%d readings into %d slots, %d channels" % (READINGS, CAPACITY, CHANNELS))
    print(
        "%-42s %10s %10s %10s %13s %14s %6s %8s"
        % ("setting", "appends/s", "replays/s", "B/reading", "syncs/reading", "heap B/append", "held", "dropped")
    )
    for name, settings in SETTINGS:
        appends, replays, per_reading, syncs, heap, held, dropped = bench(path, settings)
        print(
            "%-42s %10d %10d %10.2f %13.4f %14.2f %6d %8d"
            % (name, appends, replays, per_reading, syncs, heap, held, dropped)
        )


main()
