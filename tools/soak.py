"""`make soak`: a bounded, randomized run of three client streams (QoS 0, 1
and 2) on the MicroPython Unix port, through the fault proxy, against a
private mosquitto, while the proxy cuts the link, black-holes it and delays
it at random (seeded, so a run can be repeated).

    .venv/bin/python tools/soak.py [--duration 600] [--seed N] [--interval-ms 20]
                                   [--heap 100K] [--runtime micropython|cpython]

A paho subscriber connected straight to mosquitto (persistent session, QoS 2)
is the witness. At the end it prints, per QoS, messages sent / arrived /
duplicated / lost, reconnects and why, the slowest publish() call, and the
client's heap (gc.mem_free / gc.mem_alloc after a collection, sampled every
second; -1 on CPython); and what the proxy did. Exit status 0 when QoS 1 and
QoS 2 lost nothing, QoS 2 duplicated nothing, and every stream finished.

Not part of `make test`: it lives in tools/, which pytest does not collect.
"""

import argparse
import os
import random
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (os.path.join(ROOT, "lib"), os.path.join(ROOT, "tests"), ROOT):
    if path not in sys.path:
        sys.path.insert(0, path)

from faults.proxy import FaultProxy  # noqa: E402
from faults.support import Script, Subscriber, tally  # noqa: E402
from tools.mosquitto import Mosquitto  # noqa: E402

STREAM = os.path.join("tests", "faults", "stream.py")
KEEPALIVE_S = 3
DRAIN_S = 90  # after the chaos: time for every stream to finish its in-flight messages
SETTLE_S = 20  # then at most this long for the last messages to reach paho


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=600, help="seconds of chaos (default 600)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock, printed)")
    parser.add_argument("--interval-ms", type=int, default=20, help="ms between two publishes of a stream")
    parser.add_argument("--heap", default="100K", help="Unix port heap size (a board's free RAM); '' for default")
    parser.add_argument("--runtime", default="micropython", choices=("micropython", "cpython"))
    return parser.parse_args(argv)


class Chaos:
    """Picks the next fault at random and applies it to the proxy; counts
    what it did."""

    def __init__(self, proxy, rng, log):
        self.proxy = proxy
        self.rng = rng
        self.log = log
        self.counts = {"cut": 0, "black_hole": 0, "delay": 0, "quiet": 0}
        self.black_hole_s = 0.0
        self.delay_until = None

    def step(self, now, left_s):
        """Apply one fault; returns how long to wait before the next."""
        if self.delay_until is not None and now >= self.delay_until:
            self.proxy.delay_ms(0)
            self.delay_until = None
        pick = self.rng.random()
        if pick < 0.5:
            n = self.proxy.cut()
            self.counts["cut"] += 1
            self.log("cut (%d links)" % n)
            return self.rng.uniform(1, 4)
        if pick < 0.65:
            # From shorter than the keepalive to well past 1.5 x keepalive.
            hold = min(self.rng.uniform(1, 3 * KEEPALIVE_S), max(left_s, 0.5))
            self.counts["black_hole"] += 1
            self.black_hole_s += hold
            self.log("black hole for %.1f s" % hold)
            self.proxy.black_hole(True)
            time.sleep(hold)
            self.proxy.black_hole(False)
            return self.rng.uniform(1, 4)
        if pick < 0.9:
            ms = int(self.rng.uniform(20, 800))
            direction = self.rng.choice(("up", "down", "both"))
            hold = self.rng.uniform(2, 10)
            self.proxy.delay_ms(0)
            self.proxy.delay_ms(ms, direction)
            self.delay_until = now + hold
            self.counts["delay"] += 1
            self.log("delay %d ms %s for %.1f s" % (ms, direction, hold))
            return self.rng.uniform(1, 4)
        self.counts["quiet"] += 1
        return self.rng.uniform(2, 6)


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    seed = args.seed if args.seed is not None else int(time.time()) % 100000
    rng = random.Random(seed)
    started = time.monotonic()

    def log(text):
        print("[%6.1f s] %s" % (time.monotonic() - started, text), flush=True)

    log(
        "soak: %d s, seed %d, %s%s, one publish per %d ms per stream"
        % (
            args.duration,
            seed,
            args.runtime,
            " heap %s" % args.heap if args.runtime == "micropython" and args.heap else "",
            args.interval_ms,
        )
    )
    broker = Mosquitto().start()
    proxy = None
    sub = None
    scripts = {}
    try:
        proxy = FaultProxy(broker.port, seed=seed).start()
        sub = Subscriber(broker.port, "house/soak/#", 2, "soak-paho-%d" % seed, clean_session=False)
        sub.wait_subscribed()
        heap = args.heap if args.runtime == "micropython" and args.heap else None
        for qos in (0, 1, 2):
            scripts[qos] = Script(
                args.runtime,
                STREAM,
                [
                    "127.0.0.1",
                    proxy.port,
                    "soak-node-q%d-%d" % (qos, seed),
                    "house/soak/q%d" % qos,
                    qos,
                    "duration_s=%d" % args.duration,
                    "deadline_s=%d" % (args.duration + DRAIN_S),
                    "interval_ms=%d" % args.interval_ms,
                    "keepalive=%d" % KEEPALIVE_S,
                    "connect_timeout_ms=2000",
                    "publish_timeout_ms=2000",
                    "reconnect_min_ms=200",
                    "reconnect_max_ms=2000",
                ],
                heapsize=heap,
            )
        for script in scripts.values():
            script.wait_for("READY", 30)
        log("streams ready; chaos on")
        chaos = Chaos(proxy, rng, log)
        chaos_end = time.monotonic() + args.duration
        while True:
            now = time.monotonic()
            left = chaos_end - now
            if left <= 0:
                break
            wait = chaos.step(now, left)
            time.sleep(max(0.0, min(wait, chaos_end - time.monotonic())))
        proxy.clear()
        log("chaos off; waiting for the streams to finish")
        results = {qos: script.result(DRAIN_S + 30) for qos, script in scripts.items()}
        # The last messages may still be on their way to paho.
        settle_end = time.monotonic() + SETTLE_S
        last = -1
        while time.monotonic() < settle_end:
            now_count = len(sub.numbers())
            if now_count == last:
                break
            last = now_count
            time.sleep(1)
        report(results, sub, proxy.stats(), chaos, log)
        return verdict(results, sub, log)
    finally:
        for script in scripts.values():
            script.close()
        if sub is not None:
            sub.close()
        if proxy is not None:
            proxy.close()
        broker.close()


