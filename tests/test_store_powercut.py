"""The flash store survives being killed at any point: tests/scripts/store_writer.py
runs on the MicroPython Unix port and is SIGKILLed after a seeded random
delay, over and over, while it appends readings and then while it replays and
acknowledges them. After each kill a fresh process reopens the store and
hands out what it holds, and this checks the writer's printed claims:

- every reading reported durable is there exactly once, with its value, unless
  more than `capacity` newer readings pushed it out (policy "all");
- nothing is there that was not appended; sequence numbers strictly increase;
- after a kill during replay, no reading recorded as acknowledged on flash
  comes back, and every reading not acknowledged is still there (QoS 1: a
  reading acknowledged after the last marker may come back once more).

On the Unix port flush() is an fsync, so "durable" means on the disk, and a
SIGKILL can land anywhere: in the middle of a write, between a write and its
flush, between the data and the marker."""

import os
import random
import signal
import subprocess
import sys
import time

from harness import micropython

SCRIPT = "tests/scripts/store_writer.py"
CAPACITY = 256  # as in the script
SEED = int(os.getenv("STORE_POWERCUT_SEED", "20240611"))  # another seed: explore


def run(args, kill_after_s=None):
    """Runs the script; SIGKILLs it after kill_after_s. Returns (lines, killed)."""
    proc = micropython.popen([SCRIPT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = False
    if kill_after_s is not None:
        try:
            proc.wait(kill_after_s)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            killed = True
    out, err = proc.communicate(timeout=30)
    if not killed:
        assert proc.returncode == 0, "store_writer %s exited %d\n%s" % (args, proc.returncode, err)
        assert out.rstrip().endswith("END"), out[-500:]
    lines = out.splitlines()
    if killed and lines and not out.endswith("\n"):
        lines.pop()  # a line cut by the kill is no claim
    return [line.split() for line in lines], killed


def held(path):
    """[(seq, channel, value)] the store hands out after a restart."""
    lines, _ = run(["dump", path])
    return [(int(f[1]), int(f[2]), int(f[3])) for f in lines if f[0] == "R"]


def check_order(records):
    seqs = [r[0] for r in records]
    assert seqs == sorted(set(seqs)), "sequence numbers not strictly increasing: %r" % seqs
    values = [r[2] for r in records]
    assert values == sorted(set(values)), "a value replayed twice or out of order"


def test_kill_while_appending_then_while_acknowledging_loses_nothing_durable(tmp_path):
    rng = random.Random(SEED)
    path = str(tmp_path / "store")
    intents = set()
    durable = {}  # seq -> value
    kills = 0
    started = time.monotonic()

    # ---- appending, killed at random points ---------------------------------
    for life in range(1, 15):
        count = rng.randrange(40, 300)
        delay = None if life % 5 == 0 else rng.uniform(0.005, 0.06)
        lines, killed = run(["write", path, str(life), str(count)], delay)
        kills += killed
        for f in lines:
            if f[0] == "A":
                intents.add(int(f[1]))
            elif f[0] == "D":
                seq, value = int(f[1]), int(f[2])
                assert durable.get(seq, value) == value, "seq %d reported durable twice with other values" % seq
                durable[seq] = value
        records = held(path)
        check_order(records)
        for seq, channel, value in records:
            assert value in intents, "seq %d value %d was never appended" % (seq, value)
            assert channel == (value // 100000) % 8
        present = {seq: value for seq, _, value in records}
        newest = max(present) if present else 0
        for seq, value in durable.items():
            if seq > newest - CAPACITY:  # not pushed out by newer readings
                assert present.get(seq) == value, "life %d: durable seq %d (value %d) lost" % (life, seq, value)

    assert kills >= 5, "the writer was killed only %d times: delays too long" % kills
    before = held(path)
    assert len(before) > 50

    # ---- replaying and acknowledging, killed at random points -----------------
    for life in range(10):
        delay = rng.uniform(0.006, 0.05) if life < 9 else None
        lines, killed = run(["drain", path, str(rng.randrange(1, 1 << 30))], delay)
        kills += killed
        acked = set()
        committed = 0
        for f in lines:
            if f[0] == "K":
                acked.add(int(f[1]))
            elif f[0] == "C":
                committed = int(f[1])
        after = held(path)
        check_order(after)
        after_seqs = {seq for seq, _, _ in after}
        before_seqs = {seq for seq, _, _ in before}
        assert after_seqs <= before_seqs, "a reading appeared from nowhere: %r" % (after_seqs - before_seqs)
        comeback = {seq for seq in after_seqs if seq <= committed}
        assert not comeback, "life %d: acknowledged and committed, yet replayed: %r" % (life, sorted(comeback))
        lost = {seq for seq in before_seqs - after_seqs if seq not in acked}
        assert not lost, "life %d: never acknowledged, yet gone: %r" % (life, sorted(lost))
        assert [(s, c, v) for s, c, v in before if s in after_seqs] == after, "a reading changed"
        before = after

    assert before == [], "a full drain left %d readings" % len(before)
    assert time.monotonic() - started < 60


def test_store_writer_runs_on_cpython_too(tmp_path):
    # The same script under CPython: the store is the same code on both runtimes.
    env = dict(os.environ, PYTHONPATH=micropython.LIB)
    path = str(tmp_path / "store")
    root = os.path.dirname(micropython.LIB)
    out = subprocess.run(
        [sys.executable, SCRIPT, "write", path, "1", "50"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    lines, _ = run(["dump", path])  # written by CPython, read by the Unix port
    assert [int(f[3]) for f in lines if f[0] == "R"] == [100000 + k for k in range(50)]
