"""Power cuts during an update: the node (tests/ota_board.py on the Unix
port, from a flash folder) SIGKILLs itself at one of its own flash steps
(every open, write, rename, removal and mkdir of lib/ota; counted by
tests/ota_kill_points.py) while receiving, verifying, activating, or on the
first boot of the new release, and is started again as a board is by its
power supply. Whatever the point, it comes back running the old release or
the new one, never neither, and tools/ota.py, left running, ends with the
new one confirmed.

A first run with no kill traces every step and what the updater was doing;
the points are drawn from it, spread over the four stages (random, with the
seed printed). The default run takes OTA_KILL_POINTS=4 of them (one a stage); `make
ota-kill` takes 24."""

import os
import random
import shutil
import time

import pytest

from ota_support import (
    OTA_BASE,
    ROOT,
    Board,
    Watcher,
    install,
    pointer,
    release_folders,
    run_ota,
    secrets_file,
    tree,
    wait_until,
)

POINTS = int(os.environ.get("OTA_KILL_POINTS") or 4)
SEED = int(os.environ.get("OTA_KILL_SEED") or random.randrange(1 << 30))
VERSION = "9.9-kill"
STAGES = ("receiving", "verifying", "activating", "first boot")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A flash folder as make deploy leaves it, from a tree whose lib/
    modules all differ from this one's; copied for each run."""
    base = tmp_path_factory.mktemp("ota-kill")
    old = tree(base, "old", lib_header="# the build before this one")
    secrets = secrets_file(str(base))
    flash = str(base / "pristine")
    install(flash, old, secrets, str(base / "build-old"))
    return base, flash, secrets


def fresh(pristine, tmp_path, name):
    base, flash, secrets = pristine
    copy = str(tmp_path / name)
    shutil.copytree(flash, copy)
    return copy, secrets


def stage_of(start, phase, op, path):
    if start >= 2:
        return "first boot"
    if "ota-releases/pointer" in path or phase == "activating":
        return "activating"
    if phase == "verifying":
        return "verifying"
    if phase in ("manifest", "preparing", "receiving"):
        return "receiving"
    return None  # start 1 before the update began


def trace(pristine, tmp_path, make_broker):
    """Every flash step of a whole update, as (start, step, stage, op, path)."""
    broker = make_broker()
    flash, secrets = fresh(pristine, tmp_path, "trace")
    board = Board(flash, broker, env={"OTA_TRACE": "1"})
    try:
        watcher = Watcher(broker)
        assert wait_until(lambda: watcher.reading_after(0), 20), board.output()
        status, output = run_ota(ROOT, secrets, broker, str(tmp_path / "build"), "--version", VERSION)
        assert status == 0, output + board.output()
        assert wait_until(lambda: board.find("ota: release %s confirmed" % VERSION) is not None, 20)
        time.sleep(0.5)
        watcher.close()
    finally:
        board.stop()
    steps = []
    for _, start, line in board.lines:
        if line.startswith("OTA-FS "):
            _, n, phase, op, path = line.split(" ", 4)
            stage = stage_of(start, phase, op, path)
            if stage is not None and start <= 2:
                steps.append((start, int(n), stage, op, path))
    return steps


def choose(steps, count, rng):
    """count points spread over the stages, each stage's drawn at random."""
    by_stage = {stage: [s for s in steps if s[2] == stage] for stage in STAGES}
    share = {"receiving": 0.4, "verifying": 0.15, "activating": 0.15, "first boot": 0.3}
    chosen = []
    for stage in STAGES:
        want = max(1, round(count * share[stage]))
        pool = by_stage[stage]
        assert pool, "no %s step traced" % stage
        chosen += rng.sample(pool, min(want, len(pool)))
    if count >= len(STAGES):
        chosen = chosen[:count]
        # A stage with fewer steps than its share (activating has a few): the
        # rest from all the others not taken yet.
        rest = [s for s in steps if s not in chosen]
        chosen += rng.sample(rest, min(count - len(chosen), len(rest)))
    return chosen


def test_a_node_killed_anywhere_in_an_update_comes_back_old_or_new(pristine, tmp_path, make_broker):
    steps = trace(pristine, tmp_path, make_broker)
    rng = random.Random(SEED)
    points = choose(steps, POINTS, rng)
    print("\nota kill points: seed %d, %d traced steps, %d points" % (SEED, len(steps), len(points)))
    failures = []
    for number, (start, step, stage, op, path) in enumerate(points):
        what = "%s, start %d, step %d (%s %s)" % (stage, start, step, op, os.path.basename(path))
        problem = run_killed(pristine, tmp_path, make_broker, number, start, step)
        print("  %-70s %s" % (what, problem or "came back, then confirmed"))
        if problem:
            failures.append("%s: %s" % (what, problem))
    assert not failures, "\n".join(failures)


def run_killed(pristine, tmp_path, make_broker, number, start, step):
    """One update with the node killed at (start, step). A problem, or None."""
    broker = make_broker()
    flash, secrets = fresh(pristine, tmp_path, "kill-%d" % number)
    board = Board(flash, broker, start_env={start: {"OTA_KILL_AT": str(step)}})
    watcher = Watcher(broker)
    try:
        if not wait_until(lambda: watcher.reading_after(0), 20):
            return "never started\n" + board.output()
        sender = run_ota(ROOT, secrets, broker, str(tmp_path / "build"), "--version", VERSION, background=True)
        output, _ = sender.communicate(timeout=150)
        killed = board.find("OTA-KILLPOINT")
        if killed is None:
            return "the kill point was not reached\n" + output + board.output()
        if sender.returncode != 0:
            return "ota exited %d\n%s%s" % (sender.returncode, output, board.output())
        # Every start after the kill came back: connected, running the old
        # release (no "running release" line) or the new one.
        for s in range(start + 1, board.starts + 1):
            lines = [line for _, n, line in board.lines if n == s]
            if not any("mqtt: connected" in line for line in lines):
                if s == board.starts and not wait_until(lambda: board.find("mqtt: connected", killed), 20):
                    return "start %d never connected\n%s" % (s, board.output())
            running = [line for line in lines if "ota: running release" in line]
            if running and VERSION not in running[0]:
                return "start %d ran something else: %s" % (s, running[0])
        p = pointer(flash)
        if p is None or p["version"] != VERSION or p["trial"] or p["outcome"] != "confirmed":
            return "pointer after: %r\n%s" % (p, board.output())
        # Leftovers go a few per poll of the node.
        if not wait_until(lambda: release_folders(flash) == [p["active"]], 10):
            return "left on flash: %r" % release_folders(flash)
        now = time.monotonic()
        if not wait_until(lambda: watcher.reading_after(now), 20):
            return "no reading after the update\n" + board.output()
        installed = watcher.payloads(OTA_BASE + "installed")
        if not installed or VERSION.encode() not in installed[-1]:
            return "installed says %r" % installed[-1:]
        return None
    finally:
        watcher.close()
        board.stop()