def figures(results, sub):
    rows = {}
    for qos, result in sorted(results.items()):
        rows[qos] = tally(sub.numbers("house/soak/q%d" % qos), result["published"])
    return rows


def report(results, sub, stats, chaos, log):
    rows = figures(results, sub)
    log("done")
    print()
    print(
        "QoS      sent   arrived  duplicated   lost  in order  reconnects  publish max ms"
        "  heap free min/max  heap alloc min/max"
    )
    for qos, row in rows.items():
        r = results[qos]
        print(
            "%3d  %8d  %8d  %10d  %5d  %8s  %10d  %14d  %8d/%-8d  %8d/%-8d"
            % (
                qos,
                row["sent"],
                row["arrived"],
                row["duplicated"],
                row["lost"],
                "yes" if row["in_order"] else "NO",
                r["reconnects"],
                r["publish_wait_max_ms"],
                r["heap_free_min"],
                r["heap_free_max"],
                r["heap_alloc_min"],
                r["heap_alloc_max"],
            )
        )
    print()
    for qos in sorted(results):
        r = results[qos]
        print(
            "QoS %d: complete=%s acked=%d resent=%d pings=%d inflight_full=%d not_connected=%d "
            "unknown_acks=%d disconnects=%s"
            % (
                qos,
                r["complete"],
                r["acked"],
                r["resent"],
                r["pings"],
                r["inflight_full"],
                r["not_connected"],
                r["unknown_acks"],
                r["disconnect_reasons"],
            )
        )
    counts = chaos.counts
    print(
        "chaos: %d cuts, %d black holes (%.0f s in all), %d delays, %d quiet spells"
        % (counts["cut"], counts["black_hole"], chaos.black_hole_s, counts["delay"], counts["quiet"])
    )
    print("proxy: %s" % stats)


def verdict(results, sub, log):
    rows = figures(results, sub)
    problems = []
    for qos, result in results.items():
        if not result["complete"]:
            problems.append("QoS %d stream did not finish: %d in flight" % (qos, result["inflight"]))
    for qos in (1, 2):
        if rows[qos]["lost"]:
            problems.append("QoS %d lost %d messages" % (qos, rows[qos]["lost"]))
        if not rows[qos]["in_order"]:
            problems.append("QoS %d first arrivals out of order" % qos)
    if rows[2]["duplicated"]:
        problems.append("QoS 2 duplicated %d messages" % rows[2]["duplicated"])
    for problem in problems:
        log("FAIL: " + problem)
    if not problems:
        log("PASS: QoS 1 and 2 lost nothing, QoS 2 duplicated nothing")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
