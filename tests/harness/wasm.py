"""Runs code on the 32-bit MicroPython: the WebAssembly port from npm, in Node.

Like a board (and unlike CPython and the Unix port) it has 31-bit small ints,
a 2^30 tick period and a ticks_add that refuses an interval of 2^29 ms or
more. It has no socket module: only modules that need no network run here.
tools/setup.sh installs it under .venv/wasm from tools/wasm/package-lock.json."""

import os
import shutil
import subprocess

from harness.micropython import LIB, PORTABLE, ROOT

PACKAGE = os.path.join(
    ROOT, ".venv", "wasm", "node_modules", "@micropython", "micropython-webassembly-pyscript", "micropython.mjs"
)
RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wasm_run.mjs")

# lib/ and the portable tests on sys.path; the Unix port's fakes of machine
# and network where the tests look for them (firmware/unix_fakes from the
# working directory), not on sys.path.
MOUNTS = (
    (LIB, "/lib"),
    (PORTABLE, "/portable"),
    (os.path.join(ROOT, "firmware", "unix_fakes"), "/firmware/unix_fakes:nopath"),
)

# Enough for any portable test module compiled from source; the board-sized
# runs are on the Unix port, from mpy-cross output.
HEAP_BYTES = 2 * 1024 * 1024


def node_binary():
    found = shutil.which("node")
    if not found or not os.path.exists(PACKAGE):
        raise RuntimeError("the 32-bit MicroPython is not installed: run `make setup` (Node and npm's %s)" % PACKAGE)
    return found


def run(script, args=(), mounts=MOUNTS, heap_bytes=HEAP_BYTES, timeout=300):
    """Runs script (a host path) as __main__ with each (host dir, port dir) of
    mounts copied in and on sys.path (see wasm_run.mjs)."""
    command = [
        node_binary(),
        RUNNER,
        PACKAGE,
        str(heap_bytes),
        ",".join("%s:%s" % mount for mount in mounts),
        script,
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def run_tests(module, tests, timeout=300):
    """{test: (outcome, output)} for tests of tests/portable/<module>.py, run
    in one process by run_module.py; outcome is PASS, FAIL or SKIP <reason>.
    A test the process never reported (it crashed or hung) gets FAIL with
    everything the process printed."""
    try:
        result = run(os.path.join(PORTABLE, "run_module.py"), [module, *tests], timeout=timeout)
        stdout, stderr, status = result.stdout, result.stderr, result.returncode
    except subprocess.TimeoutExpired as e:
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        stderr, status = "timed out after %d s" % timeout, None
    outcomes, output = {}, []
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            _, name, outcome = line.split(" ", 2)
            outcomes[name] = (outcome, "\n".join(output))
            output = []
        elif line != "DONE":
            output.append(line)
    whole = "exit status %s\n--- stdout\n%s\n--- stderr\n%s" % (status, stdout, stderr)
    for name in tests:
        if name not in outcomes:
            outcomes[name] = ("FAIL", whole)
    return outcomes
